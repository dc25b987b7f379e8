// The series viewer page: /series/<id>/view/ (read-only) and /assignments/<id>/ (annotate,
// or review for a reviewer). Reads its URLs from data-* attributes of #viewer.

import * as csTools from '@cornerstonejs/tools';
import { api, HttpError, apiList } from './api';
import { Annotator, DRAW_TOOLS } from './annotate';
import { orientationKey } from './orientation';
import type { OrientationAction } from './orientation';
import { kindLabel, statusLabel } from './labels';
import { browserStorage, loadOpacity, saveOpacity } from './prefs';
import { interactive } from './startup';
import type { Early, Label, ServerAnnotation } from './types';
import { Viewer } from './viewer';
import { ProposalLayer } from './proposal_layer';
import { TriageLayer } from './triage_layer';
import { setupMpr, type Mpr, type MprTool } from './mpr'; // layouts (issue 12): mpr.ts, strip.ts
import { REFORMAT_MODALITIES } from './volume';
import { setupStrip } from './strip';
import { setupCompare } from './compare';
import { setupTags } from './tags';

const $ = (id: string) => document.getElementById(id);
const EDITABLE_STATUSES = new Set(['todo', 'in_progress', 'returned']);

/** Start the page; ``early`` is the data main.ts began fetching while this chunk loaded. */
export async function boot(root: HTMLElement, early: Promise<Early>): Promise<void> {
  const params = new URLSearchParams(window.location.search);
  const cpu = params.get('cpu') === '1' || root.dataset.cpu === '1';
  const assignmentId = root.dataset.assignment ?? '';
  performance.mark('viewer-chunk-evaluated');
  const { assignment, data } = await early;
  document.title = `${data.series.modality} ${data.patient} · Workbench`;
  const username = root.dataset.username ?? '';
  const adjudicator = data.roles.some((r) => r === 'reviewer' || r === 'admin');
  // A series' consensus read (kind consensus) is nobody's: its adjudicators edit it here while it
  // is undecided and decide on the adjudication page, so it has no Submit and no Accept/Return.
  const consensus = assignment?.kind === 'consensus';
  const isReader = !!assignment && !consensus && readerName(assignment.reader) === username;
  const reviewing = !!assignment && !consensus && !isReader && adjudicator;
  const editable = (isReader || (consensus && adjudicator)) && EDITABLE_STATUSES.has(assignment.status);
  // Before Cornerstone renders: hiding the drawing tools can re-wrap the toolbar and move the
  // viewport, which should happen under the preview, not under Cornerstone's first image.
  if (!editable) document.querySelectorAll<HTMLElement>('.draw-tools').forEach((el) => (el.hidden = true));
  const element = $('viewport') as HTMLDivElement;
  const viewer = await Viewer.create(root, element, data, cpu);

  let labels: Label[] = [];
  let annotator: Annotator | null = null;
  let proposals: ProposalLayer | null = null;
  let triage: TriageLayer | null = null;
  let mpr: Mpr | null = null;
  if (assignment) {
    try {
      labels = (await api('GET', `/api/projects/${data.project.id}/label-schema/`)).labels ?? [];
    } catch (err) {
      if (!(err instanceof HttpError && err.status === 404)) throw err;
    }
    annotator = new Annotator(viewer, labels, assignmentId, editable);
    fillLabels(annotator, labels);
    showAssignment(assignment, reviewing, isReader);
    if (consensus) showConsensus(data.project.id, data.series.id, editable);
    // The server moves a todo or returned assignment to in_progress on the first save.
    document.addEventListener('workbench:saved', () => {
      if (assignment.status === 'todo' || assignment.status === 'returned') {
        assignment.status = 'in_progress';
        showAssignment(assignment, reviewing, isReader);
      }
    });
    // The task was locked under the page (submitted here, or the server refused a save).
    document.addEventListener('workbench:locked', () => {
      ($('submit') as HTMLButtonElement).hidden = true;
      api('GET', `/api/assignments/${assignmentId}/`).then(
        (fresh) => {
          Object.assign(assignment, fresh);
          showAssignment(assignment, reviewing, isReader);
        },
        () => undefined,
      );
    });
    // Each read is reviewed on its own: only this assignment's labels, never another reader's
    // of the same series (a reviewer may list those through the API, but not here).
    const items: ServerAnnotation[] = await apiList(`/api/annotations/?assignment=${assignmentId}`);
    await annotator.load(items, !editable);
    proposals = await ProposalLayer.start(annotator, assignmentId);
    triage = await TriageLayer.start(viewer, assignmentId);
    if (!labels.length && editable) annotator.flash('This project has no label schema yet; ask its admin for one.');
    root.dataset.mode = reviewing ? 'review' : editable ? 'annotate' : 'readonly';
    setupReview(assignmentId, reviewing);
    setupSubmit(annotator, assignment, isReader && editable, () => showAssignment(assignment, reviewing, isReader));
    // The layouts in the annotator too, for CT and MR volumes: read-only views beside or instead
    // of the stack, which keeps its annotations, tools and autosave underneath.
    if (REFORMAT_MODALITIES.has(data.series.modality)) {
      $('layouts')!.hidden = false;
      mpr = setupMpr(viewer, root);
      setupCompare(viewer, root);
    }
  } else {
    root.dataset.mode = 'view';
    // Layouts: on the read-only series page only, so that no annotation tool meets them.
    setupStrip(data);
    mpr = setupMpr(viewer, root);
    setupCompare(viewer, root);
  }
  (window as any).workbenchMpr = mpr;
  // The tag browser: on every page (viewer, annotator, review), following the slice on screen.
  const toggleTags = setupTags(viewer);
  wireControls(viewer, annotator, toggleTags, mpr);
  // For tests and debugging in the console.
  (window as any).workbenchViewer = { viewer, annotator, proposals, triage, csTools };
  await viewer.shown;
  interactive();
  root.dataset.loaded = '1';
}

