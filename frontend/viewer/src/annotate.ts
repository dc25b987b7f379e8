// Annotation tools on the viewer: Cornerstone3D tools plus our mask layer, each change saved
// by the Saver; undo/redo; hide, delete; the conflict banner; the history panel. A locked task
// (submitted, accepted) takes no edit: every way in checks ``editable`` before a change is made.

import { eventTarget } from '@cornerstonejs/core';
import * as csTools from '@cornerstonejs/tools';
import { HttpError, api } from './api';
import { MaskLayer, maskKey, type BrushTarget, type MaskEntry } from './brush';
import { Grow3d } from './grow3d';
import { kindLabel } from './labels';
import { maskToRle, rleToMask } from './rle';
import { renderList, showAttributes, snapshot } from './panels';
import { Saver, authorName, type SaveState } from './saver';
import { KIND_FOR_TOOL, TOOL_FOR_KIND, annotationFor, drawable, geometryOf, sameGeometry } from './shapes';
import type { Kind, Label, Rec, ServerAnnotation, Snapshot } from './types';
import type { Frame, Viewer } from './viewer';

const ANNOTATION_TOOLS = ['RectangleROI', 'Polygon', 'PlanarFreehandROI', 'Probe', 'Length', 'EllipticalROI', 'Angle'];
export const DRAW_TOOLS: Record<string, Kind> = {
  box: 'box',
  polygon: 'polygon',
  freehand: 'freehand',
  brush: 'mask',
  eraser: 'mask',
  grow: 'mask',
  point: 'point',
  line: 'line',
  ellipse: 'ellipse',
  angle: 'angle',
};
const COALESCE_MS = 800;

interface Op {
  uid: string;
  before: Snapshot | null;
  after: Snapshot | null;
  at: number;
}

const $ = (id: string) => document.getElementById(id);

export class Annotator {
  recs = new Map<string, Rec>();
  saver: Saver;
  masks: MaskLayer;
  labels: Label[];
  label: Label | null = null;
  tool = 'wl';
  private undoStack: Op[] = [];
  private redoStack: Op[] = [];
  private applying = false;

  constructor(
    readonly viewer: Viewer,
    labels: Label[],
    assignmentId: string,
    public editable: boolean,
  ) {
    this.labels = labels;
    this.saver = new Saver({
      assignmentId,
      onState: (state, detail) => this.showState(state, detail),
      onConflict: (rec) => this.showConflict(rec),
      onSaved: () => {
        this.renderList();
        document.dispatchEvent(new CustomEvent('workbench:saved'));
      },
      onLocked: (message) => void this.lock(message),
    });
    const canvas = $('mask-layer') as HTMLCanvasElement;
    this.masks = new MaskLayer(
      canvas,
      () => viewer.viewport,
      () => this.brushTarget(),
      () => (this.label && this.label.kind === 'mask' ? this.label : null),
      (entry, before) => this.maskStroke(entry, before),
    );
    const grow3d = new Grow3d({
      call: (body) => this.callTool(assignmentId, 'grow-from-seeds-3d', body, 'Growing in 3-D failed.'),
      entry: (sop, frame, rows, columns) => {
        const f = this.frameOf(sop, frame);
        if (!f || f.rows !== rows || f.columns !== columns || !this.label) return null;
        return this.masks.entry({ imageId: f.imageId, sop, frame, rows, columns }, this.label);
      },
      stroke: (entry, before) => this.maskStroke(entry, before),
      grown: (slices) => {
        $('viewer')!.dataset.grown3d = String(slices);
        this.flash(`Grown in 3-D on ${slices} slice${slices === 1 ? '' : 's'}.`);
      },
    });
    const in3d = $('grow-3d') as HTMLInputElement | null;
    this.masks.grower = (target, inside, outside, session) =>
      !this.editable ? Promise.resolve(null)
      : in3d?.checked ? grow3d.grow(target, inside, outside, session)
      : this.grow(assignmentId, target, inside, outside);
    const thresholdOn = $('threshold-on') as HTMLInputElement | null;
    const setLimiter = () => {
      this.masks.limiter = thresholdOn?.checked ? (t, points, radius) => this.threshold(assignmentId, t, points, radius) : null;
    };
    thresholdOn?.addEventListener('change', setLimiter);
    setLimiter();
    $('fill-between')?.addEventListener('click', () => void this.fillBetween(assignmentId));
    $('fill-between-contours')?.addEventListener('click', () => void this.fillBetween(assignmentId));
    for (const id of ['propagate-previous', 'propagate-next']) {
      const button = $(id) as HTMLButtonElement | null;
      button?.addEventListener('click', () => void this.propagate(assignmentId, button.dataset.direction!));
    }
    const group = viewer.toolGroup;
    group.addTool(csTools.RectangleROITool.toolName);
    group.addTool(csTools.PlanarFreehandROITool.toolName);
    group.addTool(csTools.ProbeTool.toolName);
    group.addTool(csTools.LengthTool.toolName);
    group.addTool(csTools.EllipticalROITool.toolName);
    group.addTool(csTools.AngleTool.toolName);
    group.addToolInstance('Polygon', csTools.SplineROITool.toolName, {
      spline: { type: 'LINEAR' },
      calculateStats: false,
    });
    for (const name of ANNOTATION_TOOLS) editable ? group.setToolPassive(name) : group.setToolEnabled(name);
    this.listen();
    viewer.onRender.push(() => this.masks.render());
    viewer.onImage.push(() => {
      this.masks.render();
      this.renderClassification();
    });
    window.addEventListener('beforeunload', (e) => {
      if (this.saver.pending()) e.preventDefault();
    });
  }

