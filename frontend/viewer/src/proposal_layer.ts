// Model proposals in the annotator (issue 11): their own layer over the image (dashed, hatched,
// tagged "Model 0.93", in the model's colour, never in a label's), the Proposals panel (Accept /
// Edit / Reject each, or all at or above a score) and the calls to the proposals API. A proposal
// is never an annotation on this page until the server has accepted it; then it is loaded as one.

import type { Annotator } from './annotate';
import { HttpError, api, apiList } from './api';
import type { MaskEntry } from './brush';
import {
  MODEL_COLOR,
  boundsOf,
  countAtOrAbove,
  formatScore,
  groupByLabel,
  parseThreshold,
  pendingOnly,
  pixelChange,
  polygonOf,
  proposalMask,
  proposalPixels,
  scoreTag,
  type Proposal,
} from './proposals';
import { maskToRle } from './rle';
import { pixelToWorld } from './shapes';
import type { ServerAnnotation } from './types';

const $ = (id: string) => document.getElementById(id);

interface Editing {
  proposal: Proposal;
  entry: MaskEntry;
  original: Uint8Array;
}

export class ProposalLayer {
  items: Proposal[] = [];
  visible = true;
  private editing: Editing | null = null;
  private busy = false;
  private images = new Map<string, HTMLCanvasElement>();
  // "Time from open to accept" counts from when the reader was first shown the proposals.
  private readonly openedAt = new Date().toISOString();

  constructor(
    private readonly annotator: Annotator,
    private readonly assignmentId: string,
    private readonly canvas: HTMLCanvasElement,
  ) {
    const viewer = annotator.viewer;
    viewer.onRender.push(() => this.render());
    viewer.onImage.push(() => this.render());
    const show = $('proposals-show') as HTMLInputElement | null;
    show?.addEventListener('change', () => this.setVisible(show.checked));
    const threshold = $('proposal-threshold') as HTMLInputElement | null;
    threshold?.addEventListener('input', () => this.renderPanel());
    $('proposals-accept-above')?.addEventListener('click', () => void this.acceptAbove());
    // Locked under the page (submitted, or a write refused): no edit goes on, every button off.
    document.addEventListener('workbench:locked', () => {
      this.endEdit();
      this.renderPanel();
      this.render();
    });
  }

  /** The layer and panel of an assignment's proposals; none shown when it has none. */
  static async start(annotator: Annotator, assignmentId: string): Promise<ProposalLayer | null> {
    const canvas = $('proposal-layer') as HTMLCanvasElement | null;
    if (!canvas) return null;
    const layer = new ProposalLayer(annotator, assignmentId, canvas);
    await layer.reload();
    return layer;
  }

  private get base(): string {
    return `/api/assignments/${this.assignmentId}/proposals/`;
  }

  async reload(): Promise<void> {
    try {
      this.items = await apiList(`${this.base}?page_size=1000`);
    } catch (err) {
      // 404: no proposals API for this task (or not the reader's); the page works without them.
      if (!(err instanceof HttpError && err.status === 404)) this.say('The model proposals could not be read.');
      this.items = [];
    }
    this.images.clear();
    this.renderPanel();
    this.render();
  }

  setVisible(visible: boolean): void {
    this.visible = visible;
    this.canvas.hidden = !visible;
    $('viewer')!.dataset.proposals = visible ? 'shown' : 'hidden';
    this.render();
  }

  private sliceOf(p: Proposal): number {
    return this.annotator.viewer.frames.findIndex((f) => f.sop === p.sop_instance_uid && f.frame === p.frame);
  }

  private threshold(): number {
    const input = $('proposal-threshold') as HTMLInputElement | null;
    return parseThreshold(input?.value ?? '') ?? 0.8;
  }

  private say(message: string): void {
    const el = $('proposal-result');
    if (el) el.textContent = message;
  }

  // ---- the panel ------------------------------------------------------------------------

  renderPanel(): void {
    const panel = $('proposals');
    const list = $('proposal-list');
    if (!panel || !list) return;
    panel.hidden = this.items.length === 0;
    const locked = !this.annotator.editable;
    panel.dataset.locked = String(locked);
    const pending = pendingOnly(this.items);
    $('proposal-count')!.textContent = String(pending.length);
    list.replaceChildren();
    const groups = groupByLabel(
      this.items,
      this.annotator.labels.map((l) => l.id),
      (p) => this.sliceOf(p),
    );
    if (!groups.length) {
      const none = document.createElement('p');
      none.className = 'muted';
      none.textContent = 'No proposal waits for a decision.';
      list.append(none);
    }
    for (const group of groups) {
      const h = document.createElement('h3');
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = this.annotator.labelById(group.label)?.color ?? '#888';
      h.append(swatch, ` ${group.name} (${group.items.length})`);
      const ul = document.createElement('ul');
      ul.className = 'proposal-items';
      ul.dataset.label = group.label;
      ul.append(...group.items.map((p) => this.row(p, locked)));
      list.append(h, ul);
    }
    const n = countAtOrAbove(this.items, this.threshold());
    const all = $('proposals-accept-above') as HTMLButtonElement;
    all.textContent = `Accept ${n}`;
    all.disabled = locked || this.busy || !!this.editing || n === 0;
    ($('proposal-threshold') as HTMLInputElement).disabled = locked;
  }

