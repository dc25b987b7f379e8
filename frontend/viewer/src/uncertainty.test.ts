import { describe, expect, test } from 'vitest';
import { groupByLabel, type Proposal } from './proposals';
import {
  UNCERTAINTY_COLOR,
  byUncertainty,
  meanUncertainty,
  uncertaintyMask,
  uncertaintyPixels,
  uncertaintyTag,
  type Uncertainty,
} from './uncertainty';

const map = (over: Partial<Uncertainty>): Uncertainty => ({
  rows: 4,
  columns: 4,
  rle: [5, 2],
  mean: 0.3,
  max: 0.8,
  method: 'tta_entropy',
  threshold: 0.5,
  ...over,
});

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
  uncertainty: null,
  decision: 'pending',
  annotation: null,
  ...over,
});

describe('uncertainty maps of proposals (issue 11)', () => {
  test('the mean is worded beside the score, nothing when there is no map', () => {
    expect(uncertaintyTag({ uncertainty: map({ mean: 0.3149 }) })).toBe('u 0.31');
    expect(uncertaintyTag({ uncertainty: null })).toBe('');
    expect(uncertaintyTag({})).toBe('');
    expect(meanUncertainty({ uncertainty: map({ mean: NaN }) })).toBeNull();
  });

  test('sorted by uncertainty: most unsure first, maps missing last, within each label', () => {
    const items = [
      proposal({ id: 'a', frame: 0, uncertainty: map({ mean: 0.1 }) }),
      proposal({ id: 'b', frame: 1, uncertainty: null }),
      proposal({ id: 'c', frame: 2, uncertainty: map({ mean: 0.7 }) }),
      proposal({ id: 'd', frame: 3, uncertainty: map({ mean: 0.4 }) }),
    ];
    const bySlice = groupByLabel(items, ['L1'], (p) => p.frame);
    expect(bySlice[0].items.map((p) => p.id)).toEqual(['a', 'b', 'c', 'd']);
    const unsure = groupByLabel(items, ['L1'], (p) => p.frame, 'uncertainty');
    expect(unsure[0].items.map((p) => p.id)).toEqual(['c', 'd', 'a', 'b']);
    expect(byUncertainty(items[0], items[0])).toBe(0);
  });

  test('the overlay: uncertain pixels only, in the overlay colour, rim stronger than inside', () => {
    expect(uncertaintyMask({ uncertainty: map({ rle: [] }) })).toBeNull();
    const mask = uncertaintyMask({ uncertainty: map({ rows: 5, columns: 5, rle: [6, 3, 11, 3, 16, 3] }) })!;
    expect(Array.from(mask).reduce((n, v) => n + v, 0)).toBe(9);
    const px = uncertaintyPixels(mask, 5, 5);
    const alpha = (x: number, y: number) => px[(y * 5 + x) * 4 + 3];
    expect(alpha(0, 0)).toBe(0);
    expect(alpha(2, 2)).toBe(150); // inside the 3x3 patch
    expect(alpha(1, 1)).toBe(230); // its rim
    const [r, g, b] = [px[(2 * 5 + 2) * 4], px[(2 * 5 + 2) * 4 + 1], px[(2 * 5 + 2) * 4 + 2]];
    expect([r, g, b]).toEqual([0xff, 0xa4, 0x1b]);
    expect(UNCERTAINTY_COLOR).toBe('#ffa41b');
  });
});
