// The Cornerstone3D stack viewport: loading through our WADO-URI, window/level, zoom, pan,
// stack scroll, cine, prefetch of neighbouring slices and the overlay text.

import {
  Enums,
  RenderingEngine,
  imageLoader,
  init as csInit,
  metaData,
  utilities as csUtils,
} from '@cornerstonejs/core';
import { init as dicomImageLoaderInit } from '@cornerstonejs/dicom-image-loader';
import * as csTools from '@cornerstonejs/tools';
import { applyOrientation, nextOrientation, orientationText, UPRIGHT } from './orientation';
import type { Orientation, OrientationAction } from './orientation';
import { overlayText } from './overlay';
import { cornerstoneRendered } from './startup';
import type { SeriesData } from './types';

export type { InstanceData, SeriesData } from './types';

/** One displayed image: a frame of an instance. */
export interface Frame {
  imageId: string;
  sop: string;
  frame: number; // 0-based, as the annotation contract counts
  rows: number;
  columns: number;
  spacing: number[] | null;
}

export const CT_PRESETS: [string, number, number][] = [
  ['Lung', 1500, -600],
  ['Mediastinum', 350, 50],
  ['Bone', 2000, 500],
  ['Brain', 80, 40],
  ['Abdomen', 400, 50],
];

const VIEWPORT_ID = 'wb-stack';
const TOOL_GROUP_ID = 'wb-tools';
const PREFETCH = 3;

export function framesOf(data: SeriesData): Frame[] {
  const frames: Frame[] = [];
  for (const inst of data.instances) {
    const url = new URL(inst.wado_url, window.location.href).href;
    const n = Math.max(1, inst.frames || 1);
    for (let k = 0; k < n; k++) {
      // The loader reads a 1-based `frame=` at the end of a wadouri: id and fetches the file once.
      const imageId = n > 1 ? `wadouri:${url}&frame=${k + 1}` : `wadouri:${url}`;
      frames.push({ imageId, sop: inst.sop_uid, frame: k, rows: inst.rows, columns: inst.columns, spacing: inst.pixel_spacing });
    }
  }
  return frames;
}

export class Viewer {
  viewport: any;
  toolGroup: any;
  frames: Frame[];
  private cine: number | undefined;
  private firstRendered = false;
  private markShown = () => {};
  /** Resolves once Cornerstone has rendered the first image (at once for a series without any). */
  shown: Promise<void> = new Promise((resolve) => (this.markShown = resolve));
  onImage: (() => void)[] = [];
  onRender: (() => void)[] = [];

  private constructor(
    private root: HTMLElement,
    public element: HTMLDivElement,
    public data: SeriesData,
  ) {
    this.frames = framesOf(data);
  }

  static async create(root: HTMLElement, element: HTMLDivElement, data: SeriesData, cpu: boolean): Promise<Viewer> {
    csInit({ rendering: { useCPURendering: cpu } } as any);
    dicomImageLoaderInit({ maxWebWorkers: Math.min(4, Math.max(1, (navigator.hardwareConcurrency || 2) - 1)) });
    csTools.init();
    performance.mark('viewer-cornerstone-ready');
    const viewer = new Viewer(root, element, data);
    const engine = new RenderingEngine('wb-engine');
    engine.enableElement({ viewportId: VIEWPORT_ID, type: Enums.ViewportType.STACK, element });
    viewer.viewport = engine.getViewport(VIEWPORT_ID);
    viewer.setupNavigationTools();
    viewer.listen();
    if (viewer.frames.length) await viewer.viewport.setStack(viewer.frames.map((f) => f.imageId), 0);
    else viewer.markShown();
    return viewer;
  }

