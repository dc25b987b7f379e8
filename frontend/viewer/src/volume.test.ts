import { describe, expect, it } from 'vitest';
import type { InstanceData } from './types';
import { sameOrientation, syncIndex, volumeVerdict } from './volume';

function slices(positions: (number | null)[], over: Partial<InstanceData> = {}): InstanceData[] {
  return positions.map((p, k) => ({
    id: `i${k}`,
    sop_uid: `1.2.${k}`,
    number: k + 1,
    frames: 1,
    rows: 128,
    columns: 128,
    pixel_spacing: [0.7, 0.7],
    slice_position: p,
    wado_url: `/wado/?k=${k}`,
    ...over,
  }));
}

describe('volumeVerdict', () => {
  it('accepts evenly spaced CT and MR slices in either order', () => {
    expect(volumeVerdict('CT', slices([0, -2.5, -5, -7.5])).ok).toBe(true);
    expect(volumeVerdict('MR', slices([1, 2, 3])).ok).toBe(true);
  });
  it('says why it refuses', () => {
    expect(volumeVerdict('CT', slices([0, -2.5]))).toEqual({ ok: false, reason: 'A volume needs at least 3 slices; this series has 2.' });
    expect(volumeVerdict('US', slices([0, 1, 2])).reason).toMatch(/CT and MR/);
    expect(volumeVerdict('CT', slices([0, 1, null])).reason).toMatch(/no position/);
    expect(volumeVerdict('CT', slices([0, 1, 1])).reason).toMatch(/same position/);
    expect(volumeVerdict('CT', slices([0, 1, 3])).reason).toBe('The slice spacing is uneven (1.00 to 2.00 mm).');
    expect(volumeVerdict('CT', slices([0, 1, 2], { frames: 30 })).reason).toMatch(/Multi-frame/);
    const mixed = slices([0, 1, 2]);
    mixed[1].rows = 256;
    expect(volumeVerdict('CT', mixed).reason).toMatch(/differ in size/);
    const spaced = slices([0, 1, 2]);
    spaced[2].pixel_spacing = [0.8, 0.8];
    expect(volumeVerdict('CT', spaced).reason).toMatch(/pixel spacing/);
    expect(volumeVerdict('CT', slices([0, 1, 2], { pixel_spacing: null })).reason).toMatch(/pixel spacing/);
  });
  it('tolerates rounding in the positions', () => {
    expect(volumeVerdict('CT', slices([0, 1.2501, 2.5, 3.7499])).ok).toBe(true);
  });
});

describe('sameOrientation', () => {
  it('compares every slice with the first', () => {
    expect(sameOrientation([[1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 1, 0.001]])).toBe(true);
    expect(sameOrientation([[1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, -1]])).toBe(false);
    expect(sameOrientation([[1, 0, 0, 0, 1, 0], null])).toBe(false);
    expect(sameOrientation([])).toBe(false);
  });
});

describe('syncIndex', () => {
  const a = { positions: [10, 5, 0, -5, -10], frameOfReference: 'F' };
  it('matches by position in one frame of reference', () => {
    const b = { positions: [4, 2, 0, -2, -4, -6, -8], frameOfReference: 'F' };
    expect(syncIndex(a, 0, b)).toBe(0); // 10 -> 4, the nearest
    expect(syncIndex(a, 1, b)).toBe(0); // 5 -> 4
    expect(syncIndex(a, 2, b)).toBe(2); // 0 -> 0
    expect(syncIndex(a, 3, b)).toBe(4); // -5 -> -4 (first of the two nearest)
    expect(syncIndex(a, 4, b)).toBe(6); // -10 -> -8
  });
  it('falls back to the relative place across frames of reference or without positions', () => {
    const b = { positions: [0, 1, 2], frameOfReference: 'G' };
    expect([0, 1, 2, 3, 4].map((i) => syncIndex(a, i, b))).toEqual([0, 1, 1, 2, 2]);
    const unpositioned = { positions: [null, null, null], frameOfReference: 'F' };
    expect(syncIndex(a, 4, unpositioned)).toBe(2);
    expect(syncIndex({ positions: [null], frameOfReference: null }, 0, b)).toBe(0);
    expect(syncIndex(a, 0, { positions: [7], frameOfReference: 'F' })).toBe(0);
  });
  it('clamps an index out of range', () => {
    expect(syncIndex(a, 99, { positions: [0, 1, 2], frameOfReference: null })).toBe(2);
  });
});
