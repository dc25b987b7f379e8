// The triage classifier's answer for a read (issue 11), the pure part: what
// GET /api/assignments/<id>/triage/ sends, the badge's words and the heat map's pixels.
// triage_layer.ts shows it. The heat map is where the classifier looked on its highest-scoring
// slice (GradCAM at or above one half): shown on demand, never editable, never an annotation.

import { overlayPixels } from './mask_overlay';
import { formatScore } from './proposals';
import { rleToMask } from './rle';

/** The heat map's colour: violet, apart from the model's magenta, the uncertainty's orange and
 * the default labels' colours (annotations/schemas.py). */
export const HEATMAP_COLOR = '#9d5cff';

export interface Heatmap {
  sop_uid: string;
  frame: number;
  rows: number;
  columns: number;
  rle: number[];
}

export interface Triage {
  scored: boolean;
  model_id: string | null;
  model_name: string | null;
  score: number | null;
  positive_class: string | null;
  computed_at: string | null;
  heatmap: Heatmap | null;
}

/** "Triage score 0.87 · Chest triage"; '' when nothing scored the series. */
export function triageBadge(t: Triage | null): string {
  if (!t?.scored || typeof t.score !== 'number') return '';
  return `Triage score ${formatScore(t.score)}${t.model_name ? ` · ${t.model_name}` : ''}`;
}

/** The heat map as a usable map: null when there is none, it is empty or its size is missing. */
export function usableHeatmap(t: Triage | null): Heatmap | null {
  const h = t?.heatmap;
  if (!h || !h.sop_uid || !h.rows || !h.columns || !Array.isArray(h.rle) || !h.rle.length) return null;
  return h;
}

/** The fill's opacity: lighter than the uncertainty's, as a heat map can cover much of the anatomy. */
export const HEATMAP_FILL = 100;

/** The heat map's RGBA pixels (rows x columns), drawn as the uncertainty is, in HEATMAP_COLOR. */
export function heatmapPixels(h: Heatmap): Uint8ClampedArray {
  return overlayPixels(rleToMask(h.rle, h.rows * h.columns), h.rows, h.columns, HEATMAP_COLOR, HEATMAP_FILL);
}