  private setupNavigationTools(): void {
    const t = csTools;
    for (const Tool of [
      t.WindowLevelTool,
      t.PanTool,
      t.ZoomTool,
      t.StackScrollTool,
      t.RectangleROITool,
      t.PlanarFreehandROITool,
      t.SplineROITool,
      t.ProbeTool,
      t.LengthTool,
      t.EllipticalROITool,
      t.AngleTool,
    ]) {
      t.addTool(Tool);
    }
    const group = t.ToolGroupManager.createToolGroup(TOOL_GROUP_ID)!;
    group.addTool(t.WindowLevelTool.toolName);
    group.addTool(t.PanTool.toolName);
    group.addTool(t.ZoomTool.toolName);
    group.addTool(t.StackScrollTool.toolName);
    group.addViewport(VIEWPORT_ID, 'wb-engine');
    const { MouseBindings } = t.Enums;
    group.setToolActive(t.StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
    this.toolGroup = group;
    this.setNavigation('wl');
  }

  /** Which tool the left button drives among the navigation tools ('none' leaves it to an annotation tool). */
  setNavigation(mode: 'wl' | 'pan' | 'zoom' | 'none'): void {
    const t = csTools;
    const { MouseBindings } = t.Enums;
    const g = this.toolGroup;
    g.setToolPassive(t.WindowLevelTool.toolName);
    g.setToolActive(t.PanTool.toolName, {
      bindings: [{ mouseButton: MouseBindings.Auxiliary }, ...(mode === 'pan' ? [{ mouseButton: MouseBindings.Primary }] : [])],
    });
    g.setToolActive(t.ZoomTool.toolName, {
      bindings: [{ mouseButton: MouseBindings.Secondary }, ...(mode === 'zoom' ? [{ mouseButton: MouseBindings.Primary }] : [])],
    });
    if (mode === 'wl') g.setToolActive(t.WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  }

  private listen(): void {
    const E = Enums.Events;
    this.element.addEventListener(E.IMAGE_RENDERED, () => {
      // The viewport also renders (empty) when it is enabled or resized, before the first image
      // has loaded; the image's metadata, which the presets read, is there only after that.
      if (!this.firstRendered && this.viewport.csImage) {
        this.firstRendered = true;
        cornerstoneRendered(); // data-first-image-ms, unless the preview was on screen earlier
        this.root.dataset.ready = '1';
        this.fillPresets();
        this.markShown();
      }
      this.updateOverlay();
      this.onRender.forEach((f) => f());
    });
    this.element.addEventListener(E.STACK_NEW_IMAGE, () => {
      this.prefetch();
      this.updateOverlay();
      this.onImage.forEach((f) => f());
    });
    this.element.addEventListener(E.VOI_MODIFIED, () => this.updateOverlay());
    this.element.addEventListener(E.CAMERA_MODIFIED, () => {
      this.updateOverlay();
      this.onRender.forEach((f) => f());
    });
    new ResizeObserver(() => this.viewport.getRenderingEngine()?.resize(true, true)).observe(this.element);
  }

  index(): number {
    return this.viewport.getCurrentImageIdIndex();
  }

  current(): Frame | null {
    return this.frames[this.index()] ?? null;
  }

  async go(i: number): Promise<void> {
    const n = this.frames.length;
    if (!n) return;
    await this.viewport.setImageIdIndex(Math.max(0, Math.min(n - 1, i)));
  }

  step(delta: number): Promise<void> {
    return this.go(this.index() + delta);
  }

  private prefetch(): void {
    const i = this.index();
    for (let d = 1; d <= PREFETCH; d++) {
      for (const j of [i + d, i - d]) {
        const frame = this.frames[j];
        if (frame) imageLoader.loadAndCacheImage(frame.imageId).catch(() => undefined);
      }
    }
  }

  /** Make sure an image (and so its geometry metadata) is loaded. */
  async ensureLoaded(imageId: string): Promise<void> {
    await imageLoader.loadAndCacheImage(imageId);
  }

  windowLevel(): [number, number] | null {
    const voi = this.viewport.getProperties()?.voiRange;
    if (!voi) return null;
    const { windowWidth, windowCenter } = csUtils.windowLevel.toWindowLevel(voi.lower, voi.upper);
    return [windowWidth, windowCenter];
  }

  setWindowLevel(width: number, center: number): void {
    this.viewport.setProperties({ voiRange: csUtils.windowLevel.toLowHighRange(width, center) });
    this.viewport.render();
  }

  // --- invert / rotate / flip (orientation.ts) ---
  orientation: Orientation = UPRIGHT;

  /** Invert, rotate 90° clockwise or flip the view; annotations stay on the same pixels. */
  orient(action: OrientationAction): void {
    if (!this.frames.length) return;
    this.orientation = nextOrientation(this.orientation, action);
    applyOrientation(this.viewport, this.orientation);
    this.root.dataset.orientation = orientationText(this.orientation);
    this.updateOverlay();
  }
  // --- end invert / rotate / flip ---

  /** The whole image in the viewport again, as it is oriented (after the layout resized it:
   * the resize keeps the camera, which crops a viewport made narrower). */
  fit(): void {
    if (!this.frames.length) return;
    this.viewport.resetCamera();
    applyOrientation(this.viewport, this.orientation);
  }

  reset(): void {
    this.orientation = UPRIGHT;
    delete this.root.dataset.orientation;
    this.viewport.resetProperties?.();
    this.viewport.resetCamera();
    this.viewport.render();
  }

  zoomBy(factor: number): void {
    const camera = this.viewport.getCamera();
    this.viewport.setCamera({ parallelScale: camera.parallelScale / factor });
    this.viewport.render();
  }

  playing(): boolean {
    return this.cine !== undefined;
  }

  play(fps: number): void {
    this.stop();
    const n = this.frames.length;
    this.cine = window.setInterval(() => void this.go((this.index() + 1) % n), 1000 / Math.max(1, fps));
  }

  stop(): void {
    if (this.cine !== undefined) window.clearInterval(this.cine);
    this.cine = undefined;
  }

  private fillPresets(): void {
    const select = document.getElementById('preset') as HTMLSelectElement | null;
    if (!select) return;
    const frame = this.current();
    const voi: any = frame ? metaData.get('voiLutModule', frame.imageId) : null;
    const add = (name: string, w: number, c: number) => {
      const option = document.createElement('option');
      option.value = `${w},${c}`;
      option.textContent = `${name} (W ${w} L ${c})`;
      select.append(option);
    };
    const widths = [].concat(voi?.windowWidth ?? []);
    const centers = [].concat(voi?.windowCenter ?? []);
    widths.forEach((w, k) => centers[k] !== undefined && add(`File ${k + 1}`, Number(w), Number(centers[k])));
    if (this.data.series.modality === 'CT') CT_PRESETS.forEach(([name, w, c]) => add(name, w, c));
  }

  private updateOverlay(): void {
    const set = (id: string, text: string) => {
      const el = document.getElementById(id);
      if (el) el.textContent = text;
    };
    const text = overlayText(this.data, this.index(), this.frames.length, this.windowLevel());
    set('ov-patient', text.patient);
    set('ov-series', text.series);
    set('ov-slice', text.slice);
    set('ov-wl', text.wl);
    let zoom = 1;
    try {
      zoom = this.viewport.getZoom();
    } catch {
      /* before the first image */
    }
    set('ov-zoom', `Zoom ${zoom.toFixed(2)}`);
    set('ov-orient', orientationText(this.orientation));
  }
}
