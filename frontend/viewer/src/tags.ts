// The tag browser (issue 12): the de-identified header of the image on screen, from
// GET /api/instances/<id>/tags/ (workbench/dicom_tags.py). Opened by the toolbar's "Tags"
// button or T; follows the current slice, fetching each instance once (lazily, only while
// the panel is open) and keeping it for the page's life. Values are shown as text only.

import { api, HttpError } from './api';
import type { SeriesData } from './types';

/** One element as the API sends it; ``items`` only on sequences (each item is a list of rows). */
export interface TagRow {
  tag: string;
  keyword: string;
  vr: string;
  value: string;
  items?: TagRow[][];
}

/** Rows that match ``query`` (tag, keyword or value, any case; "0008,0060" or "00080060" too).
 * A sequence is kept, with only its matching items and rows, when anything inside matches; a
 * sequence that matches itself is kept whole. An empty query keeps everything. */
export function filterTags(rows: TagRow[], query: string): TagRow[] {
  const q = query.trim().toLowerCase();
  if (!q) return rows;
  const compact = q.replace(/[(),\s]/g, '');
  const matches = (r: TagRow) =>
    r.keyword.toLowerCase().includes(q) ||
    r.value.toLowerCase().includes(q) ||
    r.tag.toLowerCase().includes(q) ||
    (compact.length >= 4 && r.tag.toLowerCase().replace(/[(),]/g, '').includes(compact));
  const out: TagRow[] = [];
  for (const row of rows) {
    if (matches(row)) {
      out.push(row);
    } else if (row.items) {
      const items = row.items.map((item) => filterTags(item, q));
      if (items.some((item) => item.length)) out.push({ ...row, items });
    }
  }
  return out;
}

/** How many element rows (sequences' contents included) a list holds. */
export function countTags(rows: TagRow[]): number {
  return rows.reduce((n, r) => n + 1 + (r.items ?? []).reduce((m, item) => m + countTags(item), 0), 0);
}

/** The tags of each instance, fetched at most once (a failed fetch is tried again next time). */
export class TagCache {
  private entries = new Map<string, Promise<TagRow[]>>();

  constructor(private fetcher: (instanceId: string) => Promise<TagRow[]> = fetchTags) {}

  get(instanceId: string): Promise<TagRow[]> {
    let entry = this.entries.get(instanceId);
    if (!entry) {
      entry = this.fetcher(instanceId);
      this.entries.set(instanceId, entry);
      entry.catch(() => this.entries.delete(instanceId));
    }
    return entry;
  }

  has(instanceId: string): boolean {
    return this.entries.has(instanceId);
  }
}

async function fetchTags(instanceId: string): Promise<TagRow[]> {
  const body = await api('GET', `/api/instances/${instanceId}/tags/`);
  return body?.tags ?? [];
}

// --- the panel --------------------------------------------------------------------------------

function cell(text: string, className: string): HTMLElement {
  const el = document.createElement('span');
  el.className = className;
  el.textContent = text;
  return el;
}

/** One list of rows; sequences as <details>, opened when a filter is on (its matches are inside). */
function renderRows(rows: TagRow[], open: boolean): HTMLElement {
  const list = document.createElement('ul');
  list.className = 'tag-rows';
  for (const row of rows) {
    const li = document.createElement('li');
    li.dataset.keyword = row.keyword;
    li.dataset.tag = row.tag;
    const line = [cell(row.tag, 'tag'), cell(row.keyword || '—', 'kw'), cell(row.vr, 'vr'), cell(row.value, 'val')];
    line[1].title = row.keyword; // the column may cut a long keyword short
    if (row.items) {
      const details = document.createElement('details');
      details.open = open;
      const summary = document.createElement('summary');
      summary.append(...line);
      details.append(summary);
      row.items.forEach((item, k) => {
        const heading = document.createElement('div');
        heading.className = 'tag-item';
        heading.textContent = `Item ${k + 1}`;
        details.append(heading, renderRows(item, open));
      });
      li.append(details);
    } else {
      const div = document.createElement('div');
      div.className = 'tag-line';
      div.append(...line);
      li.append(div);
    }
    list.append(li);
  }
  return list;
}

export interface TagViewer {
  data: SeriesData;
  onImage: (() => void)[];
  current(): { sop: string } | null;
}

/** Wire the panel (#tags-panel) and its toggle (#tags-toggle); returns the toggle for the T key. */
export function setupTags(viewer: TagViewer, cache: TagCache = new TagCache()): () => void {
  const panel = document.getElementById('tags-panel');
  const button = document.getElementById('tags-toggle') as HTMLButtonElement | null;
  if (!panel || !button) return () => undefined;
  const filter = panel.querySelector<HTMLInputElement>('#tags-filter')!;
  const status = panel.querySelector<HTMLElement>('#tags-status')!;
  const body = panel.querySelector<HTMLElement>('#tags-body')!;
  const idOf = new Map(viewer.data.instances.map((i) => [i.sop_uid, i]));
  let shown = ''; // the instance whose tags are in the panel
  let rows: TagRow[] = [];

  const render = () => {
    const kept = filterTags(rows, filter.value);
    body.replaceChildren(renderRows(kept, !!filter.value.trim()));
    const total = countTags(rows);
    status.textContent = filter.value.trim() ? `${countTags(kept)} of ${total} elements match` : `${total} elements`;
  };

  const follow = async () => {
    if (panel.hidden) return;
    const frame = viewer.current();
    const instance = frame ? idOf.get(frame.sop) : undefined;
    if (!instance) {
      shown = '';
      rows = [];
      body.replaceChildren();
      status.textContent = 'No image.';
      return;
    }
    if (instance.id === shown) return;
    shown = instance.id;
    const label = `Image ${instance.number ?? ''}`.trim();
    panel.querySelector('.tags-which')!.textContent = label;
    if (!cache.has(instance.id)) status.textContent = 'Loading…';
    try {
      const fetched = await cache.get(instance.id);
      if (shown !== instance.id) return; // the user scrolled on meanwhile
      rows = fetched;
      panel.dataset.instance = instance.id;
      render();
    } catch (err) {
      if (shown !== instance.id) return;
      shown = '';
      rows = [];
      body.replaceChildren();
      const message = err instanceof HttpError ? err.body?.message : null;
      status.textContent = message ?? 'The header could not be read; try again.';
    }
  };

  const toggle = () => {
    panel.hidden = !panel.hidden;
    button.setAttribute('aria-pressed', String(!panel.hidden));
    if (!panel.hidden) {
      shown = '';
      void follow();
      panel.scrollIntoView({ block: 'nearest' });
    }
  };
  button.addEventListener('click', toggle);
  panel.querySelector('#tags-close')?.addEventListener('click', toggle);
  filter.addEventListener('input', render);
  viewer.onImage.push(() => void follow());
  return toggle;
}