  private frameOfImage(imageId: string): Frame | undefined {
    return this.viewer.frames.find((f) => f.imageId === imageId);
  }

  private frameOf(sop: string, frame: number): Frame | undefined {
    return this.viewer.frames.find((f) => f.sop === sop && f.frame === frame);
  }

  private brushTarget() {
    const f = this.viewer.current();
    return f ? { imageId: f.imageId, sop: f.sop, frame: f.frame, rows: f.rows, columns: f.columns } : null;
  }

  /** POST to one of the assignment's segmentation tools; the answer, or null after saying why. */
  private async callTool(assignmentId: string, name: string, body: unknown, failed: string): Promise<any | null> {
    try {
      return await api('POST', `/api/assignments/${assignmentId}/tools/${name}/`, body);
    } catch (err) {
      this.flash(err instanceof HttpError ? (err.body?.message ?? failed) : failed);
      return null;
    }
  }

  /** Lay a mask the server answered over this label's mask on its image, as one saved stroke. */
  private landMask(m: any, label: Label): Frame | null {
    const f = this.frameOf(m.sop_instance_uid, m.frame);
    if (!f || f.rows !== m.rows || f.columns !== m.columns) return null;
    const entry = this.masks.entry({ imageId: f.imageId, sop: f.sop, frame: f.frame, rows: f.rows, columns: f.columns }, label);
    const before = entry.mask.slice();
    const add = rleToMask(m.rle, m.rows * m.columns);
    entry.mask = before.map((v, i) => (v || add[i] ? 1 : 0));
    this.maskStroke(entry, before);
    return f;
  }

  /** The region the server grows from the seeds (annotations/interactive.py), as a mask. */
  private async grow(assignmentId: string, target: BrushTarget, inside: number[][], outside: number[][]) {
    if (!this.editable) return null;
    const body = { sop_instance_uid: target.sop, frame: target.frame, inside, outside };
    const out = await this.callTool(assignmentId, 'grow-from-seeds', body, 'Grow from seeds failed.');
    return out ? rleToMask(out.rle, target.rows * target.columns) : null;
  }

  /** The pixels of a brush stroke whose values lie in the side panel's range (HU for CT). */
  private async threshold(assignmentId: string, target: BrushTarget, points: number[][], radius: number) {
    if (!this.editable || !points.length) return null;
    const low = Number(($('threshold-low') as HTMLInputElement).value);
    const high = Number(($('threshold-high') as HTMLInputElement).value);
    const body = { sop_instance_uid: target.sop, frame: target.frame, points, radius_px: radius, low, high };
    if (($('threshold-3d') as HTMLInputElement | null)?.checked) return this.threshold3d(assignmentId, target, body);
    const out = await this.callTool(assignmentId, 'threshold-brush', body, 'The threshold brush failed.');
    return out ? rleToMask(out.rle, target.rows * target.columns) : null;
  }