function readerName(reader: any): string {
  if (reader == null) return '';
  if (typeof reader === 'string') return reader;
  return reader.username ?? String(reader.id ?? '');
}

function fillLabels(annotator: Annotator, labels: Label[]): void {
  const select = $('label-picker') as HTMLSelectElement;
  select.replaceChildren(...labels.map((l) => new Option(`${l.name} (${kindLabel(l.kind)})`, l.id)));
  select.addEventListener('change', () => annotator.setLabel(select.value));
  const first = labels.find((l) => !l.kind.startsWith('classification'));
  if (first) annotator.setLabel(first.id, false);
  $('annotation-panel')!.hidden = false;
  if (!annotator.editable) document.querySelectorAll<HTMLElement>('.draw-tools').forEach((el) => (el.hidden = true));
}

function showAssignment(assignment: any, reviewing: boolean, isReader: boolean): void {
  const el = $('assignment-status')!;
  const locked = !EDITABLE_STATUSES.has(assignment.status);
  el.textContent =
    `${statusLabel(assignment.status)}${locked ? ' · locked, no edits' : ''}` +
    `${assignment.comment ? ` · “${assignment.comment}”` : ''}`;
  el.dataset.status = assignment.status;
  el.dataset.locked = String(locked);
  el.hidden = false;
  if (!reviewing && !isReader && assignment.kind !== 'consensus') $('viewer-message')!.textContent = 'Read only.';
}

/** On a consensus read: what it is, and where the decision is taken. */
function showConsensus(projectId: string, seriesId: string, editable: boolean): void {
  const el = $('viewer-message')!;
  el.hidden = false;
  el.dataset.consensus = editable ? 'editing' : 'decided';
  el.textContent = editable
    ? "Consensus read: edits here are saved into the series' consensus. Decide on the "
    : 'Consensus read, decided: read only. See the ';
  const link = document.createElement('a');
  link.href = `/projects/${projectId}/adjudication/${seriesId}/`;
  link.textContent = 'adjudication page';
  el.append(link, '.');
}

function setupReview(assignmentId: string, reviewing: boolean): void {
  const panel = $('review')!;
  panel.hidden = !reviewing;
  if (!reviewing) return;
  const act = async (action: 'accept' | 'return') => {
    const comment = ($('return-comment') as HTMLTextAreaElement).value.trim();
    if (action === 'return' && !comment) {
      $('review-result')!.textContent = 'Write a comment for the reader first.';
      return;
    }
    try {
      const result = await api('POST', `/api/assignments/${assignmentId}/${action}/`, action === 'return' ? { comment } : {});
      $('review-result')!.textContent = action === 'accept' ? 'Accepted.' : 'Returned to the reader.';
      showAssignment(result?.status ? result : { status: action === 'accept' ? 'accepted' : 'returned', comment }, true, false);
    } catch (err) {
      $('review-result')!.textContent = (err as HttpError).body?.message ?? 'The server refused this.';
    }
  };
  $('accept')!.addEventListener('click', () => void act('accept'));
  $('return')!.addEventListener('click', () => void act('return'));
}

