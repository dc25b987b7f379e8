// Drawing model proposals (issue 11) over the image with the viewport's camera: masks dashed
// and hatched (proposals.ts gives the pixels), shapes dashed, each tagged "Model 0.93"; and, on
// a canvas of its own when the reader asks, each proposal's uncertain pixels (uncertainty.ts).
// The camera and the canvases are image_layer.ts's, shared with the classifier's heat map.

import {
  MODEL_COLOR,
  boundsOf,
  pendingOnly,
  polygonOf,
  proposalMask,
  proposalPixels,
  scoreTag,
  type Proposal,
} from './proposals';
import { drawOnImage, freshCanvas, imageCamera, pixelCanvas } from './image_layer';
import { uncertaintyMask, uncertaintyPixels } from './uncertainty';
import type { Viewer } from './viewer';

export class ProposalCanvas {
  private images = new Map<string, HTMLCanvasElement>();
  private heat = new Map<string, HTMLCanvasElement | null>();

  constructor(
    readonly canvas: HTMLCanvasElement,
    private readonly viewer: Viewer,
    readonly uncertaintyCanvas: HTMLCanvasElement | null = null,
  ) {}

  private pattern: CanvasPattern | null = null;

  /** The hatch that fills a shape proposal, as the masks' pixels do: thin diagonal stripes. */
  private hatch(ctx: CanvasRenderingContext2D): CanvasPattern | null {
    if (this.pattern) return this.pattern;
    const tile = document.createElement('canvas');
    tile.width = tile.height = 8;
    const t = tile.getContext('2d')!;
    t.fillStyle = `${MODEL_COLOR}1a`; // a faint tint under the stripes
    t.fillRect(0, 0, 8, 8);
    t.strokeStyle = `${MODEL_COLOR}80`;
    t.lineWidth = 2;
    t.beginPath();
    for (const o of [-8, 0, 8]) {
      t.moveTo(o, 8);
      t.lineTo(o + 8, 0);
    }
    t.stroke();
    this.pattern = ctx.createPattern(tile, 'repeat');
    return this.pattern;
  }

  /** Forget the drawn masks (the list was read again). */
  clear(): void {
    this.images.clear();
    this.heat.clear();
  }

  /** The proposals of the current image, drawn with the viewport's camera (after every render). */
  render(items: Proposal[], editingId: string | null, visible: boolean, uncertainty = false): void {
    const dpr = window.devicePixelRatio || 1;
    const ctx = freshCanvas(this.canvas, dpr);
    const heat = this.uncertaintyCanvas && !this.uncertaintyCanvas.hidden ? freshCanvas(this.uncertaintyCanvas, dpr) : null;
    const cam = visible ? imageCamera(this.viewer) : null;
    if (!cam) return;
    const f = cam.frame;
    const c = cam.toCanvas;
    const here = pendingOnly(items).filter((p) => p.sop_instance_uid === f.sop && p.frame === f.frame);
    const onImage = (target: CanvasRenderingContext2D, img: HTMLCanvasElement) => drawOnImage(target, img, cam, dpr);
    if (heat && uncertainty) {
      for (const p of here) {
        const img = this.heatImage(p);
        if (img) onImage(heat, img);
      }
    }
    for (const p of here) {
      const editing = editingId === p.id;
      if (p.kind === 'mask') {
        const img = this.image(p, editing);
        if (!img) continue;
        onImage(ctx, img);
      } else {
        this.drawShape(ctx, dpr, p, c);
      }
      if (!editing) this.drawTag(ctx, dpr, p, c);
    }
  }

  private image(p: Proposal, outlineOnly: boolean): HTMLCanvasElement | null {
    const key = `${p.id}|${outlineOnly}`;
    let img = this.images.get(key);
    if (img) return img;
    const { rows, columns } = p.geometry ?? {};
    if (!rows || !columns) return null;
    img = pixelCanvas(proposalPixels(proposalMask(p), rows, columns, MODEL_COLOR, outlineOnly), rows, columns);
    this.images.set(key, img);
    return img;
  }

  /** A proposal's uncertain pixels as an image of the slice's size; null when there are none. */
  private heatImage(p: Proposal): HTMLCanvasElement | null {
    if (this.heat.has(p.id)) return this.heat.get(p.id)!;
    const mask = uncertaintyMask(p);
    let img: HTMLCanvasElement | null = null;
    if (mask && p.uncertainty) {
      const { rows, columns } = p.uncertainty;
      img = pixelCanvas(uncertaintyPixels(mask, rows, columns), rows, columns);
    }
    this.heat.set(p.id, img);
    return img;
  }

  private drawShape(ctx: CanvasRenderingContext2D, dpr: number, p: Proposal, c: (x: number, y: number) => number[]): void {
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.strokeStyle = MODEL_COLOR;
    ctx.fillStyle = this.hatch(ctx) ?? `${MODEL_COLOR}26`;
    ctx.lineWidth = 2;
    ctx.setLineDash([6, 4]);
    const points = polygonOf(p.kind, p.geometry);
    ctx.beginPath();
    if (points.length) {
      points.forEach(([x, y], i) => (i ? ctx.lineTo(c(x, y)[0], c(x, y)[1]) : ctx.moveTo(c(x, y)[0], c(x, y)[1])));
      if (p.kind !== 'line') ctx.closePath();
    } else if (Number.isFinite(p.geometry?.x)) {
      const [x, y] = c(p.geometry.x, p.geometry.y);
      ctx.arc(x, y, 6, 0, 2 * Math.PI);
    }
    if (p.kind !== 'line') ctx.fill();
    ctx.stroke();
    ctx.setLineDash([]);
  }

  /** "Model 0.93" on a filled tag at the top left of the shape as shown (rotated or flipped). */
  private drawTag(ctx: CanvasRenderingContext2D, dpr: number, p: Proposal, c: (x: number, y: number) => number[]): void {
    const b = boundsOf(p.kind, p.geometry);
    if (!b) return;
    const corners = [c(b.x0 - 0.5, b.y0 - 0.5), c(b.x1 + 0.5, b.y0 - 0.5), c(b.x0 - 0.5, b.y1 + 0.5), c(b.x1 + 0.5, b.y1 + 0.5)];
    const left = Math.min(...corners.map((q) => q[0]));
    const top = Math.min(...corners.map((q) => q[1]));
    const text = scoreTag(p.score);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.font = 'bold 11px system-ui, sans-serif';
    const width = ctx.measureText(text).width + 8;
    const y = top >= 16 ? top - 16 : top + 2;
    ctx.fillStyle = MODEL_COLOR;
    ctx.fillRect(left, y, width, 15);
    ctx.fillStyle = '#1a0016';
    ctx.fillText(text, left + 4, y + 11);
  }
}