  /** The threshold brush as a ball: the other slices it reaches are saved as ordinary mask
   * strokes; this slice's part is returned for the brush's own stroke. */
  private async threshold3d(assignmentId: string, target: BrushTarget, body: object) {
    const label = this.label;
    const out = await this.callTool(assignmentId, 'threshold-brush-3d', body, 'The 3-D threshold brush failed.');
    if (!out || !label) return null;
    let here: Uint8Array | null = null;
    let others = 0;
    for (const m of out.masks as any[]) {
      if (m.sop_instance_uid === target.sop && m.frame === target.frame) here = rleToMask(m.rle, target.rows * target.columns);
      else if (this.landMask(m, label)) others += 1;
    }
    if (others) this.flash(`The brush also painted ${others} neighbouring slice${others === 1 ? '' : 's'}.`);
    return here ?? new Uint8Array(target.rows * target.columns);
  }

  /** Carry the current slice's saved mask of this label to the neighbouring slice (the server
   * finds the structure there), save it as an ordinary mask stroke and show that slice. */
  private async propagate(assignmentId: string, direction: string): Promise<void> {
    const label = this.label;
    const f = this.viewer.current();
    if (!this.editable || !label || label.kind !== 'mask' || !f) return;
    if (this.saver.pending()) {
      this.flash('Wait until every change is saved, then carry the mask over.');
      return;
    }
    const body = { sop_instance_uid: f.sop, frame: f.frame, label: label.id, direction };
    const m = await this.callTool(assignmentId, 'propagate', body, 'Carrying the mask over failed.');
    const to = m ? this.landMask(m, label) : null;
    if (!to) return;
    await this.viewer.go(this.viewer.frames.indexOf(to));
    this.masks.render();
  }

  /** Fill the slices between this label's saved masks or contours (the server interpolates);
   * each filled slice is saved as an ordinary mask stroke or a new contour, undoable and editable. */
  private async fillBetween(assignmentId: string): Promise<void> {
    const label = this.label;
    if (!this.editable || !label || !['mask', 'polygon', 'freehand'].includes(label.kind)) return;
    if (this.saver.pending()) {
      this.flash('Wait until every change is saved, then fill between slices.');
      return;
    }
    const out = await this.callTool(assignmentId, 'fill-between', { label: label.id }, 'Filling between slices failed.');
    if (!out) return;
    const filled =
      label.kind === 'mask'
        ? (out.masks as any[]).filter((m) => this.landMask(m, label)).length
        : (out.polygons as any[]).filter((p) => this.landContour(p, label)).length;
    this.masks.render();
    this.renderList();
    csTools.utilities.triggerAnnotationRenderForViewportIds([this.viewer.viewport.id]);
    const what = label.kind === 'mask' ? 'masks' : 'contours';
    this.flash(filled ? `Filled ${filled} slice${filled === 1 ? '' : 's'} between the key ${what}.` : `No slice between the key ${what} was left to fill.`);
  }

  /** A contour the server interpolated, as a new annotation of ``label`` on its slice. */
  private landContour(p: any, label: Label): boolean {
    const f = this.frameOf(p.sop_instance_uid, p.frame);
    if (!f || !Array.isArray(p.points) || p.points.length < 3) return false;
    const uid = crypto.randomUUID();
    const rec = this.newRec(uid, { label: label.id, kind: label.kind, sop: f.sop, frame: f.frame, geometry: { points: p.points }, attributes: {} });
    this.draw(uid, rec, false);
    this.record(rec, null);
    this.saver.touch(rec);
    return true;
  }

  labelById(id: string): Label | undefined {
    return this.labels.find((l) => l.id === id);
  }

  // ---- tools -------------------------------------------------------------------------