/** Submit asks first (a page dialog); "Submit and open next" goes on to the reader's next open task. */
function setupSubmit(annotator: Annotator, assignment: any, show: boolean, shown: () => void): void {
  const button = $('submit') as HTMLButtonElement | null;
  const dialog = $('submit-dialog') as HTMLDialogElement | null;
  if (!button || !dialog) return;
  button.hidden = !show;
  const pending = $('submit-dialog-pending')!;
  button.addEventListener('click', () => {
    pending.hidden = true;
    dialog.showModal();
  });
  $('submit-cancel')!.addEventListener('click', () => dialog.close());
  const submit = async (next: boolean) => {
    if (annotator.saver.pending()) {
      pending.hidden = false; // submitting now would lock out the changes still on their way
      return;
    }
    dialog.close();
    try {
      const result = await api('POST', `/api/assignments/${assignment.id}/submit/`, {});
      Object.assign(assignment, result?.status ? result : { status: 'submitted' });
    } catch (err) {
      annotator.flash((err as HttpError).body?.message ?? 'Could not submit.');
      return;
    }
    button.hidden = true;
    shown();
    await annotator.lock('Submitted for review: this task is locked and takes no more edits.');
    if (next) await openNext(annotator, assignment.id);
  };
  $('submit-confirm')!.addEventListener('click', () => void submit(false));
  $('submit-next')!.addEventListener('click', () => void submit(true));
}

/** Open the reader's next open assignment in the worklist's order (the server's: sent back,
 * started, new; urgent first, then oldest; annotations/worklist.py), or say there is none. */
async function openNext(annotator: Annotator, current: string): Promise<void> {
  let mine: any[] = [];
  try {
    mine = await apiList('/api/assignments/mine/?status=open');
  } catch {
    annotator.flash('Submitted. The worklist could not be read; open it from the Worklist link.');
    return;
  }
  const open = mine.filter((a) => a.id !== current);
  if (open.length) {
    window.location.assign(`/assignments/${open[0].id}/`);
    return;
  }
  const el = $('viewer-message')!;
  el.hidden = false;
  el.dataset.next = 'none';
  el.textContent = 'Submitted. You have no other open assignment. ';
  const link = document.createElement('a');
  link.href = '/worklist/';
  link.textContent = 'Back to the worklist';
  el.append(link);
}

/** How opaque annotations are drawn: the SVG and mask layers read --annotation-opacity (app.css). */
function showOpacity(value: number): void {
  $('viewer')!.style.setProperty('--annotation-opacity', String(value));
}

const KEYS: Record<string, string> = {
  w: 'wl',
  p: 'pan',
  z: 'zoom',
  s: 'select',
  b: 'box',
  g: 'polygon',
  f: 'freehand',
  r: 'brush',
  e: 'eraser',
  o: 'point',
  l: 'line',
  c: 'ellipse',
  a: 'angle',
};

/** In the reformats, the toolbar's navigation tools drive the three views (mpr.ts). */
const MPR_TOOLS: Record<string, MprTool> = { wl: 'wl', pan: 'pan', zoom: 'zoom', select: 'crosshairs' };

