// Axial, sagittal and coronal reformats of a CT or MR volume: three Cornerstone3D
// ORTHOGRAPHIC viewports over one volume streamed from the stack's own (cached) images, linked
// by the CrosshairsTool, with one window/level for the three. Offered only when the series is
// a volume (volume.ts says why not otherwise) and the browser has WebGL: Cornerstone's volume
// viewports have no CPU fallback, so under CPU rendering the button says so and stays off.
//
// Mouse in this layout: left drags the crosshairs, right window/level (shared), middle pans,
// the wheel scrolls the viewport under it. The toolbar's W/L, Pan and Zoom put that tool on the
// left button in all three views (Select gives it back to the crosshairs); each view shows its
// own W/L readout, and the VOI synchronizer keeps the three windowed alike, as a PACS does.
// The stack viewport stays enabled under the grid, with its annotations and their autosave:
// the reformats are read-only, and leaving them (or picking a drawing tool) shows the stack.

import {
  Enums,
  getShouldUseCPURendering,
  imageLoader,
  metaData,
  setVolumesForViewports,
  utilities as csUtils,
  volumeLoader,
} from '@cornerstonejs/core';
import * as csTools from '@cornerstonejs/tools';
import { overlayText } from './overlay';
import { sameOrientation, volumeVerdict, type Verdict } from './volume';
import type { Viewer } from './viewer';

const TOOL_GROUP_ID = 'wb-mpr-tools';
const VOI_SYNC_ID = 'wb-mpr-voi';
const LOAD_CONCURRENCY = 6;

/** What the left button does in the reformats: the toolbar's navigation tools or the crosshairs. */
export type MprTool = 'crosshairs' | 'wl' | 'pan' | 'zoom';

export const MPR_VIEWS: { id: string; orientation: Enums.OrientationAxis; name: string }[] = [
  { id: 'wb-mpr-axial', orientation: Enums.OrientationAxis.AXIAL, name: 'Axial' },
  { id: 'wb-mpr-sagittal', orientation: Enums.OrientationAxis.SAGITTAL, name: 'Sagittal' },
  { id: 'wb-mpr-coronal', orientation: Enums.OrientationAxis.CORONAL, name: 'Coronal' },
];

/** Whether this page can show reformats of the viewer's series, and why not. */
export function mprVerdict(viewer: Viewer): Verdict {
  if (getShouldUseCPURendering()) {
    return { ok: false, reason: 'Reformats need WebGL; this browser draws on the CPU.' };
  }
  return volumeVerdict(viewer.data.series.modality, viewer.data.instances);
}

export class Mpr {
  active = false;
  private volumeId: string;
  private group: any = null;
  private voiSync: any = null;
  private listening = false;
  tool: MprTool = 'crosshairs';

  constructor(
    private viewer: Viewer,
    private root: HTMLElement,
    private wrap: HTMLElement,
    private grid: HTMLElement,
  ) {
    this.volumeId = `cornerstoneStreamingImageVolume:wb-${viewer.data.series.id}`;
  }

  private elements(): HTMLDivElement[] {
    return MPR_VIEWS.map((v) => this.grid.querySelector<HTMLDivElement>(`[data-view="${v.name.toLowerCase()}"]`)!);
  }

  /** Load every slice, build the volume and show the three views; throws with a reason. */
  async enter(onProgress: (done: number, total: number) => void): Promise<void> {
    if (this.active) return;
    const imageIds = this.viewer.frames.map((f) => f.imageId);
    await loadAll(imageIds, onProgress);
    const planes = imageIds.map((id) => metaData.get('imagePlaneModule', id) as any);
    const orientations = planes.map((p) => (p?.rowCosines && p?.columnCosines ? [...p.rowCosines, ...p.columnCosines] : null));
    if (!sameOrientation(orientations)) throw new Error('The slices are not parallel: they cannot be reformatted.');
    const wl = this.viewer.windowLevel();
    // The streaming loader fills the volume's voxels (and its texture) from the images just
    // cached: no second download. A volume built straight from the cached images
    // (createAndCacheVolumeFromImages) drew an empty axial view in 5.14.
    const volume: any = await volumeLoader.createAndCacheVolume(this.volumeId, { imageIds });
    await new Promise<void>((resolve) => {
      volume.load((evt: any) => {
        if (volume.loadStatus?.loaded || evt?.framesProcessed >= evt?.totalNumFrames) resolve();
      });
    });

    this.grid.hidden = false;
    this.wrap.classList.add('mpr-on');
    const engine = this.viewer.viewport.getRenderingEngine();
    const elements = this.elements();
    MPR_VIEWS.forEach((v, k) =>
      engine.enableElement({
        viewportId: v.id,
        type: Enums.ViewportType.ORTHOGRAPHIC,
        element: elements[k],
        defaultOptions: { orientation: v.orientation, background: [0, 0, 0] },
      }),
    );
    const ids = MPR_VIEWS.map((v) => v.id);
    await setVolumesForViewports(engine, [{ volumeId: this.volumeId }], ids);
    this.setupTools(engine.id, ids);
    this.listen(elements);
    if (wl) this.setWindowLevel(wl[0], wl[1]);
    engine.renderViewports(ids);
    this.active = true;
    this.root.dataset.layout = 'mpr';
    this.showWindowLevel();
  }

