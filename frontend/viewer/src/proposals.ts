// Model proposals (issue 11), the pure part: what the server sends, how the panel groups and
// words them, and the pixels of their layer. No DOM and no Cornerstone here, so that it is tested
// on its own (proposals.test.ts); proposal_layer.ts draws and wires it.

import { hexRgb, maskPixels } from './mask_overlay';
import { rleToMask } from './rle';
import { byUncertainty, type ProposalOrder, type Uncertainty } from './uncertainty';

/** The layer's colour: one for every model, so that a proposal never looks like a label. */
export const MODEL_COLOR = '#ff4fd8';

export type Decision = 'pending' | 'accepted' | 'rejected';

/** One proposal, as GET /api/assignments/<id>/proposals/ lists it. */
export interface Proposal {
  id: string;
  run: string;
  model_version: string;
  label: string;
  label_name: string;
  kind: string;
  sop_instance_uid: string;
  frame: number;
  geometry: any;
  score: number;
  /** The run's uncertainty map (uncertainty.ts); null for proposals made before maps. */
  uncertainty?: Uncertainty | null;
  decision: Decision;
  annotation: string | null;
}

export interface ProposalGroup {
  label: string;
  name: string;
  items: Proposal[];
}

/** The score as the layer's tag says it: "Model 0.93". */
export function scoreTag(score: number): string {
  return `Model ${formatScore(score)}`;
}

export function formatScore(score: number): string {
  return Number.isFinite(score) ? score.toFixed(2) : '–';
}

/** A model version, content-addressed (a sha256) or a UUID, cut to what a person compares. */
export function shortId(id: unknown): string {
  const s = String(id ?? '');
  return s.replace(/^sha256:/, '').replace(/-/g, '').slice(0, 8);
}

export function pendingOnly(items: Proposal[]): Proposal[] {
  return items.filter((p) => p.decision === 'pending');
}

/** The pending proposals by label, in the label schema's order, each group by slice then score
 * (best first), or with ``order`` 'uncertainty' most uncertain first; ``sliceOf`` gives a
 * proposal's place in the stack (-1 when not in it). */
export function groupByLabel(
  items: Proposal[],
  labelOrder: string[],
  sliceOf: (p: Proposal) => number,
  order: ProposalOrder = 'slice',
): ProposalGroup[] {
  const groups = new Map<string, ProposalGroup>();
  for (const p of pendingOnly(items)) {
    let g = groups.get(p.label);
    if (!g) {
      g = { label: p.label, name: p.label_name || 'label', items: [] };
      groups.set(p.label, g);
    }
    g.items.push(p);
  }
  const rank = (label: string) => {
    const i = labelOrder.indexOf(label);
    return i < 0 ? labelOrder.length : i;
  };
  const out = [...groups.values()].sort((a, b) => rank(a.label) - rank(b.label) || a.name.localeCompare(b.name));
  const bySlice = (a: Proposal, b: Proposal) => sliceOf(a) - sliceOf(b) || b.score - a.score;
  const sort = order === 'uncertainty' ? (a: Proposal, b: Proposal) => byUncertainty(a, b) || bySlice(a, b) : bySlice;
  for (const g of out) g.items.sort(sort);
  return out;
}

/** How many pending proposals "Accept all ≥ threshold" takes (the server compares the same way). */
export function countAtOrAbove(items: Proposal[], threshold: number): number {
  return pendingOnly(items).filter((p) => p.score >= threshold - 1e-9).length;
}

/** A threshold the reader typed, kept within 0..1; null when it is not a number. */
export function parseThreshold(raw: string): number | null {
  if (raw.trim() === '') return null;
  const v = Number(raw);
  if (!Number.isFinite(v)) return null;
  return Math.min(1, Math.max(0, v));
}