  /** Choose what the left button does: a navigation tool, select, or a drawing tool. */
  setTool(tool: string): void {
    const kind = DRAW_TOOLS[tool];
    if (kind && !this.editable) return;
    if (kind && (!this.label || this.label.kind !== kind)) {
      const label = this.labels.find((l) => l.kind === kind);
      if (!label) {
        this.flash(`The label schema has no ${kind} label.`);
        return;
      }
      this.setLabel(label.id, false);
    }
    this.tool = tool;
    const group = this.viewer.toolGroup;
    const nav = tool === 'wl' || tool === 'pan' || tool === 'zoom' ? tool : 'none';
    this.viewer.setNavigation(nav as any);
    for (const name of ANNOTATION_TOOLS) this.editable ? group.setToolPassive(name) : group.setToolEnabled(name);
    const csTool = kind ? TOOL_FOR_KIND[kind] : undefined;
    if (csTool) {
      group.setToolActive(csTool, { bindings: [{ mouseButton: csTools.Enums.MouseBindings.Primary }] });
    }
    this.masks.setMode(tool === 'brush' || tool === 'eraser' || tool === 'grow' ? tool : 'off');
    document.querySelectorAll<HTMLElement>('[data-tool]').forEach((b) => {
      b.setAttribute('aria-pressed', String(b.dataset.tool === tool));
    });
    $('viewer')!.dataset.tool = tool;
    const threshold = $('threshold-controls');
    if (threshold) threshold.hidden = !['brush', 'eraser', 'grow'].includes(tool);
    const contours = $('contour-controls');
    if (contours) contours.hidden = !['polygon', 'freehand'].includes(tool);
  }

  setLabel(id: string, switchTool = true): void {
    const label = this.labelById(id) ?? null;
    this.label = label;
    const select = $('label-picker') as HTMLSelectElement | null;
    if (select && label) select.value = label.id;
    if (!label) return;
    const color = label.color;
    csTools.annotation.config.style.setDefaultToolStyles({
      ...csTools.annotation.config.style.getDefaultToolStyles(),
      global: { ...(csTools.annotation.config.style.getDefaultToolStyles() as any).global, color, colorHighlighted: color },
    } as any);
    if (switchTool) {
      const tool = Object.entries(DRAW_TOOLS).find(([, k]) => k === label.kind)?.[0];
      if (tool && DRAW_TOOLS[this.tool] !== label.kind) this.setTool(tool);
    }
  }

  // ---- Cornerstone events -> records --------------------------------------------------

  private listen(): void {
    const E = csTools.Enums.Events;
    eventTarget.addEventListener(E.ANNOTATION_COMPLETED, (e: any) => this.completed(e.detail.annotation));
    eventTarget.addEventListener(E.ANNOTATION_MODIFIED, (e: any) => this.modified(e.detail.annotation));
    eventTarget.addEventListener(E.ANNOTATION_REMOVED, (e: any) => this.removed(e.detail.annotation));
    eventTarget.addEventListener(E.ANNOTATION_SELECTION_CHANGE, (e: any) => {
      const uid = e.detail.selection?.[0];
      const rec = uid ? this.recs.get(uid) : undefined;
      if (rec) this.showAttributes(rec);
    });
  }

  private completed(ann: any): void {
    if (this.applying) return;
    const kind = KIND_FOR_TOOL[ann.metadata.toolName];
    const frame = this.frameOfImage(ann.metadata.referencedImageId);
    if (!kind || !frame || this.recs.has(ann.annotationUID)) return;
    const label = this.label && this.label.kind === kind ? this.label : this.labels.find((l) => l.kind === kind);
    if (!label || !this.editable) {
      this.applying = true;
      csTools.annotation.state.removeAnnotation(ann.annotationUID);
      this.applying = false;
      return;
    }
    const geometry = geometryOf(kind, ann, frame.imageId, frame.spacing);
    if (!drawable(kind, geometry)) {
      // A click without a drag: an ellipse without radii or an angle without its third point.
      this.applying = true;
      csTools.annotation.state.removeAnnotation(ann.annotationUID);
      this.applying = false;
      csTools.utilities.triggerAnnotationRenderForViewportIds([this.viewer.viewport.id]);
      return;
    }
    const rec = this.newRec(ann.annotationUID, { label: label.id, kind, sop: frame.sop, frame: frame.frame, geometry, attributes: {} });
    this.colour(rec.uid, rec.label);
    this.record(rec, null);
    this.saver.touch(rec);
    this.renderList();
  }

  private modified(ann: any): void {
    if (this.applying) return;
    const rec = this.recs.get(ann.annotationUID);
    if (!rec || rec.readonly || rec.deleted) return;
    const frame = this.frameOf(rec.sop, rec.frame);
    if (!frame) return;
    const geometry = geometryOf(rec.kind, ann, frame.imageId, frame.spacing);
    if (sameGeometry(geometry, rec.geometry)) return; // a redraw, not an edit
    if (!this.editable) {
      this.redraw(rec); // a locked task: put the stored shape back
      return;
    }
    const before = snapshot(rec);
    rec.geometry = geometry;
    this.record(rec, before);
    this.saver.touch(rec);
  }

