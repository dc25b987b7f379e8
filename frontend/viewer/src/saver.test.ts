import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';

// The Saver sends through api(); a stand-in answers here, so no fetch or page is needed.
const answer = vi.hoisted(() => ({ fn: vi.fn() }));
vi.mock('./api', async (original) => ({ ...(await original<typeof import('./api')>()), api: (...args: unknown[]) => answer.fn(...args) }));

import { HttpError } from './api';
import { DEBOUNCE_MS, Saver, type SaveState } from './saver';
import type { Rec } from './types';

function rec(extra: Partial<Rec> = {}): Rec {
  return {
    uid: 'u1', clientId: 'c1', label: 'l1', kind: 'box', sop: 's', frame: 0,
    geometry: { x0: 1, y0: 1, x1: 5, y1: 5 }, attributes: {}, revision: 0, deleted: false, readonly: false,
    hidden: false, dirty: false, inflight: false, failed: false, edits: 0, attempt: 0, ...extra,
  };
}

let states: [SaveState, string][] = [];
let locked: string[] = [];
const saver = () =>
  new Saver({
    assignmentId: 'a1',
    onState: (state, detail) => states.push([state, detail]),
    onConflict: () => undefined,
    onSaved: () => undefined,
    onLocked: (message) => locked.push(message),
  });
const last = () => states[states.length - 1];

beforeEach(() => {
  vi.useFakeTimers();
  (globalThis as any).window = globalThis;
  states = [];
  locked = [];
  answer.fn.mockReset();
});
afterEach(() => vi.useRealTimers());

describe('a save refused because the task is locked (issue 12)', () => {
  test('is reported as not saved, never as saved', async () => {
    answer.fn.mockRejectedValue(new HttpError(409, { error: 'locked', message: 'The assignment is submitted.' }));
    const s = saver();
    const r = rec();
    s.touch(r);
    await vi.advanceTimersByTimeAsync(DEBOUNCE_MS + 10);
    expect(answer.fn).toHaveBeenCalledTimes(1);
    expect(locked).toEqual(['The assignment is submitted.']);
    expect(last()[0]).toBe('locked');
    expect(last()[1]).toContain('1 change not saved');
    expect(states.slice(1).some(([state]) => state === 'saved')).toBe(false);
    expect(s.refused()).toEqual([r]);
  });

  test('after the lock, changes are refused before they are sent', async () => {
    const s = saver();
    s.lock('Submitted.');
    const r = rec();
    s.touch(r);
    await vi.advanceTimersByTimeAsync(DEBOUNCE_MS * 3);
    expect(answer.fn).not.toHaveBeenCalled();
    expect(last()).toEqual(['locked', '1 change not saved: Submitted.']);
  });

  test('a task that is still open saves as before', async () => {
    answer.fn.mockResolvedValue({ id: 'srv1', revision: 1, author: 'bob' });
    const s = saver();
    s.touch(rec());
    await vi.advanceTimersByTimeAsync(DEBOUNCE_MS + 10);
    expect(last()).toEqual(['saved', '']);
  });
});
