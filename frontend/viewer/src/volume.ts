// Pure geometry for the layouts: whether a series can be reformatted (a volume of parallel,
// evenly spaced slices of one size) and which slice of one series matches a slice of another
// (synchronized scrolling). No Cornerstone here, so Vitest checks it on its own.

import type { InstanceData } from './types';

export interface Verdict {
  ok: boolean;
  reason: string; // why not, in words for the button's tooltip; '' when ok
}

export const MIN_SLICES = 3;
export const REFORMAT_MODALITIES = new Set(['CT', 'MR']);
const SPACING_TOLERANCE = 0.01; // relative, between the smallest and the largest gap
const SPACING_SLACK_MM = 0.01;

/** Whether the served instances (in spatial order) make a volume that reformats truthfully. */
export function volumeVerdict(modality: string, instances: InstanceData[]): Verdict {
  const no = (reason: string): Verdict => ({ ok: false, reason });
  if (!REFORMAT_MODALITIES.has(modality)) return no(`Reformats are for CT and MR volumes; this series is ${modality || 'of no modality'}.`);
  if (instances.length < MIN_SLICES) return no(`A volume needs at least ${MIN_SLICES} slices; this series has ${instances.length}.`);
  if (instances.some((i) => (i.frames || 1) > 1)) return no('Multi-frame images are not reformatted.');
  const first = instances[0];
  if (instances.some((i) => i.rows !== first.rows || i.columns !== first.columns)) return no('The slices differ in size.');
  const spacing = first.pixel_spacing;
  const sameSpacing = (s: number[] | null) =>
    !!s && !!spacing && s.length === spacing.length && s.every((v, k) => Math.abs(v - spacing[k]) <= 1e-3 * Math.max(1, Math.abs(v)));
  if (!spacing || instances.some((i) => !sameSpacing(i.pixel_spacing))) return no('The slices have no common pixel spacing.');
  const positions = instances.map((i) => i.slice_position);
  if (positions.some((p) => p === null || p === undefined)) return no('Some slices have no position in space.');
  const gaps = slicesGaps(positions as number[]);
  const smallest = Math.min(...gaps);
  const largest = Math.max(...gaps);
  if (smallest <= SPACING_SLACK_MM) return no('Two slices lie at the same position.');
  if (largest - smallest > SPACING_TOLERANCE * smallest + SPACING_SLACK_MM) {
    return no(`The slice spacing is uneven (${smallest.toFixed(2)} to ${largest.toFixed(2)} mm).`);
  }
  return { ok: true, reason: '' };
}

function slicesGaps(positions: number[]): number[] {
  const sorted = [...positions].sort((a, b) => a - b);
  return sorted.slice(1).map((p, k) => p - sorted[k]);
}

/** Whether every slice's row and column directions are those of the first (within ~0.5°). */
export function sameOrientation(orientations: (number[] | null | undefined)[]): boolean {
  const first = orientations[0];
  if (!first || first.length !== 6) return false;
  return orientations.every((o) => !!o && o.length === 6 && o.every((v, k) => Math.abs(v - first[k]) < 0.01));
}

export interface SyncSide {
  positions: (number | null | undefined)[]; // along the normal, one per displayed image
  frameOfReference: string | null;
}

/**
 * The image of `to` that matches image `index` of `from`: by position along the normal when
 * both are positioned in one frame of reference (the nearest slice), else at the same relative
 * place in the stack (first to first, last to last).
 */
export function syncIndex(from: SyncSide, index: number, to: SyncSide): number {
  const n = from.positions.length;
  const m = to.positions.length;
  if (m <= 1 || n === 0) return 0;
  const i = Math.max(0, Math.min(n - 1, index));
  const here = from.positions[i];
  const positioned = (s: SyncSide) => s.positions.every((p) => typeof p === 'number');
  if (from.frameOfReference && from.frameOfReference === to.frameOfReference && typeof here === 'number' && positioned(to)) {
    let best = 0;
    (to.positions as number[]).forEach((p, k) => {
      if (Math.abs(p - here) < Math.abs((to.positions[best] as number) - here)) best = k;
    });
    return best;
  }
  return n <= 1 ? 0 : Math.round((i * (m - 1)) / (n - 1));
}