  private removed(ann: any): void {
    if (this.applying) return;
    const rec = this.recs.get(ann.annotationUID);
    if (!rec || rec.deleted) return;
    if (!this.editable) {
      this.redraw(rec); // a locked task: it stays
      return;
    }
    const before = snapshot(rec);
    rec.deleted = true;
    this.record(rec, before);
    this.saver.touch(rec);
    this.renderList();
    // Removing an annotation from Cornerstone's state does not redraw the SVG layer: without this
    // the shape stays on screen until the next mouse move over the viewport.
    csTools.utilities.triggerAnnotationRenderForViewportIds([this.viewer.viewport.id]);
  }

  private maskStroke(entry: MaskEntry, before: Uint8Array): void {
    if (!this.editable) {
      entry.mask = before; // a locked task: the stroke is undone before anything is sent
      this.masks.render();
      return;
    }
    let rec = this.recs.get(entry.key);
    const geometry = { rows: entry.rows, columns: entry.columns, rle: maskToRle(entry.mask) };
    if (geometry.rle.length === 0) {
      // Erased to nothing: the annotation goes (a soft delete on the server), it is not kept empty.
      if (rec && !rec.deleted) {
        const snap = snapshot(rec);
        snap.geometry = { rows: entry.rows, columns: entry.columns, rle: maskToRle(before) };
        rec.deleted = true;
        this.record(rec, snap, false);
        this.saver.touch(rec);
        this.renderList();
      }
      return;
    }
    if (!rec || rec.deleted) {
      const previous = rec && !rec.deleted ? snapshot(rec) : null;
      rec = this.newRec(entry.key, { label: entry.label, kind: 'mask', sop: entry.sop, frame: entry.frame, geometry, attributes: {} });
      this.record(rec, previous);
    } else {
      const snap = snapshot(rec);
      snap.geometry = { rows: entry.rows, columns: entry.columns, rle: maskToRle(before) };
      rec.geometry = geometry;
      this.record(rec, snap, false);
    }
    this.saver.touch(rec);
    this.renderList();
  }

  newRec(uid: string, snap: Snapshot, server?: ServerAnnotation, readonly = false): Rec {
    const rec: Rec = {
      ...snap,
      uid,
      clientId: crypto.randomUUID(),
      serverId: server?.id,
      revision: server?.revision ?? 0,
      deleted: false,
      readonly,
      author: server ? authorName(server.author) : undefined,
      source: server?.source,
      hidden: false,
      dirty: false,
      inflight: false,
      failed: false,
      edits: 0,
      attempt: 0,
    };
    this.recs.set(uid, rec);
    return rec;
  }

  /** Draw an annotation in its label's colour (the tools' default colour is the current label's). */
  colour(uid: string, labelId: string): void {
    const color = this.labelById(labelId)?.color;
    if (!color) return;
    csTools.annotation.config.style.setAnnotationStyles(uid, {
      color,
      colorHighlighted: color,
      colorSelected: color,
    } as any);
  }

  // ---- loading what was saved ---------------------------------------------------------

  /** Show annotations saved by another way in (an accepted model proposal) beside those on the
   * page, as the reader's own: editable, undoable from their next change, in the list. */
  async adopt(items: ServerAnnotation[]): Promise<void> {
    const known = new Set([...this.recs.values()].map((r) => r.serverId).filter(Boolean));
    await this.load(
      items.filter((i) => !known.has(i.id)),
      false,
    );
  }

