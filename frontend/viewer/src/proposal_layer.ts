// Model proposals in the annotator (issue 11): their own layer over the image (dashed, hatched,
// tagged "Model 0.93", in the model's colour, never in a label's), the Proposals panel (Accept /
// Edit / Reject each, or all at or above a score) and the calls to the proposals API. A proposal
// is never an annotation on this page until the server has accepted it; then it is loaded as one.

import type { Annotator } from './annotate';
import { HttpError, api, apiList } from './api';
import type { MaskEntry } from './brush';
import { ProposalCanvas } from './proposal_draw';
import {
  countAtOrAbove,
  formatScore,
  groupByLabel,
  parseThreshold,
  pendingOnly,
  pixelChange,
  proposalMask,
  type Proposal,
} from './proposals';
import { maskToRle } from './rle';
import type { ServerAnnotation } from './types';
import { meanUncertainty, uncertaintyTag, type ProposalOrder } from './uncertainty';

const $ = (id: string) => document.getElementById(id);

interface Editing {
  proposal: Proposal;
  entry: MaskEntry;
  original: Uint8Array;
  undo: Uint8Array[]; // the mask before each stroke
  redo: Uint8Array[];
}

export class ProposalLayer {
  items: Proposal[] = [];
  visible = true;
  /** The uncertainty overlay (off until the reader ticks "Uncertainty"). */
  uncertainty = false;
  order: ProposalOrder = 'slice';
  private editing: Editing | null = null;
  private busy = false;
  private readonly drawing: ProposalCanvas;
  // "Time from open to accept" counts from when the reader was first shown the proposals.
  private readonly openedAt = new Date().toISOString();

  constructor(
    private readonly annotator: Annotator,
    private readonly assignmentId: string,
    canvas: HTMLCanvasElement,
    heat: HTMLCanvasElement | null = null,
  ) {
    const viewer = annotator.viewer;
    this.drawing = new ProposalCanvas(canvas, viewer, heat);
    viewer.onRender.push(() => this.render());
    viewer.onImage.push(() => this.render());
    const show = $('proposals-show') as HTMLInputElement | null;
    show?.addEventListener('change', () => this.setVisible(show.checked));
    const unsure = $('proposals-uncertainty') as HTMLInputElement | null;
    unsure?.addEventListener('change', () => this.setUncertainty(unsure.checked));
    const sort = $('proposal-sort') as HTMLSelectElement | null;
    sort?.addEventListener('change', () => {
      this.order = sort.value === 'uncertainty' ? 'uncertainty' : 'slice';
      this.renderPanel();
    });
    const threshold = $('proposal-threshold') as HTMLInputElement | null;
    threshold?.addEventListener('input', () => this.renderPanel());
    $('proposals-accept-above')?.addEventListener('click', () => void this.acceptAbove());
    // Locked under the page (submitted, or a write refused): no edit goes on, every button off.
    window.addEventListener('beforeunload', (e) => {
      if (this.editing) e.preventDefault(); // an edit not yet accepted is only on this page
    });
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
    const heat = $('uncertainty-layer') as HTMLCanvasElement | null;
    const layer = new ProposalLayer(annotator, assignmentId, canvas, heat);
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
    this.drawing.clear();
    this.renderPanel();
    this.render();
  }

  render(): void {
    this.drawing.render(this.items, this.editing?.proposal.id ?? null, this.visible, this.uncertainty);
  }

  setUncertainty(on: boolean): void {
    this.uncertainty = on;
    const heat = this.drawing.uncertaintyCanvas;
    if (heat) heat.hidden = !on;
    $('viewer')!.dataset.uncertainty = on ? 'shown' : 'hidden';
    this.render();
  }

  setVisible(visible: boolean): void {
    this.visible = visible;
    this.drawing.canvas.hidden = !visible;
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
      this.order,
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
    const unsure = $('proposals-uncertainty') as HTMLInputElement | null;
    if (unsure) {
      // still readable on a locked task: it changes nothing
      unsure.disabled = !this.items.some((p) => p.uncertainty);
      unsure.title = unsure.disabled ? 'The model made no uncertainty map for these proposals' : 'Show where the model is unsure (test-time-augmentation entropy ≥ 0.5)';
    }
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
    const tag = uncertaintyTag(p);
    if (tag) {
      const u = document.createElement('span');
      u.className = 'unc';
      u.textContent = ` · ${tag}`;
      u.dataset.high = String((meanUncertainty(p) ?? 0) >= 0.5);
      go.title += ` · mean uncertainty ${tag.slice(2)} (max ${p.uncertainty!.max.toFixed(2)})`;
      go.append(u);
    }
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
    const editing: Editing = { proposal: p, entry, original, undo: [], redo: [] };
    const step = (from: Uint8Array[], to: Uint8Array[]) => {
      const mask = from.pop();
      if (!mask) return;
      to.push(entry.mask);
      entry.mask = mask;
      this.edited();
    };
    a.masks.editing = {
      entry,
      onStroke: (_entry, before) => {
        editing.undo.push(before);
        editing.redo = [];
        this.edited();
      },
      undo: () => step(editing.undo, editing.redo),
      redo: () => step(editing.redo, editing.undo),
    };
    this.editing = editing;
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
}
