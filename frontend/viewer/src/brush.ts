// A brush and an eraser of our own over the viewport: each (image, frame, label) has a binary
// mask in the image's pixel grid, painted in image pixels and drawn with the viewport's camera.

import { freshCanvas } from './image_layer';
import { hexRgb } from './mask_overlay';
import { pixelToWorld, worldToPixel } from './shapes';

export interface MaskEntry {
  key: string;
  sop: string;
  frame: number;
  label: string;
  rows: number;
  columns: number;
  mask: Uint8Array;
  color: string;
  hidden: boolean;
}

export interface BrushTarget {
  imageId: string;
  sop: string;
  frame: number;
  rows: number;
  columns: number;
}

export type BrushMode = 'off' | 'brush' | 'eraser' | 'grow';

/** Asks the server to grow a region from seeds on one image; the mask, or null when refused.
 * ``session`` is the same object for every grow from one set of seeds (grow3d.ts keys on it). */
export type Grower = (target: BrushTarget, inside: number[][], outside: number[][], session: object) => Promise<Uint8Array | null>;

interface Seeds {
  key: string;
  base: Uint8Array; // the mask before the first seed: each grown region is laid over it
  inside: number[][];
  outside: number[][];
}

export function maskKey(sop: string, frame: number, label: string): string {
  return `${sop}|${frame}|${label}`;
}

export class MaskLayer {
  readonly masks = new Map<string, MaskEntry>();
  mode: BrushMode = 'off';
  radius = 5; // image pixels
  private stroke: { entry: MaskEntry; before: Uint8Array; last: [number, number] | null; points: number[][] } | null = null;
  /** Where the threshold brush is on: the pixels a stroke through ``points`` may paint (the
   * server reads their values); null when it is off, and the stroke paints every pixel. */
  limiter: ((target: BrushTarget, points: number[][], radius: number) => Promise<Uint8Array | null>) | null = null;
  grower: Grower | null = null;
  /** While the reader edits a model proposal (proposal_layer.ts): strokes on its image go into
   * this entry instead of the label's mask, and go to ``onStroke`` here instead of being saved. */
  editing: {
    entry: MaskEntry;
    onStroke: (entry: MaskEntry, before: Uint8Array) => void;
    undo: () => void;
    redo: () => void;
  } | null = null;
  private seeds: Seeds | null = null;
  private growing = false;

  constructor(
    private canvas: HTMLCanvasElement,
    private viewport: () => any,
    private target: () => BrushTarget | null,
    private label: () => { id: string; color: string } | null,
    private onStroke: (entry: MaskEntry, before: Uint8Array) => void,
  ) {
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    canvas.addEventListener('pointerup', (e) => this.up(e));
    canvas.addEventListener('pointercancel', (e) => this.up(e));
  }

  setMode(mode: BrushMode): void {
    if (mode !== this.mode) this.seeds = null;
    this.mode = mode;
    this.canvas.style.pointerEvents = mode === 'off' ? 'none' : 'auto';
    this.canvas.style.cursor = mode === 'off' ? '' : 'crosshair';
  }

  entry(target: BrushTarget, label: { id: string; color: string }): MaskEntry {
    const key = maskKey(target.sop, target.frame, label.id);
    let entry = this.masks.get(key);
    if (!entry) {
      entry = {
        key,
        sop: target.sop,
        frame: target.frame,
        label: label.id,
        rows: target.rows,
        columns: target.columns,
        mask: new Uint8Array(target.rows * target.columns),
        color: label.color,
        hidden: false,
      };
      this.masks.set(key, entry);
    }
    return entry;
  }

  private entryFor(target: BrushTarget, label: { id: string; color: string }): MaskEntry {
    const edited = this.editing?.entry;
    if (edited && edited.sop === target.sop && edited.frame === target.frame) return edited;
    return this.entry(target, label);
  }

  private stroked(entry: MaskEntry, before: Uint8Array): void {
    if (this.editing && this.editing.entry === entry) this.editing.onStroke(entry, before);
    else this.onStroke(entry, before);
  }

  private imagePoint(e: PointerEvent, imageId: string): [number, number] {
    const rect = this.canvas.getBoundingClientRect();
    const world = this.viewport().canvasToWorld([e.clientX - rect.left, e.clientY - rect.top]);
    return worldToPixel(imageId, world);
  }

  private down(e: PointerEvent): void {
    if (this.mode === 'off' || e.button !== 0) return;
    const target = this.target();
    const label = this.label();
    if (!target || !label) return;
    if (this.mode === 'grow') {
      void this.seed(target, label, this.imagePoint(e, target.imageId), e.shiftKey);
      return;
    }
    this.canvas.setPointerCapture(e.pointerId);
    const entry = this.entryFor(target, label);
    this.stroke = { entry, before: entry.mask.slice(), last: null, points: [] };
    this.paintTo(this.imagePoint(e, target.imageId));
  }