  /** Re-create saved annotations as Cornerstone annotations and masks. */
  async load(items: ServerAnnotation[], readonly: boolean): Promise<void> {
    for (const item of items) {
      if (item.deleted) continue;
      const frame = this.frameOf(item.sop_instance_uid, item.frame ?? 0);
      const snap: Snapshot = {
        label: item.label,
        kind: item.kind,
        sop: item.sop_instance_uid,
        frame: item.frame ?? 0,
        geometry: item.geometry,
        attributes: item.attributes ?? {},
      };
      if (item.kind === 'mask') {
        const label = this.labelById(item.label);
        let key = maskKey(snap.sop, snap.frame, item.label) + (readonly ? `|${item.id}` : '');
        // A second mask of the label on that image (an accepted proposal beside the reader's own)
        // is kept under its own key, so that neither replaces the other on the page.
        const taken = this.recs.get(key);
        if (taken && !taken.deleted && taken.serverId !== item.id) key += `|${item.id}`;
        const rec = this.newRec(key, snap, item, readonly);
        this.putMask(rec, label?.color ?? '#ffcc00');
        continue;
      }
      if (item.kind.startsWith('classification')) {
        this.newRec(this.classificationKey(item.label, snap.sop, snap.frame, item.kind), snap, item, readonly);
        continue;
      }
      if (!frame) continue;
      const uid = item.id;
      this.newRec(uid, snap, item, readonly);
      await this.viewer.ensureLoaded(frame.imageId);
      this.draw(uid, snap, readonly);
    }
    this.renderList();
    this.renderClassification();
    this.masks.render();
    csTools.utilities.triggerAnnotationRenderForViewportIds([this.viewer.viewport.id]);
  }

  private putMask(rec: Rec, color: string): void {
    const g = rec.geometry;
    const entry = this.masks.entry(
      { imageId: '', sop: rec.sop, frame: rec.frame, rows: g.rows, columns: g.columns },
      { id: rec.label, color },
    );
    if (rec.uid !== entry.key) {
      // a read-only mask of another reader: keep it under its own key
      this.masks.masks.delete(entry.key);
      entry.key = rec.uid;
      this.masks.masks.set(rec.uid, entry);
    }
    entry.mask = rleToMask(g.rle ?? [], g.rows * g.columns);
    entry.hidden = rec.hidden || rec.deleted;
  }

  private draw(uid: string, snap: Snapshot, locked: boolean): void {
    const frame = this.frameOf(snap.sop, snap.frame);
    if (!frame) return;
    this.applying = true;
    try {
      if (csTools.annotation.state.getAnnotation(uid)) csTools.annotation.state.removeAnnotation(uid);
      const ann = annotationFor(uid, snap.kind, snap.geometry, frame.imageId, locked);
      if (ann) {
        csTools.annotation.state.addAnnotation(ann, this.viewer.element);
        this.colour(uid, snap.label);
      }
    } finally {
      this.applying = false;
    }
  }

  /** Show a record's current content (after undo, redo or "keep theirs"). */
  private redraw(rec: Rec): void {
    if (rec.kind === 'mask') {
      this.putMask(rec, this.labelById(rec.label)?.color ?? '#ffcc00');
      this.masks.render();
    } else if (!rec.kind.startsWith('classification')) {
      if (rec.deleted) {
        this.applying = true;
        if (csTools.annotation.state.getAnnotation(rec.uid)) csTools.annotation.state.removeAnnotation(rec.uid);
        this.applying = false;
      } else {
        this.draw(rec.uid, rec, rec.readonly || !this.editable);
      }
    }
    csTools.utilities.triggerAnnotationRenderForViewportIds([this.viewer.viewport.id]);
    this.renderList();
    this.renderClassification();
  }

  // ---- undo / redo --------------------------------------------------------------------

  record(rec: Rec, before: Snapshot | null, coalesce = true): void {
    const after = rec.deleted ? null : snapshot(rec);
    const last = this.undoStack[this.undoStack.length - 1];
    const now = Date.now();
    // Edits in quick succession (a drag fires many, a tool may adjust what it just drew) are one
    // step; a delete is always a step of its own, so undoing it never also undoes the edit before.
    if (coalesce && last && last.uid === rec.uid && before && after && last.after && now - last.at < COALESCE_MS) {
      last.after = after;
      last.at = now;
    } else {
      this.undoStack.push({ uid: rec.uid, before, after, at: now });
    }
    this.redoStack = [];
  }

  undo(): void {
    if (!this.editable) return;
    if (this.masks.editing) return this.masks.editing.undo(); // a proposal's edit: its own steps
    const op = this.undoStack.pop();
    if (!op) return;
    this.apply(op.uid, op.before);
    this.redoStack.push(op);
  }

  redo(): void {
    if (!this.editable) return;
    if (this.masks.editing) return this.masks.editing.redo();
    const op = this.redoStack.pop();
    if (!op) return;
    this.apply(op.uid, op.after);
    this.undoStack.push(op);
  }