  /** Each view's W/L readout follows its window (the synchronizer sets the others' in turn). */
  private listen(elements: HTMLDivElement[]): void {
    if (this.listening) return;
    this.listening = true;
    elements.forEach((el) => el.addEventListener(Enums.Events.VOI_MODIFIED, () => this.showWindowLevel()));
  }

  /** Every view's W/L readout (``.mpr-wl`` in its cell), in the stack overlay's words. */
  showWindowLevel(): void {
    const engine = this.viewer.viewport.getRenderingEngine();
    MPR_VIEWS.forEach((v, k) => {
      const label = this.elements()[k]?.parentElement?.querySelector<HTMLElement>('.mpr-wl');
      const voi = engine.getViewport(v.id)?.getProperties?.(this.volumeId)?.voiRange;
      if (!label || !voi) return;
      const { windowWidth, windowCenter } = csUtils.windowLevel.toWindowLevel(voi.lower, voi.upper);
      label.textContent = overlayText(this.viewer.data, 0, 0, [windowWidth, windowCenter]).wl;
    });
  }

  /** Put ``tool`` on the left button of the three views; right (W/L) and middle (pan) stay. */
  setTool(tool: MprTool): void {
    this.tool = tool;
    const group = this.group;
    if (!group) return;
    const t = csTools;
    const names: Record<MprTool, string> = {
      crosshairs: t.CrosshairsTool.toolName,
      wl: t.WindowLevelTool.toolName,
      pan: t.PanTool.toolName,
      zoom: t.ZoomTool.toolName,
    };
    Object.values(names).forEach((name) => group.setToolPassive(name));
    group.setToolActive(names[tool], { bindings: [{ mouseButton: t.Enums.MouseBindings.Primary }] });
  }

  /** Zoom the three views by ``factor`` (the toolbar's +/− keys). */
  zoomBy(factor: number): void {
    for (const vp of this.viewports()) {
      const camera = vp.getCamera();
      vp.setCamera({ parallelScale: camera.parallelScale / factor });
      vp.render();
    }
  }

  /** The toolbar's Reset: the three cameras back to the whole volume, the stack's window. */
  reset(): void {
    for (const vp of this.viewports()) vp.resetCamera();
    const wl = this.viewer.windowLevel();
    if (wl) this.setWindowLevel(wl[0], wl[1]);
    else this.viewports().forEach((vp) => vp.render());
  }

  /** Back to the stack: the views are disabled, the volume stays cached for the next time. */
  exit(): void {
    if (!this.active) return;
    const engine = this.viewer.viewport.getRenderingEngine();
    MPR_VIEWS.forEach((v) => {
      this.group?.removeViewports(engine.id, v.id);
      this.voiSync?.remove({ renderingEngineId: engine.id, viewportId: v.id });
      engine.disableElement(v.id);
    });
    this.grid.hidden = true;
    this.wrap.classList.remove('mpr-on');
    this.active = false;
    this.root.dataset.layout = 'stack';
    delete this.root.dataset.mprReady;
    document.getElementById('layout-mpr')?.setAttribute('aria-pressed', 'false');
    document.dispatchEvent(new CustomEvent('workbench:layout', { detail: 'stack' }));
  }

  viewports(): any[] {
    const engine = this.viewer.viewport.getRenderingEngine();
    return MPR_VIEWS.map((v) => engine.getViewport(v.id)).filter(Boolean);
  }

