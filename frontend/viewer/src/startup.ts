// The page before Cornerstone3D is ready: the preview of the first image (drawn by
// preview.worker.ts into a canvas laid exactly over Cornerstone's), the timing attributes
// (data-first-image-ms: the first pixels, preview or Cornerstone; data-interactive-ms:
// Cornerstone has rendered and the tools work) and the input held back until then. Part of
// the small entry; the app chunk calls cornerstoneRendered() and interactive().
//
// Held-back input is dropped, not queued: a wheel turn or arrow key during the preview would
// otherwise land on a different slice than the one the reader was looking at when they gave it.

import { fetchEarly } from './early';
import type { PreviewMessage, PreviewRequest } from './preview.worker';
import type { Early } from './types';

let page: HTMLElement | null = null;
let firstImageAt = Infinity;
let preview: HTMLCanvasElement | null = null;
let worker: Worker | null = null;
let released = false;
let releaseInput = () => {};

/** Starts the preview (where the browser can draw off the page's thread) and the early fetches. */
export function start(root: HTMLElement): Promise<Early> {
  page = root;
  startPreview(root); // first: a worker takes a while to start on a busy machine
  releaseInput = holdInput(root);
  const early = fetchEarly({ assignment: root.dataset.assignment ?? '', series: root.dataset.series ?? '' });
  early.then(
    ({ data }) => {
      if (worker) worker.postMessage({ type: 'series', data } satisfies PreviewRequest);
      else warmCache(data.instances?.[0]?.wado_url);
    },
    () => removePreview(),
  );
  return early;
}

/** Cornerstone's first IMAGE_RENDERED: the preview goes, in the same frame as Cornerstone's image. */
export function cornerstoneRendered(): void {
  performance.mark('viewer-cornerstone-first-image');
  firstImage(performance.now(), 'cornerstone');
  removePreview();
}

/** Cornerstone has rendered and the controls are wired: input goes through from now on. */
export function interactive(): void {
  if (released || !page) return;
  released = true;
  performance.mark('viewer-interactive');
  page.dataset.interactiveMs = String(Math.round(performance.now()));
  releaseInput();
}

/** The page failed to start: say so instead of "loading"; the preview, if any, stays. */
export function startFailed(): void {
  const label = document.getElementById('ov-loading');
  if (label) label.hidden = true;
}

function firstImage(at: number, source: 'preview' | 'cornerstone'): void {
  if (!page || at >= firstImageAt) return;
  firstImageAt = at;
  page.dataset.firstImageMs = String(Math.round(at));
  page.dataset.firstImageSource = source;
  performance.clearMarks('viewer-first-image');
  performance.mark('viewer-first-image', { startTime: at });
}

function startPreview(root: HTMLElement): void {
  const viewport = document.getElementById('viewport');
  if (!viewport || typeof Worker === 'undefined' || !('transferControlToOffscreen' in HTMLCanvasElement.prototype)) {
    root.dataset.preview = 'skipped';
    root.dataset.previewReason = 'no worker or OffscreenCanvas';
    return;
  }
  const dpr = window.devicePixelRatio || 1;
  const canvas = document.createElement('canvas');
  canvas.id = 'viewer-preview';
  canvas.setAttribute('aria-hidden', 'true');
  // The size Cornerstone gives its canvas (round(client size x devicePixelRatio)), on top of it.
  canvas.width = Math.max(1, Math.round(viewport.clientWidth * dpr));
  canvas.height = Math.max(1, Math.round(viewport.clientHeight * dpr));
  Object.assign(canvas.style, { position: 'absolute', inset: '0', width: '100%', height: '100%', pointerEvents: 'none' });
  viewport.after(canvas);
  preview = canvas;
  const offscreen = canvas.transferControlToOffscreen();
  worker = new Worker(new URL('./preview.worker.ts', import.meta.url), { type: 'module' });
  const toPage = (at: number) => at - performance.timeOrigin;
  worker.onerror = () => skipped(root, 'the preview worker failed');
  worker.onmessage = ({ data: m }: MessageEvent<PreviewMessage>) => {
    if (m.type === 'fetched') {
      performance.mark('viewer-preview-dicom', { startTime: toPage(m.at) });
    } else if (m.type === 'painted' && preview) {
      performance.mark('viewer-preview-painted', { startTime: toPage(m.at) });
      root.dataset.preview = 'painted';
      firstImage(toPage(m.at), 'preview');
    } else if (m.type === 'skipped') {
      skipped(root, m.reason);
    }
  };
  worker.postMessage({ type: 'start', canvas: offscreen, base: window.location.href, dpr } satisfies PreviewRequest, [offscreen]);
}

/** No preview (compressed, unusual, failed): Cornerstone's image will be the first. */
function skipped(root: HTMLElement, reason: string): void {
  root.dataset.preview = 'skipped';
  root.dataset.previewReason = reason;
  removePreview();
}

/** Without a worker, as before the preview: put the first file in the HTTP cache for the loader. */
function warmCache(wadoUrl: string | undefined): void {
  if (wadoUrl) fetch(new URL(wadoUrl, window.location.href).href, { credentials: 'same-origin' }).catch(() => undefined);
}

function removePreview(): void {
  preview?.remove();
  preview = null;
  worker?.terminate();
  worker = null;
}

const NAVIGATION_KEYS = new Set(['ArrowUp', 'ArrowDown', 'ArrowLeft', 'ArrowRight', 'PageUp', 'PageDown', 'Home', 'End', 'Delete', 'Backspace']);

/** Whether the viewer's keyboard handler (app.ts) would act on this key. */
function isViewerKey(e: KeyboardEvent): boolean {
  const target = e.target as HTMLElement | null;
  if (target?.closest?.('input, textarea, select, [contenteditable]')) return false;
  if (e.ctrlKey || e.metaKey) return ['z', 'y'].includes(e.key.toLowerCase());
  return !e.altKey && (NAVIGATION_KEYS.has(e.key) || e.key.length === 1);
}

/**
 * Until interactive(): the toolbar is inert (the template says so from the first paint) and
 * dimmed, the viewport swallows pointer and wheel input, and the viewer's keys do nothing
 * (not even scroll the page). Returns the function that lets everything through.
 */
function holdInput(root: HTMLElement): () => void {
  const toolbar = root.querySelector<HTMLElement>('.viewer-toolbar');
  const wrap = root.querySelector<HTMLElement>('.viewport-wrap');
  toolbar?.setAttribute('inert', '');
  if (toolbar) toolbar.style.opacity = '0.5';
  const swallow = (e: Event) => {
    e.preventDefault();
    e.stopPropagation();
  };
  const onKey = (e: KeyboardEvent) => isViewerKey(e) && swallow(e);
  const pointer = ['pointerdown', 'mousedown', 'touchstart', 'wheel', 'click', 'dblclick', 'contextmenu'];
  pointer.forEach((type) => wrap?.addEventListener(type, swallow, { capture: true, passive: false }));
  window.addEventListener('keydown', onKey, true);
  return () => {
    pointer.forEach((type) => wrap?.removeEventListener(type, swallow, { capture: true }));
    window.removeEventListener('keydown', onKey, true);
    toolbar?.removeAttribute('inert');
    if (toolbar) toolbar.style.opacity = '';
    const label = document.getElementById('ov-loading');
    if (label) label.hidden = true;
  };
}
