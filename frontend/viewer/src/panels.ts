// The side panel: the list of annotations, the selected annotation's label and attributes,
// and an annotation's history.

import * as csTools from '@cornerstonejs/tools';
import type { Annotator } from './annotate';
import { api, apiList } from './api';
import { kindLabel } from './labels';
import { provenanceLines } from './proposals';
import { authorName } from './saver';
import { measurementText } from './shapes';
import type { Rec, Snapshot } from './types';

const $ = (id: string) => document.getElementById(id);

export function renderList(a: Annotator): void {
  const list = $('ann-list');
  if (!list) return;
  list.replaceChildren();
  const rows = [...a.recs.values()].filter((r) => !r.deleted);
  for (const rec of rows) {
    const label = a.labelById(rec.label);
    const frameIndex = a.viewer.frames.findIndex((f) => f.sop === rec.sop && f.frame === rec.frame);
    const li = document.createElement('li');
    li.dataset.annUid = rec.uid;
    li.dataset.kind = rec.kind;
    if (rec.serverId) li.dataset.annId = rec.serverId;
    if (rec.source) li.dataset.source = rec.source;
    li.innerHTML = `<span class="swatch"></span><button type="button" class="go"></button>
      <span class="muted who"></span>
      <span class="actions"><button type="button" class="hide"></button>
      <button type="button" class="history">History</button>
      <button type="button" class="delete">Delete</button></span>`;
    (li.querySelector('.swatch') as HTMLElement).style.background = label?.color ?? '#888';
    const measured = measurementText(rec.kind, rec.geometry);
    li.querySelector('.go')!.textContent =
      `${label?.name ?? 'label'} · ${kindLabel(rec.kind)}${measured ? ` ${measured}` : ''} · image ${frameIndex + 1}`;
    if (measured) li.dataset.measurement = measured;
    li.querySelector('.who')!.textContent =
      rec.author && rec.readonly ? rec.author : rec.source === 'model' ? 'from model' : '';
    li.querySelector('.hide')!.textContent = rec.hidden ? 'Show' : 'Hide';
    (li.querySelector('.delete') as HTMLButtonElement).hidden = !a.editable || rec.readonly;
    (li.querySelector('.history') as HTMLButtonElement).disabled = !rec.serverId;
    li.querySelector('.go')!.addEventListener('click', () => {
      a.showAttributes(rec);
      if (frameIndex >= 0) void a.viewer.go(frameIndex);
      if (!rec.kind.startsWith('classification') && rec.kind !== 'mask') {
        csTools.annotation.selection.setAnnotationSelected(rec.uid, true, false);
      }
    });
    li.querySelector('.hide')!.addEventListener('click', () => a.toggleHidden(rec));
    li.querySelector('.delete')!.addEventListener('click', () => a.deleteRec(rec));
    li.querySelector('.history')!.addEventListener('click', () => void showHistory(rec));
    list.append(li);
  }
  $('ann-count')!.textContent = String(rows.length);
}

/** The side panel's form for the label and attributes of one annotation. */
export function showAttributes(a: Annotator, rec: Rec): void {
  const panel = $('attributes');
  if (!panel || rec.kind.startsWith('classification')) return;
  panel.hidden = false;
  panel.dataset.annUid = rec.uid;
  const body = panel.querySelector('.fields')!;
  body.replaceChildren();
  const disabled = !a.editable || rec.readonly;
  const change = (mutate: () => void) => {
    if (!a.editable || rec.readonly) return;
    const before = snapshot(rec);
    mutate();
    a.record(rec, before);
    a.saver.touch(rec);
    a.renderList();
  };
  const labelSelect = document.createElement('select');
  labelSelect.name = 'label';
  labelSelect.disabled = disabled || rec.kind === 'mask';
  labelSelect.append(...a.labels.filter((l) => l.kind === rec.kind).map((l) => new Option(l.name, l.id)));
  labelSelect.value = rec.label;
  labelSelect.addEventListener('change', () =>
    change(() => {
      rec.label = labelSelect.value;
      a.colour(rec.uid, rec.label);
      csTools.utilities.triggerAnnotationRenderForViewportIds([a.viewer.viewport.id]);
    }),
  );
  const labelRow = document.createElement('label');
  labelRow.append('Label ', labelSelect);
  body.append(labelRow);
  for (const spec of a.labelById(rec.label)?.attributes ?? []) {
    const row = document.createElement('label');
    row.className = 'cls-row';
    row.append(`${spec.name} `);
    let input: HTMLInputElement | HTMLSelectElement;
    const value = rec.attributes[spec.name];
    if (spec.type === 'choice') {
      input = document.createElement('select');
      input.append(new Option('—', ''), ...(spec.choices ?? []).map((c) => new Option(c, c)));
      input.value = value == null ? '' : String(value);
    } else {
      input = document.createElement('input');
      input.type = spec.type === 'boolean' ? 'checkbox' : spec.type === 'number' ? 'number' : 'text';
      if (spec.type === 'boolean') input.checked = value === true;
      else input.value = value == null ? '' : String(value);
    }
    input.name = spec.name;
    input.disabled = disabled;
    input.addEventListener('change', () =>
      change(() => {
        const raw = input instanceof HTMLInputElement && input.type === 'checkbox' ? input.checked : input.value;
        const attributes = { ...rec.attributes };
        if (raw === '') delete attributes[spec.name];
        else attributes[spec.name] = spec.type === 'number' ? Number(raw) : raw;
        rec.attributes = attributes;
      }),
    );
    row.append(input);
    body.append(row);
  }
}

export async function showHistory(rec: Rec): Promise<void> {
  const panel = $('history')!;
  const list = panel.querySelector('ol')!;
  const provenance = panel.querySelector<HTMLElement>('.provenance');
  panel.hidden = false;
  list.replaceChildren();
  if (provenance) {
    provenance.replaceChildren();
    provenance.hidden = true;
  }
  if (!rec.serverId) return;
  // The first page by hand: for an annotation from a model it carries a ``provenance`` key
  // beside the revisions (what the reader changed of the proposal).
  const url = `/api/annotations/${rec.serverId}/history/`;
  const first: any = await api('GET', url);
  const items: any[] = Array.isArray(first) ? first : [...(first.results ?? [])];
  if (!Array.isArray(first) && first.next) items.push(...(await apiList(first.next)));
  const prov = (!Array.isArray(first) && first.provenance) || items.find((h) => h?.provenance)?.provenance;
  if (provenance && prov) {
    provenance.hidden = false;
    for (const line of provenanceLines(prov)) {
      const p = document.createElement('p');
      p.textContent = line;
      provenance.append(p);
    }
  }
  for (const h of items) {
    const li = document.createElement('li');
    const changes = (h.changes ?? []).join(', ');
    li.textContent = `r${h.revision} ${h.action} by ${authorName(h.author)} at ${new Date(h.at).toLocaleString()}${changes ? ` (${changes})` : ''}`;
    list.append(li);
  }
}

export function snapshot(rec: Rec): Snapshot {
  return {
    label: rec.label,
    kind: rec.kind,
    sop: rec.sop,
    frame: rec.frame,
    geometry: structuredClone(rec.geometry),
    attributes: structuredClone(rec.attributes),
  };
}
