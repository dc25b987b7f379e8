// The preview worker: fetches the first image's DICOM (through the same WADO-URI the
// Cornerstone loader will ask for, so that request is answered from the HTTP cache) and draws
// the windowed image with its overlay text into the canvas the page handed over. It runs off
// the page's thread because that thread is busy for hundreds of milliseconds evaluating the
// Cornerstone3D chunk, often exactly when the file arrives; a frame the worker commits reaches
// the screen meanwhile (OffscreenCanvas).

import { imageCount, overlayText, type OverlayText } from './overlay';
import { fitRect, initialVoi, parsePreview, renderRgba, windowLevelOf, type PreviewImage, type VoiRange } from './preview';
import type { SeriesData } from './types';

/** From the page: first the canvas, then the series once the page has it. */
export type PreviewRequest =
  | { type: 'start'; canvas: OffscreenCanvas; base: string; dpr: number } // canvas: Cornerstone's size, device pixels
  | { type: 'series'; data: SeriesData };

/** To the page. Times (``at``) are epoch milliseconds (timeOrigin + now): the page subtracts its own origin. */
export type PreviewMessage =
  | { type: 'fetched'; at: number }
  | { type: 'painted'; at: number; wl: string }
  | { type: 'skipped'; reason: string };

interface WorkerScope {
  onmessage: ((event: MessageEvent<PreviewRequest>) => void) | null;
  postMessage(message: PreviewMessage): void;
  requestAnimationFrame?: (callback: () => void) => number;
}

const scope = self as unknown as WorkerScope;
const now = () => performance.timeOrigin + performance.now();
let ctx: OffscreenCanvasRenderingContext2D | null = null;
let base = '';
let dpr = 1;

scope.onmessage = ({ data: request }) => {
  if (request.type === 'start') {
    ({ base, dpr } = request);
    ctx = request.canvas.getContext('2d');
    // Draw once straight away, while the page's thread is still free: Chromium links a
    // canvas to the compositor on its first draw, with that thread's help, and would wait for
    // it; later draws reach the screen without it.
    ctx?.fillRect(0, 0, request.canvas.width, request.canvas.height);
  } else {
    void preview(request.data).then((reason) => reason && scope.postMessage({ type: 'skipped', reason }));
  }
};

/** Draws the first image, or says why not. */
async function preview(data: SeriesData): Promise<string | void> {
  const first = data.instances?.[0];
  if (!ctx) return 'no 2d canvas';
  if (!first) return 'no images';
  let bytes: Uint8Array;
  try {
    const response = await fetch(new URL(first.wado_url, base).href, { credentials: 'same-origin' });
    if (!response.ok) return `HTTP ${response.status}`;
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch {
    return 'network error';
  }
  scope.postMessage({ type: 'fetched', at: now() });
  const parsed = parsePreview(bytes, 0);
  if (!parsed.image) return parsed.reason;
  const voi = initialVoi(parsed.image);
  const text = overlayText(data, 0, imageCount(data), windowLevelOf(voi));
  await draw(ctx, parsed.image, voi, text);
  await nextFrame();
  scope.postMessage({ type: 'painted', at: now(), wl: text.wl });
}

/** After the frame that shows what was drawn (or at once where workers have no animation frames). */
function nextFrame(): Promise<void> {
  return new Promise((resolve) => (scope.requestAnimationFrame ? scope.requestAnimationFrame(resolve) : resolve()));
}

async function draw(ctx: OffscreenCanvasRenderingContext2D, image: PreviewImage, voi: VoiRange, text: OverlayText): Promise<void> {
  const { width, height } = ctx.canvas;
  // An ImageBitmap, not a second OffscreenCanvas: that one's first draw would wait for the
  // page's thread (see above), for as long as the Cornerstone chunk keeps it busy.
  const tile = await createImageBitmap(new ImageData(renderRgba(image, voi), image.columns, image.rows));
  const at = fitRect(width, height, image);
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, width, height);
  // Bilinear, like Cornerstone's default (linear) interpolation, on the GPU and the CPU path.
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'low';
  ctx.drawImage(tile, at.x, at.y, at.width, at.height);
  tile.close();
  drawOverlay(ctx, text);
}

/** The corners' text where the page's overlay will show it (app.css: 12px/1.3 monospace, 4px/6px in). */
function drawOverlay(ctx: OffscreenCanvasRenderingContext2D, text: OverlayText): void {
  const { width, height } = ctx.canvas;
  const line = 12 * 1.3 * dpr;
  ctx.font = `${12 * dpr}px monospace`;
  ctx.fillStyle = '#fde68a';
  ctx.shadowColor = '#000';
  ctx.shadowBlur = 2 * dpr;
  const m = ctx.measureText('Hg');
  // The DOM centres the font's box in the line box; fillText wants the baseline.
  const baseline = (top: number) => top + (line - m.fontBoundingBoxAscent - m.fontBoundingBoxDescent) / 2 + m.fontBoundingBoxAscent;
  const [left, right, top, bottom] = [6 * dpr, width - 6 * dpr, 4 * dpr, height - 4 * dpr];
  ctx.textAlign = 'left';
  ctx.fillText(text.patient, left, baseline(top));
  ctx.fillText(text.series, left, baseline(top + line));
  ctx.fillText(text.wl, left, baseline(bottom - 2 * line)); // the zoom's line is below it
  ctx.textAlign = 'right';
  ctx.fillText(text.slice, right, baseline(top));
  ctx.shadowBlur = 0;
}