  /** Grow from seeds: a click adds a seed inside (Shift-click: outside) and grows again from all
   * the seeds of this image and label; the region lands in the mask as an editable stroke. A
   * click while the server is growing is kept and grown from as soon as that answer is in. */
  private async seed(target: BrushTarget, label: { id: string; color: string }, p: [number, number], outside: boolean) {
    if (!this.grower) return;
    const entry = this.entryFor(target, label);
    if (!this.seeds || this.seeds.key !== entry.key) this.seeds = { key: entry.key, base: entry.mask.slice(), inside: [], outside: [] };
    const seeds = this.seeds;
    const point = [Math.round(p[0]), Math.round(p[1])];
    if (point[0] < 0 || point[1] < 0 || point[0] >= target.columns || point[1] >= target.rows) return;
    (outside ? seeds.outside : seeds.inside).push(point);
    this.render();
    if (this.growing) return;
    this.growing = true;
    this.canvas.dataset.growing = 'true';
    try {
      let asked = 0;
      while (this.seeds === seeds && seeds.inside.length && asked !== seeds.inside.length + seeds.outside.length) {
        asked = seeds.inside.length + seeds.outside.length;
        const grown = await this.grower(target, seeds.inside.slice(), seeds.outside.slice(), seeds);
        if (!grown || this.seeds !== seeds) return;
        const before = entry.mask.slice();
        entry.mask = seeds.base.map((v, i) => (v || grown[i] ? 1 : 0));
        this.render();
        this.stroked(entry, before);
      }
    } finally {
      this.growing = false;
      delete this.canvas.dataset.growing;
    }
  }

  private move(e: PointerEvent): void {
    const target = this.target();
    if (!this.stroke || !target) return;
    this.paintTo(this.imagePoint(e, target.imageId));
  }

  private up(_e: PointerEvent): void {
    if (!this.stroke) return;
    const { entry, before, points } = this.stroke;
    this.stroke = null;
    const target = this.target();
    if (this.mode !== 'brush' || !this.limiter || !target) {
      this.stroked(entry, before);
      return;
    }
    void this.limited(entry, before, target, points);
  }

  /** The threshold brush: the stroke as painted is a preview; what lands is the painted pixels
   * the server finds within the value range, laid over the mask as it was before the stroke. */
  private async limited(entry: MaskEntry, before: Uint8Array, target: BrushTarget, points: number[][]) {
    this.canvas.dataset.growing = 'true';
    try {
      const allowed = await this.limiter!(target, points, this.radius);
      entry.mask = allowed ? before.map((v, i) => (v || allowed[i] ? 1 : 0)) : before;
      this.render();
      if (allowed) this.stroked(entry, before);
    } finally {
      delete this.canvas.dataset.growing;
    }
  }

  private paintTo(p: [number, number]): void {
    const stroke = this.stroke!;
    const from = stroke.last ?? p;
    const steps = Math.max(1, Math.ceil(Math.hypot(p[0] - from[0], p[1] - from[1]) / Math.max(1, this.radius / 2)));
    for (let s = 1; s <= steps; s++) {
      const t = s / steps;
      this.disk(stroke.entry, from[0] + (p[0] - from[0]) * t, from[1] + (p[1] - from[1]) * t);
    }
    stroke.last = p;
    const last = stroke.points[stroke.points.length - 1];
    if (!last || Math.hypot(p[0] - last[0], p[1] - last[1]) >= Math.max(1, this.radius / 2)) stroke.points.push([p[0], p[1]]);
    this.render();
  }

  private disk(entry: MaskEntry, cx: number, cy: number): void {
    const r = this.radius;
    const value = this.mode === 'eraser' ? 0 : 1;
    for (let y = Math.max(0, Math.floor(cy - r)); y <= Math.min(entry.rows - 1, Math.ceil(cy + r)); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x <= Math.min(entry.columns - 1, Math.ceil(cx + r)); x++) {
        if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) entry.mask[y * entry.columns + x] = value;
      }
    }
  }

  /** Draw the current image's masks with the viewport's camera (call after every render). */
  render(): void {
    const canvas = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const ctx = freshCanvas(canvas, dpr);
    const target = this.target();
    if (!target) return;
    const vp = this.viewport();
    const c = (x: number, y: number) => vp.worldToCanvas(pixelToWorld(target.imageId, [x, y]));
    let c00: number[], c10: number[], c01: number[];
    try {
      c00 = c(0, 0);
      c10 = c(1, 0);
      c01 = c(0, 1);
    } catch {
      return; // image metadata not there yet
    }
    for (const entry of this.masks.values()) {
      if (entry.hidden || entry.sop !== target.sop || entry.frame !== target.frame) continue;
      const img = new ImageData(entry.columns, entry.rows);
      const [r, g, b] = hexColor(entry.color);
      for (let i = 0; i < entry.mask.length; i++) {
        if (!entry.mask[i]) continue;
        img.data[i * 4] = r;
        img.data[i * 4 + 1] = g;
        img.data[i * 4 + 2] = b;
        img.data[i * 4 + 3] = 110;
      }
      const off = document.createElement('canvas');
      off.width = entry.columns;
      off.height = entry.rows;
      off.getContext('2d')!.putImageData(img, 0, 0);
      ctx.setTransform(
        dpr * (c10[0] - c00[0]),
        dpr * (c10[1] - c00[1]),
        dpr * (c01[0] - c00[0]),
        dpr * (c01[1] - c00[1]),
        dpr * c00[0],
        dpr * c00[1],
      );
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(off, -0.5, -0.5); // pixel (0,0)'s centre is the image origin
    }
    if (this.mode === 'grow' && this.seeds) this.drawSeeds(ctx, dpr, (x, y) => c(x, y), target);
  }

  private drawSeeds(ctx: CanvasRenderingContext2D, dpr: number, c: (x: number, y: number) => number[], target: BrushTarget) {
    const seeds = this.seeds!;
    if (!seeds.key.startsWith(`${target.sop}|${target.frame}|`)) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    for (const [points, colour] of [[seeds.inside, '#22dd66'], [seeds.outside, '#ff4455']] as const) {
      ctx.fillStyle = colour;
      for (const [x, y] of points) {
        const [cx, cy] = c(x, y);
        ctx.beginPath();
        ctx.arc(cx, cy, 4, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  }
}

function hexColor(hex: string): [number, number, number] {
  return hexRgb(hex, [255, 200, 0]);
}