export interface Bounds {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** The pixel bounds of a proposal's shape (where its tag goes); null when it has none. */
export function boundsOf(kind: string, geometry: any): Bounds | null {
  if (!geometry) return null;
  if (kind === 'mask') {
    const { rle, columns } = geometry;
    if (!Array.isArray(rle) || !rle.length || !columns) return null;
    let b: Bounds | null = null;
    for (let k = 0; k + 1 < rle.length; k += 2) {
      if (rle[k + 1] <= 0) continue;
      const first = rle[k];
      const last = rle[k] + rle[k + 1] - 1;
      const y0 = Math.floor(first / columns);
      const y1 = Math.floor(last / columns);
      // a run that wraps a row covers the whole width between its rows
      const x0 = y1 > y0 ? 0 : first % columns;
      const x1 = y1 > y0 ? columns - 1 : last % columns;
      b = b
        ? { x0: Math.min(b.x0, x0), y0: Math.min(b.y0, y0), x1: Math.max(b.x1, x1), y1: Math.max(b.y1, y1) }
        : { x0, y0, x1, y1 };
    }
    return b;
  }
  if (kind === 'box' && 'x0' in geometry) {
    return {
      x0: Math.min(geometry.x0, geometry.x1),
      y0: Math.min(geometry.y0, geometry.y1),
      x1: Math.max(geometry.x0, geometry.x1),
      y1: Math.max(geometry.y0, geometry.y1),
    };
  }
  const points: number[][] = geometry.points ?? (Number.isFinite(geometry.x) ? [[geometry.x, geometry.y]] : []);
  if (!points.length) return null;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return { x0: Math.min(...xs), y0: Math.min(...ys), x1: Math.max(...xs), y1: Math.max(...ys) };
}

/** The outline of a shape proposal in pixels: a box's four corners, a polygon's points. */
export function polygonOf(kind: string, geometry: any): number[][] {
  if (kind === 'box' && geometry && 'x0' in geometry) {
    const { x0, y0, x1, y1 } = geometry;
    return [
      [x0, y0],
      [x1, y0],
      [x1, y1],
      [x0, y1],
    ];
  }
  return Array.isArray(geometry?.points) ? geometry.points : [];
}

/** The RGBA pixels of a mask proposal in the layer's style: its outline dashed in full colour,
 * its inside hatched with thin translucent diagonal stripes, so it reads as "not yours yet" at
 * any zoom and never as a label's solid fill. ``outlineOnly`` while the reader edits it. */
export function proposalPixels(
  mask: Uint8Array,
  rows: number,
  columns: number,
  color: string = MODEL_COLOR,
  outlineOnly = false,
): Uint8ClampedArray {
  // Outline dashed in 3 px runs; inside, a hatch over a faint tint.
  return maskPixels(mask, rows, columns, hexColor(color), (x, y, edge) => {
    if (edge) return Math.floor((x + y) / 3) % 2 === 0 ? 255 : 0;
    return outlineOnly ? 0 : (x + y) % 6 < 2 ? 120 : 28;
  });
}

/** A proposal's mask as a binary image (its geometry is the annotations' RLE). */
export function proposalMask(p: Proposal): Uint8Array {
  const { rows, columns, rle } = p.geometry ?? {};
  return rleToMask(rle ?? [], (rows ?? 0) * (columns ?? 0));
}

export function hexColor(hex: string): [number, number, number] {
  return hexRgb(hex, [255, 79, 216]);
}

/** Pixels added to and removed from ``before`` by ``after`` (same size). */
export function pixelChange(before: Uint8Array, after: Uint8Array): { added: number; removed: number } {
  let added = 0;
  let removed = 0;
  for (let i = 0; i < after.length; i++) {
    if (after[i] && !before[i]) added++;
    else if (!after[i] && before[i]) removed++;
  }
  return { added, removed };
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** What the history says of an annotation that came from a model: one line for the model and
 * whether the reader changed it, one for the pixel changes, Dice and time. Tolerant of the
 * server's spelling (per-slice rows or totals), since it is only ever read here. */
export function provenanceLines(prov: any): string[] {
  if (!prov || typeof prov !== 'object') return [];
  const perSlice = prov.slices ?? prov.per_slice;
  // per slice: a list of rows, or an object keyed "<sop>:<frame>"
  const slices: any[] = Array.isArray(perSlice) ? perSlice : perSlice && typeof perSlice === 'object' ? Object.values(perSlice) : [];
  const sum = (key: string) => slices.reduce((n, s) => n + (num(s?.[key]) ?? num(s?.[`pixels_${key}`]) ?? 0), 0);
  const added = num(prov.pixels_added) ?? num(prov.added) ?? sum('added');
  const removed = num(prov.pixels_removed) ?? num(prov.removed) ?? sum('removed');
  const edited = typeof prov.edited === 'boolean' ? prov.edited : added + removed > 0;
  const version = prov.model_version?.id ?? prov.model_version ?? prov.model_version_id ?? '';
  const name = prov.model_version?.name ?? prov.model_name ?? '';
  const first = `From model ${shortId(version)}${name ? ` (${name})` : ''} · ${edited ? 'edited' : 'unchanged'}`;
  const parts = [`+${added} / −${removed} px`];
  if (slices.length > 1) parts[0] += ` over ${slices.length} slices`;
  const dice = num(prov.dice);
  if (dice !== null) parts.push(`Dice ${dice.toFixed(2)}`);
  const seconds = num(prov.seconds_to_accept);
  if (seconds !== null) parts.push(`${formatSeconds(seconds)} to accept`);
  return [first, parts.join(' · ')];
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}
