import { describe, expect, test, vi } from 'vitest';
import { countTags, filterTags, TagCache } from './tags';
import type { TagRow } from './tags';

const ROWS: TagRow[] = [
  { tag: '(0008,0060)', keyword: 'Modality', vr: 'CS', value: 'CT' },
  { tag: '(0020,0013)', keyword: 'InstanceNumber', vr: 'IS', value: '3' },
  {
    tag: '(0008,2218)',
    keyword: 'AnatomicRegionSequence',
    vr: 'SQ',
    value: '1 item',
    items: [
      [
        { tag: '(0008,0100)', keyword: 'CodeValue', vr: 'SH', value: 'T-D3000' },
        { tag: '(0008,0104)', keyword: 'CodeMeaning', vr: 'LO', value: 'Chest' },
      ],
    ],
  },
];

describe('the tag browser (issue 12)', () => {
  test('an empty filter keeps every row', () => {
    expect(filterTags(ROWS, '  ')).toBe(ROWS);
    expect(countTags(ROWS)).toBe(5);
  });

  test('filters by keyword, value and tag, in any case and spelling of the tag', () => {
    expect(filterTags(ROWS, 'modality').map((r) => r.keyword)).toEqual(['Modality']);
    expect(filterTags(ROWS, 'ct').map((r) => r.keyword)).toEqual(['Modality']);
    expect(filterTags(ROWS, '(0020,0013)').map((r) => r.keyword)).toEqual(['InstanceNumber']);
    expect(filterTags(ROWS, '00200013').map((r) => r.keyword)).toEqual(['InstanceNumber']);
  });

  test('a match inside a sequence keeps the sequence with only the matching rows', () => {
    const [seq] = filterTags(ROWS, 'chest');
    expect(seq.keyword).toBe('AnatomicRegionSequence');
    expect(seq.items).toEqual([[{ tag: '(0008,0104)', keyword: 'CodeMeaning', vr: 'LO', value: 'Chest' }]]);
    expect(ROWS[2].items![0]).toHaveLength(2); // the cached rows are not changed
    expect(filterTags(ROWS, 'anatomic')[0].items![0]).toHaveLength(2); // the sequence itself matched
    expect(filterTags(ROWS, 'nothing like it')).toEqual([]);
  });

  test('each instance is fetched once; a failed fetch is tried again', async () => {
    const fetcher = vi.fn(async (id: string) => {
      if (id === 'bad' && fetcher.mock.calls.length === 1) throw new Error('down');
      return [{ tag: '(0008,0060)', keyword: 'Modality', vr: 'CS', value: id }];
    });
    const cache = new TagCache(fetcher);
    await expect(cache.get('bad')).rejects.toThrow('down');
    await Promise.resolve();
    expect(cache.has('bad')).toBe(false);
    expect((await cache.get('bad'))[0].value).toBe('bad');
    await cache.get('a');
    await cache.get('a');
    expect(fetcher.mock.calls.map((c) => c[0])).toEqual(['bad', 'bad', 'a']);
  });
});
