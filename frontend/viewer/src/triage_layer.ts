// The triage classifier's score and heat map in the annotator (issue 11): a badge "Triage score
// 0.87 · <model>" and, when the run kept a heat map, a "Classifier heat map" toggle that lays it
// over the slice it was computed on, on a canvas of its own (image_layer.ts draws it as the
// proposals' uncertainty is drawn). It takes no pointer and is never saved: nothing here writes.

import { HttpError, api } from './api';
import { drawOnImage, freshCanvas, imageCamera, pixelCanvas } from './image_layer';
import { heatmapPixels, triageBadge, usableHeatmap, type Heatmap, type Triage } from './triage';
import type { Viewer } from './viewer';

const $ = (id: string) => document.getElementById(id);

export class TriageLayer {
  shown = false;
  private image: HTMLCanvasElement | null = null;

  constructor(
    private readonly viewer: Viewer,
    private readonly canvas: HTMLCanvasElement,
    readonly triage: Triage,
    private readonly heatmap: Heatmap | null,
  ) {
    viewer.onRender.push(() => this.render());
    viewer.onImage.push(() => this.render());
    const toggle = $('triage-heatmap') as HTMLInputElement | null;
    toggle?.addEventListener('change', () => void this.setShown(toggle.checked));
    $('triage-go')?.addEventListener('click', () => void this.goToSlice());
  }

  /** The badge and toggle of an assignment's triage score; nothing shown when none scored it. */
  static async start(viewer: Viewer, assignmentId: string): Promise<TriageLayer | null> {
    const canvas = $('heatmap-layer') as HTMLCanvasElement | null;
    const panel = $('triage');
    if (!canvas || !panel) return null;
    let triage: Triage;
    try {
      triage = await api('GET', `/api/assignments/${assignmentId}/triage/`);
    } catch (err) {
      // the page works without it; a 404 is a read this user may not see (never reached here)
      if (!(err instanceof HttpError && err.status === 404)) console.warn('The triage score could not be read.', err);
      return null;
    }
    const badge = triageBadge(triage);
    if (!badge) return null;
    const layer = new TriageLayer(viewer, canvas, triage, usableHeatmap(triage));
    layer.fill(badge);
    return layer;
  }

  /** The slice of the stack the heat map belongs to; -1 when not in it (or no map). */
  slice(): number {
    const h = this.heatmap;
    if (!h) return -1;
    return this.viewer.frames.findIndex((f) => f.sop === h.sop_uid && f.frame === (h.frame ?? 0));
  }

  private fill(badge: string): void {
    const t = this.triage;
    const el = $('triage-badge')!;
    el.textContent = badge;
    el.title = `${t.model_name ?? ''} (${(t.model_id ?? '').slice(0, 12)}): probability of "${t.positive_class ?? ''}"` +
      (t.computed_at ? `, scored ${t.computed_at.slice(0, 10)}` : '') + '. For ordering the worklist, not a diagnosis.';
    const toggle = $('triage-heatmap') as HTMLInputElement;
    const go = $('triage-go') as HTMLButtonElement;
    const slice = this.slice();
    toggle.disabled = slice < 0;
    toggle.closest('label')!.title = slice < 0 ? 'The classifier kept no heat map of this series' : 'Where the classifier looked on its highest-scoring image (GradCAM ≥ 0.5); not an annotation';
    go.hidden = slice < 0;
    go.textContent = `image ${slice + 1}`;
    go.title = `Show image ${slice + 1}, where the heat map is`;
    $('triage')!.hidden = false;
  }

  async goToSlice(): Promise<void> {
    const slice = this.slice();
    if (slice >= 0 && slice !== this.viewer.index()) await this.viewer.go(slice);
  }

  /** On: the map over its slice (going there when another is on screen); off: gone. */
  async setShown(on: boolean): Promise<void> {
    this.shown = on && this.slice() >= 0;
    this.canvas.hidden = !this.shown;
    $('viewer')!.dataset.heatmap = this.shown ? 'shown' : 'hidden';
    if (this.shown) await this.goToSlice();
    this.render();
  }

  render(): void {
    const dpr = window.devicePixelRatio || 1;
    const ctx = freshCanvas(this.canvas, dpr);
    const h = this.heatmap;
    const cam = this.shown && h ? imageCamera(this.viewer) : null;
    if (!cam || !h || cam.frame.sop !== h.sop_uid || cam.frame.frame !== (h.frame ?? 0)) return;
    this.image ??= pixelCanvas(heatmapPixels(h), h.rows, h.columns);
    // GradCAM is computed on the slice's own grid; one of another size is stretched over it
    drawOnImage(ctx, this.image, cam, dpr, cam.frame.columns || h.columns, cam.frame.rows || h.rows);
  }
}
