import { describe, expect, it } from 'vitest';
import type { MaskEntry } from './brush';
import { Grow3d } from './grow3d';
import { maskToRle } from './rle';

const N = 4; // 2 x 2 images
const target = { imageId: 'a', sop: 'a', frame: 0, rows: 2, columns: 2 };
const mask = (bits: number[]) => ({ rows: 2, columns: 2, rle: maskToRle(Uint8Array.from(bits)) });

function host(answers: any[][]) {
  const entries = new Map<string, MaskEntry>();
  const strokes: string[] = [];
  let calls = 0;
  const h = {
    entries,
    strokes,
    slices: -1,
    call: async () => ({ masks: answers[calls++] }),
    entry: (sop: string, frame: number) => {
      if (sop === 'gone') return null;
      if (!entries.has(sop)) {
        entries.set(sop, { key: sop, sop, frame, label: 'l', rows: 2, columns: 2, mask: new Uint8Array(N), color: '#fff', hidden: false });
      }
      return entries.get(sop)!;
    },
    stroke: (entry: MaskEntry) => strokes.push(entry.sop),
    grown: (n: number) => (h.slices = n),
  };
  return h;
}

describe('Grow3d', () => {
  it('returns the clicked slice and lands the others as strokes', async () => {
    const h = host([[{ sop_instance_uid: 'a', frame: 0, ...mask([1, 0, 0, 0]) }, { sop_instance_uid: 'b', frame: 0, ...mask([0, 1, 0, 0]) }, { sop_instance_uid: 'gone', frame: 0, ...mask([1, 1, 1, 1]) }]]);
    const here = await new Grow3d(h).grow(target, [[0, 0]], [], {});
    expect(Array.from(here!)).toEqual([1, 0, 0, 0]);
    expect(Array.from(h.entries.get('b')!.mask)).toEqual([0, 1, 0, 0]);
    expect(h.strokes).toEqual(['b']);
    expect(h.slices).toBe(2);
  });

  it('grows again over the masks as they were before the first seed', async () => {
    const h = host([
      [{ sop_instance_uid: 'b', frame: 0, ...mask([1, 1, 0, 0]) }, { sop_instance_uid: 'c', frame: 0, ...mask([1, 0, 0, 0]) }],
      [{ sop_instance_uid: 'b', frame: 0, ...mask([1, 0, 0, 0]) }],
    ]);
    const grow = new Grow3d(h);
    const session = {};
    h.entry('b', 0)!.mask = Uint8Array.from([0, 0, 0, 1]); // drawn before
    await grow.grow(target, [[0, 0]], [], session);
    expect(Array.from(h.entries.get('b')!.mask)).toEqual([1, 1, 0, 1]);
    await grow.grow(target, [[0, 0]], [[1, 1]], session);
    expect(Array.from(h.entries.get('b')!.mask)).toEqual([1, 0, 0, 1]); // the smaller region, over what was drawn
    expect(Array.from(h.entries.get('c')!.mask)).toEqual([0, 0, 0, 0]); // no longer reached: back as it was
    expect(h.slices).toBe(1);
  });

  it('says nothing more when the server refuses', async () => {
    const h = { ...host([]), call: async () => null };
    expect(await new Grow3d(h).grow(target, [[0, 0]], [], {})).toBeNull();
  });
});