  private row(p: Proposal, locked: boolean): HTMLLIElement {
    const li = document.createElement('li');
    li.dataset.proposalId = p.id;
    li.dataset.kind = p.kind;
    const editing = this.editing?.proposal.id === p.id;
    if (editing) li.dataset.editing = 'true';
    const go = document.createElement('button');
    go.type = 'button';
    go.className = 'go';
    const slice = this.sliceOf(p);
    go.textContent = `image ${slice + 1} · ${formatScore(p.score)}`;
    go.title = `Show image ${slice + 1}`;
    go.addEventListener('click', () => slice >= 0 && void this.annotator.viewer.go(slice));
    const actions = document.createElement('span');
    actions.className = 'actions';
    const button = (cls: string, text: string, act: () => void, why = '') => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = cls;
      b.textContent = text;
      b.disabled = locked || this.busy || (!!this.editing && !editing) || !!why;
      b.title = locked ? 'This task is locked' : why;
      b.addEventListener('click', act);
      actions.append(b);
    };
    if (editing) {
      button('accept-edit', 'Accept edit', () => void this.acceptEdit());
      button('cancel-edit', 'Cancel', () => this.cancelEdit());
    } else {
      button('accept', 'Accept', () => void this.accept(p));
      const why = p.kind === 'mask' ? '' : 'Accept it, then change the shape like any of yours';
      button('edit', 'Edit', () => void this.edit(p), why);
      button('reject', 'Reject', () => void this.reject(p));
    }
    li.append(go, actions);
    return li;
  }

  // ---- decisions ------------------------------------------------------------------------

  private async act(what: () => Promise<void>, failed: string): Promise<void> {
    if (!this.annotator.editable || this.busy) return;
    this.busy = true;
    this.renderPanel();
    try {
      await what();
    } catch (err) {
      const body = err instanceof HttpError ? err.body : null;
      if (err instanceof HttpError && err.status === 409 && body?.error === 'locked') {
        await this.annotator.lock(body.message ?? 'This task is locked and takes no more decisions.');
      } else {
        this.say(body?.message ?? failed);
        if (err instanceof HttpError && err.status === 409) await this.reload(); // decided elsewhere
      }
    } finally {
      this.busy = false;
      this.renderPanel();
      this.render();
    }
  }

  private accepted(p: Proposal, annotation: ServerAnnotation | undefined): Promise<void> {
    p.decision = 'accepted';
    p.annotation = annotation?.id ?? null;
    return annotation ? this.annotator.adopt([annotation]) : this.reloadAnnotations();
  }

  async accept(p: Proposal): Promise<void> {
    await this.act(async () => {
      const out = await api('POST', `${this.base}${p.id}/accept/`, { opened_at: this.openedAt });
      await this.accepted(p, out?.annotation);
      this.say(`Accepted ${p.label_name} on image ${this.sliceOf(p) + 1}.`);
    }, 'The proposal could not be accepted.');
  }

  async reject(p: Proposal): Promise<void> {
    await this.act(async () => {
      await api('POST', `${this.base}${p.id}/reject/`, {});
      p.decision = 'rejected';
      this.say(`Rejected ${p.label_name} on image ${this.sliceOf(p) + 1}.`);
    }, 'The proposal could not be rejected.');
  }

  async acceptAbove(): Promise<void> {
    const score = this.threshold();
    await this.act(async () => {
      const out = await api('POST', `${this.base}accept-above/`, { score });
      await this.reload();
      await this.reloadAnnotations();
      const n = Number(out?.accepted ?? 0);
      this.say(`Accepted ${n} proposal${n === 1 ? '' : 's'} scored ${formatScore(score)} or more.`);
    }, 'The proposals could not be accepted.');
  }

  /** The assignment's annotations from the server, those new to the page added to it. */
  private async reloadAnnotations(): Promise<void> {
    const items: ServerAnnotation[] = await apiList(`/api/annotations/?assignment=${this.assignmentId}`);
    await this.annotator.adopt(items.filter((a) => !a.deleted));
  }

  // ---- edit, then accept ----------------------------------------------------------------

  /** Load a mask proposal into the brush: the reader paints and erases it as one of their masks
   * (in the label's colour, over the proposal's dashed outline), and nothing is saved until
   * "Accept edit" sends the edited mask with the acceptance. */
  async edit(p: Proposal): Promise<void> {
    const a = this.annotator;
    const label = a.labelById(p.label);
    if (!a.editable || this.editing || p.kind !== 'mask' || !label) return;
    const slice = this.sliceOf(p);
    if (slice < 0) return;
    await a.viewer.go(slice);
    const { rows, columns } = p.geometry;
    const original = proposalMask(p);
    const entry: MaskEntry = {
      key: `proposal|${p.id}`,
      sop: p.sop_instance_uid,
      frame: p.frame,
      label: p.label,
      rows,
      columns,
      mask: original.slice(),
      color: label.color,
      hidden: false,
    };
    a.masks.masks.set(entry.key, entry);
    a.masks.editing = { entry, onStroke: () => this.edited() };
    this.editing = { proposal: p, entry, original };
    a.setLabel(label.id, false);
    a.setTool('brush');
    $('viewer')!.dataset.proposalEditing = p.id;
    this.say('Editing the proposal: paint with Brush, take away with Eraser, then Accept edit.');
    this.renderPanel();
    this.render();
    a.masks.render();
  }

  private edited(): void {
    if (!this.editing) return;
    const { added, removed } = pixelChange(this.editing.original, this.editing.entry.mask);
    this.say(`Editing the proposal: +${added} / −${removed} px so far. Accept edit when done.`);
    this.annotator.masks.render();
  }

  async acceptEdit(): Promise<void> {
    const editing = this.editing;
    if (!editing) return;
    const { proposal: p, entry } = editing;
    const rle = maskToRle(entry.mask);
    if (!rle.length) {
      this.say('The edit leaves nothing of the proposal: reject it instead.');
      return;
    }
    const geometry = { rows: entry.rows, columns: entry.columns, rle };
    await this.act(async () => {
      const out = await api('POST', `${this.base}${p.id}/accept/`, { geometry, opened_at: this.openedAt });
      this.endEdit();
      await this.accepted(p, out?.annotation);
      this.say(`Accepted your edit of ${p.label_name} on image ${this.sliceOf(p) + 1}.`);
    }, 'The edited proposal could not be accepted.');
  }

  cancelEdit(): void {
    if (!this.editing) return;
    this.endEdit();
    this.say('');
    this.renderPanel();
    this.render();
  }

  private endEdit(): void {
    const editing = this.editing;
    if (!editing) return;
    const masks = this.annotator.masks;
    masks.masks.delete(editing.entry.key);
    if (masks.editing?.entry === editing.entry) masks.editing = null;
    this.editing = null;
    delete $('viewer')!.dataset.proposalEditing;
    masks.render();
  }

  // ---- drawing --------------------------------------------------------------------------

  /** The proposals of the current image, drawn with the viewport's camera (after every render). */
  render(): void {
    const canvas = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(canvas.clientWidth * dpr);
    const h = Math.round(canvas.clientHeight * dpr);
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    const ctx = canvas.getContext('2d')!;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const f = this.annotator.viewer.current();
    if (!this.visible || !f) return;
    const vp = this.annotator.viewer.viewport;
    const c = (x: number, y: number): number[] => vp.worldToCanvas(pixelToWorld(f.imageId, [x, y]));
    let c00: number[], c10: number[], c01: number[];
    try {
      c00 = c(0, 0);
      c10 = c(1, 0);
      c01 = c(0, 1);
    } catch {
      return; // image metadata not there yet
    }
    const here = pendingOnly(this.items).filter((p) => p.sop_instance_uid === f.sop && p.frame === f.frame);
    for (const p of here) {
      const editing = this.editing?.proposal.id === p.id;
      if (p.kind === 'mask') {
        const img = this.image(p, editing);
        if (!img) continue;
        ctx.setTransform(dpr * (c10[0] - c00[0]), dpr * (c10[1] - c00[1]), dpr * (c01[0] - c00[0]), dpr * (c01[1] - c00[1]), dpr * c00[0], dpr * c00[1]);
        ctx.imageSmoothingEnabled = false;
        ctx.drawImage(img, -0.5, -0.5); // pixel (0,0)'s centre is the image origin
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
    img = document.createElement('canvas');
    img.width = columns;
    img.height = rows;
    const pixels = proposalPixels(proposalMask(p), rows, columns, MODEL_COLOR, outlineOnly);
    img.getContext('2d')!.putImageData(new ImageData(pixels as any, columns, rows), 0, 0);
    this.images.set(key, img);
    return img;
  }

  private drawShape(ctx: CanvasRenderingContext2D, dpr: number, p: Proposal, c: (x: number, y: number) => number[]): void {
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.strokeStyle = MODEL_COLOR;
    ctx.fillStyle = `${MODEL_COLOR}26`;
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