function wireControls(viewer: Viewer, annotator: Annotator | null, toggleTags: () => void, mpr: Mpr | null): void {
  const press = (tool: string) =>
    document.querySelectorAll<HTMLElement>('[data-tool]').forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.tool === tool)));
  let stackTool = 'wl';
  const setTool = (tool: string) => {
    if (mpr?.active && MPR_TOOLS[tool]) {
      mpr.setTool(MPR_TOOLS[tool]);
      press(tool);
      return;
    }
    // Drawing stays on the acquired slices: a drawing tool brings the stack back.
    if (mpr?.active && DRAW_TOOLS[tool] && annotator?.editable) mpr.exit();
    if (annotator) annotator.setTool(tool);
    else if (!DRAW_TOOLS[tool]) {
      stackTool = tool;
      viewer.setNavigation(tool === 'select' ? 'none' : (tool as any));
      press(tool);
    }
  };
  // The toolbar shows the tool of the layout on screen.
  document.addEventListener('workbench:layout', (e) => {
    const layout = (e as CustomEvent<string>).detail;
    if (layout === 'mpr' && mpr) press(Object.keys(MPR_TOOLS).find((k) => MPR_TOOLS[k] === mpr.tool) ?? 'select');
    else if (layout === 'stack') press(annotator ? annotator.tool : stackTool);
  });
  const reset = () => (mpr?.active ? mpr.reset() : viewer.reset());
  const zoomBy = (factor: number) => (mpr?.active ? mpr.zoomBy(factor) : viewer.zoomBy(factor));
  if (!annotator) document.querySelectorAll<HTMLElement>('.draw-tools').forEach((el) => (el.hidden = true));
  document.querySelectorAll<HTMLButtonElement>('[data-tool]').forEach((b) => b.addEventListener('click', () => setTool(b.dataset.tool!)));
  const preset = $('preset') as HTMLSelectElement;
  preset.addEventListener('change', () => {
    if (!preset.value) return;
    const [w, c] = preset.value.split(',').map(Number);
    viewer.setWindowLevel(w, c);
  });
  $('reset')!.addEventListener('click', reset);
  // invert / rotate / flip buttons (orientation.ts)
  document.querySelectorAll<HTMLButtonElement>('[data-orient]').forEach((b) =>
    b.addEventListener('click', () => viewer.orient(b.dataset.orient as OrientationAction)),
  );
  const fps = $('cine-fps') as HTMLInputElement;
  const play = $('cine-play') as HTMLButtonElement;
  const toggleCine = () => {
    if (viewer.playing()) viewer.stop();
    else viewer.play(Number(fps.value) || 10);
    play.textContent = viewer.playing() ? 'Pause' : 'Play';
    play.setAttribute('aria-pressed', String(viewer.playing()));
  };
  play.addEventListener('click', toggleCine);
  fps.addEventListener('change', () => viewer.playing() && viewer.play(Number(fps.value) || 10));
  const size = $('brush-size') as HTMLInputElement;
  size.addEventListener('input', () => annotator && (annotator.masks.radius = Number(size.value)));
  const opacity = $('opacity') as HTMLInputElement;
  const storage = browserStorage();
  const saved = loadOpacity(storage);
  if (saved !== null) opacity.value = String(saved);
  showOpacity(Number(opacity.value));
  opacity.addEventListener('input', () => {
    showOpacity(Number(opacity.value));
    saveOpacity(storage, Number(opacity.value));
  });
  $('undo')!.addEventListener('click', () => annotator?.undo());
  $('redo')!.addEventListener('click', () => annotator?.redo());
  $('help-toggle')!.addEventListener('click', () => ($('help')!.hidden = !$('help')!.hidden));

  document.addEventListener('keydown', (e) => {
    const target = e.target as HTMLElement;
    if (target.closest('input, textarea, select')) return;
    const key = e.key.toLowerCase();
    const mod = e.ctrlKey || e.metaKey;
    if (mod && key === 'z') {
      e.preventDefault();
      e.shiftKey ? annotator?.redo() : annotator?.undo();
    } else if (mod && key === 'y') {
      e.preventDefault();
      annotator?.redo();
    } else if (mod) {
      return;
    } else if (orientationKey(e.key, e.shiftKey)) {
      viewer.orient(orientationKey(e.key, e.shiftKey)!);
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowRight') {
      e.preventDefault();
      void viewer.step(1);
    } else if (e.key === 'ArrowUp' || e.key === 'ArrowLeft') {
      e.preventDefault();
      void viewer.step(-1);
    } else if (e.key === 'PageDown') {
      void viewer.step(10);
    } else if (e.key === 'PageUp') {
      void viewer.step(-10);
    } else if (e.key === 'Home') {
      void viewer.go(0);
    } else if (e.key === 'End') {
      void viewer.go(viewer.frames.length - 1);
    } else if (e.key === ' ') {
      e.preventDefault();
      toggleCine();
    } else if (e.key === 'Delete' || e.key === 'Backspace') {
      annotator?.deleteSelected();
    } else if (key === 'h') {
      annotator?.hideSelected();
    } else if (key === 'x') {
      reset();
    } else if (key === 't') {
      toggleTags();
    } else if (key === '+' || key === '=') {
      zoomBy(1.25);
    } else if (key === '-') {
      zoomBy(0.8);
    } else if (key === '[' || key === ']') {
      size.value = String(Number(size.value) + (key === ']' ? 1 : -1));
      size.dispatchEvent(new Event('input'));
    } else if (key === '?') {
      $('help')!.hidden = !$('help')!.hidden;
    } else if (/^[1-9]$/.test(key)) {
      const option = preset.options[Number(key)];
      if (option) {
        preset.value = option.value;
        preset.dispatchEvent(new Event('change'));
      }
    } else if (KEYS[key]) {
      setTool(KEYS[key]);
    }
  });
}
