// A proposal's uncertainty map (issue 11, "explanations and triage"), the pure part: what the
// server sends with each proposal, how the panel words and sorts it, and the overlay's pixels.
// The run stores, per proposal, the pixels of its neighbourhood where the model's test-time-
// augmentation entropy is at or above a threshold (an RLE like a mask's), and the mean and max
// entropy inside the proposal (docs/inference-api.md). proposal_draw.ts draws it.

import { overlayPixels } from './mask_overlay';
import { rleToMask } from './rle';

/** The overlay's colour: yellow-orange, apart from the model's magenta and from any label. */
export const UNCERTAINTY_COLOR = '#ffa41b';

export interface Uncertainty {
  rows: number;
  columns: number;
  rle: number[];
  mean: number;
  max: number;
  method: string;
  threshold: number;
}

export type ProposalOrder = 'slice' | 'uncertainty';

interface HasUncertainty {
  uncertainty?: Uncertainty | null;
}

/** The mean uncertainty inside a proposal; null when the run made no map for it. */
export function meanUncertainty(p: HasUncertainty): number | null {
  const v = p.uncertainty?.mean;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** "u 0.32" beside the score; '' when there is no map. */
export function uncertaintyTag(p: HasUncertainty): string {
  const v = meanUncertainty(p);
  return v === null ? '' : `u ${v.toFixed(2)}`;
}

/** Most uncertain first; proposals without a map last. 0 when both are equally unsure. */
export function byUncertainty(a: HasUncertainty, b: HasUncertainty): number {
  const ua = meanUncertainty(a) ?? -1;
  const ub = meanUncertainty(b) ?? -1;
  return ub - ua;
}

/** The uncertain pixels as a binary image; null when there are none (or no map). */
export function uncertaintyMask(p: HasUncertainty): Uint8Array | null {
  const u = p.uncertainty;
  if (!u || !Array.isArray(u.rle) || !u.rle.length || !u.rows || !u.columns) return null;
  return rleToMask(u.rle, u.rows * u.columns);
}

/** The overlay's RGBA pixels (mask_overlay.ts), in the uncertainty's colour unless told otherwise. */
export function uncertaintyPixels(
  mask: Uint8Array,
  rows: number,
  columns: number,
  color: string = UNCERTAINTY_COLOR,
): Uint8ClampedArray {
  return overlayPixels(mask, rows, columns, color);
}
