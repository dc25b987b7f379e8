// Every change is saved on its own, within a debounce, with no save button. Creates carry a
// client_id so a retried POST never duplicates; updates carry the revision; a 409 is shown
// as a conflict for the user to settle; network errors and 5xx are retried with backoff.
// Once the task is locked (submitted here, or the server answers "locked") nothing more is
// sent, and a change the server refused is reported as not saved, never as saved.

import { api, HttpError } from './api';
import type { Rec, ServerAnnotation } from './types';

export const DEBOUNCE_MS = 300;
const MAX_BACKOFF_MS = 8000;

export type SaveState = 'saved' | 'saving' | 'unsaved' | 'locked';

export interface SaverHooks {
  assignmentId: string;
  onState(state: SaveState, detail: string): void;
  onConflict(rec: Rec): void;
  onSaved(rec: Rec): void;
  onLocked(message: string): void;
}

export class Saver {
  private recs = new Set<Rec>();
  private lastError = '';
  private locked = false;
  private lockMessage = '';

  constructor(private hooks: SaverHooks) {}

  /** Mark a record changed; it is sent DEBOUNCE_MS after the last change. */
  touch(rec: Rec): void {
    if (this.locked) {
      // Refused here, before it is sent: the task no longer takes changes.
      rec.refused = true;
      this.recs.add(rec);
      this.report();
      return;
    }
    rec.dirty = true;
    rec.edits += 1;
    this.recs.add(rec);
    this.schedule(rec, DEBOUNCE_MS);
    this.report();
  }

  /** The conflict is settled in favour of the user's version: re-send on the server's revision. */
  overwrite(rec: Rec): void {
    if (!rec.conflict) return;
    rec.revision = rec.conflict.revision;
    if (rec.conflict.deleted) {
      // Theirs is deleted: ours comes back as a new annotation.
      rec.serverId = undefined;
      rec.clientId = crypto.randomUUID();
    }
    rec.conflict = undefined;
    this.touch(rec);
  }

  /** The conflict is settled in favour of the server's version (the caller redraws it). */
  acceptTheirs(rec: Rec): void {
    const current = rec.conflict;
    if (!current) return;
    rec.conflict = undefined;
    rec.revision = current.revision;
    rec.geometry = current.geometry;
    rec.attributes = current.attributes;
    rec.label = current.label;
    rec.deleted = current.deleted;
    rec.dirty = false;
    this.report();
  }

  /** The task takes no more changes: nothing is sent from now on. */
  lock(message: string): void {
    this.locked = true;
    this.lockMessage = message;
    for (const rec of this.recs) {
      if (rec.timer) window.clearTimeout(rec.timer);
      rec.timer = undefined;
      if (rec.dirty) rec.refused = true;
      rec.dirty = false;
    }
    this.report();
  }

  isLocked(): boolean {
    return this.locked;
  }

  /** Records whose change the server (or the lock) refused: they are not what is stored. */
  refused(): Rec[] {
    return [...this.recs].filter((r) => r.refused);
  }

  pending(): boolean {
    for (const rec of this.recs) if (rec.dirty || rec.inflight || rec.conflict) return true;
    return false;
  }

  private schedule(rec: Rec, delay: number): void {
    if (rec.timer) window.clearTimeout(rec.timer);
    rec.timer = window.setTimeout(() => void this.flush(rec), delay);
  }

  private async flush(rec: Rec): Promise<void> {
    rec.timer = undefined;
    if (rec.inflight || rec.conflict || !rec.dirty || this.locked) return;
    const edits = rec.edits;
    rec.inflight = true;
    this.report();
    try {
      const saved = await this.send(rec);
      rec.failed = false;
      rec.attempt = 0;
      if (saved) {
        rec.serverId = saved.id;
        rec.revision = saved.revision;
        if (saved.author !== undefined) rec.author = authorName(saved.author);
      }
      if (rec.edits === edits) rec.dirty = false;
      this.hooks.onSaved(rec);
    } catch (err) {
      this.failed(rec, err);
    } finally {
      rec.inflight = false;
      if (rec.dirty && !rec.conflict && !rec.timer) this.schedule(rec, rec.failed ? backoff(rec.attempt) : 0);
      this.report();
    }
  }

  private async send(rec: Rec): Promise<ServerAnnotation | null> {
    if (rec.deleted) {
      if (!rec.serverId) return null; // never reached the server: nothing to delete
      await api('DELETE', `/api/annotations/${rec.serverId}/?revision=${rec.revision}`);
      rec.revision += 1;
      return null;
    }
    const body = { label: rec.label, geometry: rec.geometry, attributes: rec.attributes };
    if (rec.serverId) {
      return api('PATCH', `/api/annotations/${rec.serverId}/`, { ...body, revision: rec.revision });
    }
    return api('POST', '/api/annotations/', {
      ...body,
      assignment: this.hooks.assignmentId,
      sop_instance_uid: rec.sop,
      frame: rec.frame,
      client_id: rec.clientId,
    });
  }

  private failed(rec: Rec, err: unknown): void {
    if (err instanceof HttpError && err.status === 409) {
      if (err.body?.error === 'locked') {
        // Refused, not saved: say so (the annotator shows what is stored again).
        rec.dirty = false;
        rec.refused = true;
        this.lock(err.body?.message ?? 'This assignment is locked.');
        this.hooks.onLocked(this.lockMessage);
        return;
      }
      if (err.body?.current) {
        rec.conflict = err.body.current as ServerAnnotation;
        this.hooks.onConflict(rec);
        return;
      }
    }
    rec.failed = true;
    rec.attempt += 1;
    if (err instanceof HttpError && err.status < 500 && err.status !== 408 && err.status !== 429) {
      // The server refused the content itself: retrying the same body will not help.
      rec.dirty = true;
      this.lastError = err.body?.message ?? `The server refused the change (${err.status}).`;
      rec.attempt = 99;
    } else {
      this.lastError = err instanceof HttpError ? `Server error ${err.status}; retrying.` : 'Network error; retrying.';
    }
  }

  report(): void {
    if (this.locked) {
      const refused = this.refused().length;
      const detail = refused ? `${refused} change${refused === 1 ? '' : 's'} not saved: ${this.lockMessage}` : '';
      this.hooks.onState('locked', detail);
      return;
    }
    let state: SaveState = 'saved';
    for (const rec of this.recs) {
      if (rec.failed || rec.conflict) {
        state = 'unsaved';
        break;
      }
      if (rec.dirty || rec.inflight) state = 'saving';
    }
    this.hooks.onState(state, state === 'unsaved' ? this.lastError : '');
  }
}

function backoff(attempt: number): number {
  if (attempt >= 99) return 60_000;
  return Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.max(0, attempt - 1));
}

export function authorName(author: any): string {
  if (author == null) return '';
  if (typeof author === 'string') return author;
  return author.username ?? author.name ?? String(author.id ?? '');
}