  private apply(uid: string, snap: Snapshot | null): void {
    const rec = this.recs.get(uid);
    if (!rec) return;
    if (snap === null) {
      rec.deleted = true;
    } else {
      if (rec.deleted) {
        // It was deleted on the server (soft): it comes back as a new annotation.
        if (rec.serverId) {
          rec.serverId = undefined;
          rec.revision = 0;
        }
        rec.clientId = crypto.randomUUID();
        rec.deleted = false;
      }
      Object.assign(rec, snap);
    }
    this.redraw(rec);
    this.saver.touch(rec);
  }

  // ---- selection, delete, hide --------------------------------------------------------

  deleteSelected(): void {
    // While a polygon is being drawn, Delete/Backspace removes its last vertex (the tool's own binding).
    if (!this.editable || csTools.state.isMultiPartToolActive || csTools.state.isInteractingWithTool) return;
    for (const uid of csTools.annotation.selection.getAnnotationsSelected() ?? []) {
      csTools.annotation.state.removeAnnotation(uid); // ANNOTATION_REMOVED does the rest
    }
  }

  deleteRec(rec: Rec): void {
    if (!this.editable || rec.readonly) return;
    if (rec.kind === 'mask' || rec.kind.startsWith('classification')) {
      const before = snapshot(rec);
      rec.deleted = true;
      this.record(rec, before);
      this.redraw(rec);
      this.saver.touch(rec);
    } else {
      csTools.annotation.state.removeAnnotation(rec.uid);
    }
  }

  toggleHidden(rec: Rec): void {
    rec.hidden = !rec.hidden;
    if (rec.kind === 'mask') {
      const entry = this.masks.masks.get(rec.uid);
      if (entry) entry.hidden = rec.hidden;
      this.masks.render();
    } else {
      csTools.annotation.visibility.setAnnotationVisibility(rec.uid, !rec.hidden);
      // Cornerstone only marks it; nothing redraws the annotation layer until asked.
      csTools.utilities.triggerAnnotationRenderForViewportIds([this.viewer.viewport.id]);
    }
    this.renderList();
  }

  hideSelected(): void {
    for (const uid of csTools.annotation.selection.getAnnotationsSelected() ?? []) {
      const rec = this.recs.get(uid);
      if (rec) this.toggleHidden(rec);
    }
  }

  // ---- classification -----------------------------------------------------------------

  classificationKey(label: string, sop: string, frame: number, kind: Kind): string {
    return kind === 'classification_series' ? `cls|${label}` : `cls|${label}|${sop}|${frame}`;
  }

  renderClassification(): void {
    const form = $('classification');
    if (!form) return;
    const labels = this.labels.filter((l) => l.kind.startsWith('classification'));
    form.hidden = labels.length === 0;
    const body = form.querySelector('.fields')!;
    body.replaceChildren();
    const current = this.viewer.current();
    if (!current) return;
    for (const label of labels) {
      const seriesLevel = label.kind === 'classification_series';
      const sop = seriesLevel ? this.viewer.frames[0].sop : current.sop;
      const frame = seriesLevel ? 0 : current.frame;
      const key = this.classificationKey(label.id, sop, frame, label.kind);
      const rec = this.recs.get(key);
      const choices = label.attributes?.find((a) => a.choices?.length)?.choices ?? ['yes', 'no'];
      const row = document.createElement('label');
      row.className = 'cls-row';
      row.textContent = `${label.name} (${seriesLevel ? 'series' : 'image'}) `;
      const select = document.createElement('select');
      select.dataset.label = label.id;
      select.disabled = !this.editable;
      select.append(new Option('—', ''), ...choices.map((c) => new Option(c, c)));
      select.value = rec && !rec.deleted ? String(rec.attributes.value ?? '') : '';
      select.addEventListener('change', () => this.classify(label, key, sop, frame, select.value));
      row.append(select);
      body.append(row);
    }
  }

  private classify(label: Label, key: string, sop: string, frame: number, value: string): void {
    if (!this.editable) return;
    let rec = this.recs.get(key);
    if (!rec) {
      if (!value) return;
      rec = this.newRec(key, { label: label.id, kind: label.kind, sop, frame, geometry: {}, attributes: { value } });
      this.record(rec, null);
    } else {
      const before = rec.deleted ? null : snapshot(rec);
      if (!value) {
        rec.deleted = true;
      } else {
        if (rec.deleted) this.apply(key, { ...snapshot(rec), attributes: { value } });
        rec.attributes = { value };
      }
      this.record(rec, before);
    }
    this.saver.touch(rec);
    this.renderList();
  }

