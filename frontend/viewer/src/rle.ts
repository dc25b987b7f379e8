// Binary masks <-> the contract's run-length encoding: row-major [start, length, ...] runs of 1s.

export function maskToRle(mask: Uint8Array): number[] {
  const runs: number[] = [];
  let start = -1;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i]) {
      if (start < 0) start = i;
    } else if (start >= 0) {
      runs.push(start, i - start);
      start = -1;
    }
  }
  if (start >= 0) runs.push(start, mask.length - start);
  return runs;
}

export function rleToMask(rle: number[], size: number): Uint8Array {
  const mask = new Uint8Array(size);
  for (let k = 0; k + 1 < rle.length; k += 2) {
    const end = Math.min(size, rle[k] + rle[k + 1]);
    for (let i = Math.max(0, rle[k]); i < end; i++) mask[i] = 1;
  }
  return mask;
}
