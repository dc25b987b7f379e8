import { describe, expect, test } from 'vitest';
import {
  boundsOf,
  countAtOrAbove,
  groupByLabel,
  parseThreshold,
  pixelChange,
  proposalPixels,
  provenanceLines,
  scoreTag,
  shortId,
  type Proposal,
} from './proposals';

const proposal = (over: Partial<Proposal>): Proposal => ({
  id: 'p',
  run: 'r',
  model_version: 'v',
  label: 'L1',
  label_name: 'Lesion',
  kind: 'mask',
  sop_instance_uid: 'sop1',
  frame: 0,
  geometry: { rows: 4, columns: 4, rle: [5, 2] },
  score: 0.5,
  decision: 'pending',
  annotation: null,
  ...over,
});

describe('model proposals (issue 11)', () => {
  test('the tag and short ids read as a person compares them', () => {
    expect(scoreTag(0.9312)).toBe('Model 0.93');
    expect(scoreTag(1)).toBe('Model 1.00');
    expect(shortId('sha256:abcdef0123456789')).toBe('abcdef01');
    expect(shortId('6f1c2d3e-aaaa-bbbb-cccc-000000000000')).toBe('6f1c2d3e');
  });

  test('pending ones by label in schema order, each by slice then best score', () => {
    const items = [
      proposal({ id: 'a', label: 'L2', label_name: 'Nodule', frame: 2, score: 0.4 }),
      proposal({ id: 'b', frame: 1, score: 0.3 }),
      proposal({ id: 'c', frame: 1, score: 0.9 }),
      proposal({ id: 'd', frame: 0, score: 0.1 }),
      proposal({ id: 'e', decision: 'accepted' }),
      proposal({ id: 'f', decision: 'rejected', label: 'L3' }),
    ];
    const groups = groupByLabel(items, ['L1', 'L2'], (p) => p.frame);
    expect(groups.map((g) => g.name)).toEqual(['Lesion', 'Nodule']);
    expect(groups[0].items.map((p) => p.id)).toEqual(['d', 'c', 'b']);
    expect(groups[1].items.map((p) => p.id)).toEqual(['a']);
  });

  test('"accept all at or above" counts pending ones only, the threshold included', () => {
    const items = [proposal({ score: 0.8 }), proposal({ score: 0.79 }), proposal({ score: 0.95, decision: 'rejected' })];
    expect(countAtOrAbove(items, 0.8)).toBe(1);
    expect(countAtOrAbove(items, 0)).toBe(2);
    expect(parseThreshold('0.85')).toBe(0.85);
    expect(parseThreshold('7')).toBe(1);
    expect(parseThreshold('-1')).toBe(0);
    expect(parseThreshold('')).toBeNull();
    expect(parseThreshold('x')).toBeNull();
  });

  test('bounds of masks (runs that wrap rows too), boxes and points', () => {
    expect(boundsOf('mask', { rows: 4, columns: 4, rle: [5, 2] })).toEqual({ x0: 1, y0: 1, x1: 2, y1: 1 });
    expect(boundsOf('mask', { rows: 4, columns: 4, rle: [6, 4] })).toEqual({ x0: 0, y0: 1, x1: 3, y1: 2 });
    expect(boundsOf('mask', { rows: 4, columns: 4, rle: [] })).toBeNull();
    expect(boundsOf('box', { x0: 9, y0: 2, x1: 3, y1: 8 })).toEqual({ x0: 3, y0: 2, x1: 9, y1: 8 });
    expect(boundsOf('point', { x: 4, y: 5 })).toEqual({ x0: 4, y0: 5, x1: 4, y1: 5 });
  });

  test('the layer style: a dashed opaque outline, a translucent hatched inside, nothing outside', () => {
    const rows = 12;
    const columns = 12;
    const mask = new Uint8Array(rows * columns);
    for (let y = 2; y < 10; y++) for (let x = 2; x < 10; x++) mask[y * columns + x] = 1;
    const px = proposalPixels(mask, rows, columns, '#ff0000');
    const alpha = (x: number, y: number) => px[(y * columns + x) * 4 + 3];
    expect(alpha(0, 0)).toBe(0); // outside
    const edge = [...Array(8).keys()].map((k) => alpha(2 + k, 2));
    expect(edge).toContain(255); // dashes...
    expect(edge).toContain(0); // ...with gaps
    const inside = [...Array(6).keys()].map((k) => alpha(3 + k, 5));
    expect(Math.max(...inside)).toBeLessThan(255); // never as solid as the outline
    expect(new Set(inside).size).toBeGreaterThan(1); // stripes
    expect(px[(2 * columns + 4) * 4]).toBe(255); // in the given colour
    const outline = proposalPixels(mask, rows, columns, '#ff0000', true);
    expect(outline[(5 * columns + 5) * 4 + 3]).toBe(0); // while edited: the outline only
  });

  test('pixels added and removed against the proposal', () => {
    expect(pixelChange(Uint8Array.from([1, 1, 0, 0]), Uint8Array.from([1, 0, 1, 1]))).toEqual({ added: 2, removed: 1 });
  });

  test('provenance in the history: model, edited or not, pixels, Dice, seconds', () => {
    const lines = provenanceLines({
      model_version: 'sha256:0123456789abcdef',
      proposal: 'p1',
      slices: [
        { sop_instance_uid: 's', frame: 0, added: 12, removed: 3 },
        { sop_instance_uid: 's', frame: 1, added: 0, removed: 1 },
      ],
      dice: 0.9123,
      seconds_to_accept: 75.4,
    });
    expect(lines[0]).toBe('From model 01234567 · edited');
    expect(lines[1]).toBe('+12 / −4 px over 2 slices · Dice 0.91 · 1 min 15 s to accept');
    const unchanged = provenanceLines({ model_version: 'abc', pixels_added: 0, pixels_removed: 0, dice: 1, seconds_to_accept: 4 });
    expect(unchanged[0]).toBe('From model abc · unchanged');
    expect(unchanged[1]).toBe('+0 / −0 px · Dice 1.00 · 4 s to accept');
    const keyed = provenanceLines({ model_version: 'abc', edited: true, slices: { 's:0': { added: 5, removed: 2 } }, dice: 0.5 });
    expect(keyed[1]).toBe('+5 / −2 px · Dice 0.50');
    expect(provenanceLines(null)).toEqual([]);
  });
});