  // ---- panels (panels.ts) ------------------------------------------------------------

  renderList(): void {
    renderList(this);
  }

  showAttributes(rec: Rec): void {
    showAttributes(this, rec);
  }

  private showState(state: SaveState, detail: string): void {
    const el = $('save-state')!;
    el.dataset.saveState = state;
    if (state === 'locked') el.textContent = detail ? `Locked · ${detail}` : 'Locked: no changes are taken';
    else el.textContent = state === 'saved' ? 'All changes saved' : state === 'saving' ? 'Saving…' : `Unsaved ${detail}`;
  }

  private showConflict(rec: Rec): void {
    const banner = $('conflict')!;
    banner.hidden = false;
    const current = rec.conflict!;
    banner.querySelector('.conflict-detail')!.textContent =
      `${authorName(current.author) || 'Someone'} changed this ${kindLabel(rec.kind).toLowerCase()} (now revision ${current.revision}` +
      `${current.deleted ? ', deleted' : ''}). Server version: ${JSON.stringify(current.geometry).slice(0, 160)}`;
    const theirs = banner.querySelector('#conflict-theirs') as HTMLButtonElement;
    const mine = banner.querySelector('#conflict-mine') as HTMLButtonElement;
    theirs.onclick = () => {
      this.saver.acceptTheirs(rec);
      this.redraw(rec);
      this.hideConflictIfDone();
    };
    mine.onclick = () => {
      this.saver.overwrite(rec);
      this.hideConflictIfDone();
    };
  }

  private hideConflictIfDone(): void {
    const open = [...this.recs.values()].find((r) => r.conflict);
    if (open) this.showConflict(open);
    else $('conflict')!.hidden = true;
  }

  /** The task takes no more edits (submitted here, or the server said it is locked): the tools
   * go, what is drawn can no longer be moved, and a change the server refused is replaced by
   * what is stored, so the page never shows as saved what is not. */
  async lock(message: string): Promise<void> {
    this.editable = false;
    if (!this.saver.isLocked()) this.saver.lock(message);
    this.setTool('wl');
    document.querySelectorAll<HTMLElement>('.draw-tools').forEach((el) => (el.hidden = true));
    for (const rec of this.recs.values()) {
      if (csTools.annotation.state.getAnnotation(rec.uid)) csTools.annotation.locking.setAnnotationLocked(rec.uid, true);
    }
    $('attributes')!.hidden = true;
    this.flash(message);
    $('viewer')!.dataset.mode = 'readonly';
    document.dispatchEvent(new CustomEvent('workbench:locked', { detail: { message } }));
    await this.showStored(this.saver.refused());
    this.renderList();
    this.renderClassification();
  }

  /** Show what the server stores for records whose change it refused. */
  private async showStored(refused: Rec[]): Promise<void> {
    for (const rec of refused) {
      if (!rec.serverId) {
        // Never stored: it goes from the picture and the list.
        this.applying = true;
        if (csTools.annotation.state.getAnnotation(rec.uid)) csTools.annotation.state.removeAnnotation(rec.uid);
        this.applying = false;
        this.masks.masks.delete(rec.uid);
        this.recs.delete(rec.uid);
        continue;
      }
      try {
        const stored = await api('GET', `/api/annotations/${rec.serverId}/`);
        Object.assign(rec, { label: stored.label, geometry: stored.geometry, attributes: stored.attributes ?? {} });
        rec.revision = stored.revision;
        rec.deleted = stored.deleted;
      } catch {
        continue; // the list still says it is not saved
      }
      this.redraw(rec);
      if (csTools.annotation.state.getAnnotation(rec.uid)) csTools.annotation.locking.setAnnotationLocked(rec.uid, true);
    }
    this.masks.render();
    csTools.utilities.triggerAnnotationRenderForViewportIds([this.viewer.viewport.id]);
  }

  flash(message: string): void {
    const el = $('viewer-message');
    if (el) {
      el.textContent = message;
      el.hidden = !message;
    }
  }
}
