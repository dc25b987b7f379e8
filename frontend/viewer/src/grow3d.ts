// Grow from seeds in 3-D (the "Grow in 3-D" box of the mask tools): the seeds clicked on one
// slice grow a region through the series' volume on the server (annotations/tools.py
// tool_grow_from_seeds_3d), which answers one mask per slice reached. The clicked slice's mask
// goes back to the brush's seed loop (brush.ts) like a 2-D grow; every other slice's mask lands
// as an ordinary mask stroke of the label (undoable, editable, autosaved).
//
// Each click grows again from all the seeds: a slice's mask is then its mask before the first
// seed (kept per seed session) with the new region over it, and a slice the new region no
// longer reaches goes back to that mask.

import type { BrushTarget, MaskEntry } from './brush';
import { rleToMask } from './rle';

export interface Grow3dHost {
  /** POST the body to the 3-D tool; the answer, or null once the reason has been shown. */
  call(body: unknown): Promise<{ masks: any[] } | null>;
  /** The label's mask entry on that image, or null when the image is not in the stack. */
  entry(sop: string, frame: number, rows: number, columns: number): MaskEntry | null;
  /** Save a change of ``entry`` as one stroke (undo, autosave). */
  stroke(entry: MaskEntry, before: Uint8Array): void;
  /** Told how many slices the region reaches, after each grow. */
  grown(slices: number): void;
}

export class Grow3d {
  private bases = new WeakMap<object, Map<string, { entry: MaskEntry; base: Uint8Array }>>();

  constructor(private host: Grow3dHost) {}

  /** The region on ``target``'s slice (the other slices land as strokes), or null when refused. */
  async grow(target: BrushTarget, inside: number[][], outside: number[][], session: object): Promise<Uint8Array | null> {
    const out = await this.host.call({ sop_instance_uid: target.sop, frame: target.frame, inside, outside });
    if (!out) return null;
    let bases = this.bases.get(session);
    if (!bases) this.bases.set(session, (bases = new Map()));
    let here: Uint8Array = new Uint8Array(target.rows * target.columns);
    const reached = new Set<string>();
    for (const m of out.masks) {
      const add = rleToMask(m.rle, m.rows * m.columns);
      if (m.sop_instance_uid === target.sop && m.frame === target.frame) {
        here = add;
        continue;
      }
      const entry = this.host.entry(m.sop_instance_uid, m.frame, m.rows, m.columns);
      if (!entry) continue;
      if (!bases.has(entry.key)) bases.set(entry.key, { entry, base: entry.mask.slice() });
      reached.add(entry.key);
      this.lay(entry, bases.get(entry.key)!.base, add);
    }
    for (const [key, kept] of bases) if (!reached.has(key)) this.lay(kept.entry, kept.base, null);
    this.host.grown(reached.size + (here.some((v) => v) ? 1 : 0));
    return here;
  }

  private lay(entry: MaskEntry, base: Uint8Array, add: Uint8Array | null): void {
    const before = entry.mask.slice();
    const next = add ? base.map((v, i) => (v || add[i] ? 1 : 0)) : base.slice();
    if (next.every((v, i) => v === before[i])) return;
    entry.mask = next;
    this.host.stroke(entry, before);
  }
}
