// A proposal's uncertainty map (issue 11, "explanations and triage"), the pure part: what the
// server sends with each proposal, how the panel words and sorts it, and the overlay's pixels.
// The run stores, per proposal, the pixels of its neighbourhood where the model's test-time-
// augmentation entropy is at or above a threshold (an RLE like a mask's), and the mean and max
// entropy inside the proposal (docs/inference-api.md). proposal_draw.ts draws it.

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

/** The overlay's RGBA pixels: a flat translucent fill with a stronger rim, so that it reads as a
 * heat patch and never as a label's fill or a proposal's dashed hatch. */
export function uncertaintyPixels(
  mask: Uint8Array,
  rows: number,
  columns: number,
  color: string = UNCERTAINTY_COLOR,
): Uint8ClampedArray {
  const [r, g, b] = rgb(color);
  const out = new Uint8ClampedArray(rows * columns * 4);
  const at = (x: number, y: number) => x >= 0 && y >= 0 && x < columns && y < rows && mask[y * columns + x] === 1;
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < columns; x++) {
      if (!at(x, y)) continue;
      const edge = !at(x - 1, y) || !at(x + 1, y) || !at(x, y - 1) || !at(x, y + 1);
      const i = (y * columns + x) * 4;
      out[i] = r;
      out[i + 1] = g;
      out[i + 2] = b;
      out[i + 3] = edge ? 230 : 150;
    }
  }
  return out;
}

function rgb(hex: string): [number, number, number] {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || '');
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [255, 164, 27];
}
