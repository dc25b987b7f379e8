// The overlay text at the viewport's corners. One function, so that the preview (drawn in a
// worker before Cornerstone3D is loaded) and the viewer write exactly the same words.

import type { SeriesData } from './types';

export interface OverlayText {
  patient: string; // top left, first line
  series: string; // top left, second line
  slice: string; // top right
  wl: string; // bottom left, above the zoom
}

/** ``index`` is 0-based among ``total`` displayed images; ``wl`` is [width, center] or null. */
export function overlayText(data: SeriesData, index: number, total: number, wl: [number, number] | null): OverlayText {
  const { series } = data;
  return {
    patient: `Patient ${data.patient}`,
    // The DOM collapses the blank a missing number leaves; a canvas would not.
    series: `${series.modality} series ${series.number ?? ''} ${series.description ?? ''}`.replace(/\s+/g, ' ').trim(),
    slice: `${index + 1} / ${total}`,
    wl: wl ? `W ${Math.round(wl[0])} L ${Math.round(wl[1])}` : '',
  };
}

/** How many images the viewer's stack holds: one per frame of each instance. */
export function imageCount(data: SeriesData): number {
  return data.instances.reduce((n, inst) => n + Math.max(1, inst.frames || 1), 0);
}
