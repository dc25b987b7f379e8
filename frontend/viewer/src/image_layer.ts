// Drawing a per-pixel overlay (a binary map of an image's grid) on a canvas over the viewport,
// through the viewport's camera (zoom, pan, rotation, flips): shared by the model's proposals and
// their uncertainty (proposal_draw.ts) and by the classifier's heat map (triage_layer.ts), so that
// there is one way of putting an image-space map on screen.

import { pixelToWorld } from './shapes';
import type { Frame, Viewer } from './viewer';

/** Image pixel (x, y) to canvas CSS pixels, and where the image's axes go on screen. */
export interface ImageCamera {
  frame: Frame;
  toCanvas: (x: number, y: number) => number[];
  c00: number[];
  c10: number[];
  c01: number[];
}

/** A canvas sized to its box on screen (device pixels), cleared; its context. */
export function freshCanvas(canvas: HTMLCanvasElement, dpr: number): CanvasRenderingContext2D {
  const w = Math.round(canvas.clientWidth * dpr);
  const h = Math.round(canvas.clientHeight * dpr);
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return ctx;
}

/** The camera of the image on screen; null when there is none or its metadata is not there yet. */
export function imageCamera(viewer: Viewer): ImageCamera | null {
  const frame = viewer.current();
  if (!frame) return null;
  const vp = viewer.viewport;
  const toCanvas = (x: number, y: number): number[] => vp.worldToCanvas(pixelToWorld(frame.imageId, [x, y]));
  try {
    return { frame, toCanvas, c00: toCanvas(0, 0), c10: toCanvas(1, 0), c01: toCanvas(0, 1) };
  } catch {
    return null; // image metadata not there yet
  }
}

/** Draw ``img`` over the image on screen, pixel for pixel; a map of another grid is stretched to
 * ``columns`` x ``rows`` image pixels (the image's own size). */
export function drawOnImage(
  target: CanvasRenderingContext2D,
  img: HTMLCanvasElement,
  cam: ImageCamera,
  dpr: number,
  columns: number = img.width,
  rows: number = img.height,
): void {
  const { c00, c10, c01 } = cam;
  target.setTransform(dpr * (c10[0] - c00[0]), dpr * (c10[1] - c00[1]), dpr * (c01[0] - c00[0]), dpr * (c01[1] - c00[1]), dpr * c00[0], dpr * c00[1]);
  target.imageSmoothingEnabled = false;
  target.drawImage(img, -0.5, -0.5, columns, rows); // pixel (0,0)'s centre is the image origin
}

/** An offscreen canvas of ``columns`` x ``rows`` holding the RGBA ``pixels``. */
export function pixelCanvas(pixels: Uint8ClampedArray, rows: number, columns: number): HTMLCanvasElement {
  const img = document.createElement('canvas');
  img.width = columns;
  img.height = rows;
  img.getContext('2d')!.putImageData(new ImageData(pixels as any, columns, rows), 0, 0);
  return img;
}