  setWindowLevel(width: number, center: number): void {
    const voiRange = csUtils.windowLevel.toLowHighRange(width, center);
    for (const vp of this.viewports()) {
      vp.setProperties({ voiRange }, this.volumeId);
      vp.render();
    }
    this.showWindowLevel();
  }

  private setupTools(engineId: string, ids: string[]): void {
    const t = csTools;
    for (const Tool of [t.CrosshairsTool, t.WindowLevelTool, t.PanTool, t.ZoomTool, t.StackScrollTool]) t.addTool(Tool);
    const { MouseBindings } = t.Enums;
    if (!this.group) {
      const group = t.ToolGroupManager.createToolGroup(TOOL_GROUP_ID)!;
      group.addTool(t.CrosshairsTool.toolName);
      group.addTool(t.WindowLevelTool.toolName);
      group.addTool(t.PanTool.toolName);
      group.addTool(t.ZoomTool.toolName);
      group.addTool(t.StackScrollTool.toolName);
      this.group = group;
      this.voiSync = t.synchronizers.createVOISynchronizer(VOI_SYNC_ID, { syncInvertState: false, syncColormap: false });
    }
    const group = this.group;
    ids.forEach((id) => {
      group.addViewport(id, engineId);
      this.voiSync.add({ renderingEngineId: engineId, viewportId: id });
    });
    group.setToolActive(t.CrosshairsTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
    group.setToolActive(t.WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
    group.setToolActive(t.PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
    group.setToolActive(t.StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
    this.setTool(this.tool);
  }
}

/** Every image into Cornerstone's cache (a few at a time), so the volume is built from them. */
async function loadAll(imageIds: string[], onProgress: (done: number, total: number) => void): Promise<void> {
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < imageIds.length) {
      const id = imageIds[next++];
      await imageLoader.loadAndCacheImage(id);
      onProgress(++done, imageIds.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(LOAD_CONCURRENCY, imageIds.length) }, worker));
}

/** Wire the layout button (#layout-mpr) and the presets to an Mpr for the viewer. */
export function setupMpr(viewer: Viewer, root: HTMLElement): Mpr | null {
  const button = document.getElementById('layout-mpr') as HTMLButtonElement | null;
  const wrap = root.querySelector<HTMLElement>('.viewport-wrap');
  const grid = document.getElementById('mpr');
  if (!button || !wrap || !grid) return null;
  button.hidden = false;
  const verdict = mprVerdict(viewer);
  if (!verdict.ok) {
    button.disabled = true;
    button.title = verdict.reason;
    button.dataset.reason = verdict.reason;
    return null;
  }
  const mpr = new Mpr(viewer, root, wrap, grid);
  const label = button.textContent ?? 'MPR';
  const status = document.getElementById('mpr-status');
  button.addEventListener('click', async () => {
    if (mpr.active) {
      mpr.exit();
      button.setAttribute('aria-pressed', 'false');
      return;
    }
    button.disabled = true;
    try {
      await mpr.enter((done, total) => (button.textContent = `Loading ${done}/${total}`));
      button.setAttribute('aria-pressed', 'true');
      document.dispatchEvent(new CustomEvent('workbench:layout', { detail: 'mpr' }));
      if (status) status.textContent = 'Left: crosshairs, or the toolbar’s W/L, Pan or Zoom in all three views · right: window/level · middle: pan · wheel: scroll';
      await nextFrames(2);
      root.dataset.mprReady = '1';
    } catch (err: any) {
      console.error(err);
      mpr.exit();
      const message = document.getElementById('viewer-message');
      if (message) {
        message.hidden = false;
        message.textContent = `Reformats failed: ${err?.message ?? err}`;
      }
    } finally {
      button.textContent = label;
      button.disabled = false;
    }
  });
  // The toolbar's presets window the three views together while they are shown.
  const preset = document.getElementById('preset') as HTMLSelectElement | null;
  preset?.addEventListener('change', () => {
    if (!mpr.active || !preset.value) return;
    const [w, c] = preset.value.split(',').map(Number);
    mpr.setWindowLevel(w, c);
  });
  return mpr;
}

function nextFrames(n: number): Promise<void> {
  return new Promise((resolve) => {
    const step = (k: number) => (k <= 0 ? resolve() : requestAnimationFrame(() => step(k - 1)));
    step(n);
  });
}
