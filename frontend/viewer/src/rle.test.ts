import { describe, expect, test } from 'vitest';
import { maskToRle, rleToMask } from './rle';

const mask = (rows: number[][]): Uint8Array => Uint8Array.from(rows.flat());

describe('maskToRle', () => {
  test('matches the server: annotations.geometry.rle_encode, row-major, runs crossing rows', () => {
    // rle_encode(np.array(...)) on the same 4 x 5 mask gives [0, 1, 8, 4, 19, 1]
    const m = mask([
      [1, 0, 0, 0, 0],
      [0, 0, 0, 1, 1],
      [1, 1, 0, 0, 0],
      [0, 0, 0, 0, 1],
    ]);
    expect(maskToRle(m)).toEqual([0, 1, 8, 4, 19, 1]);
  });

  test('empty and full masks', () => {
    expect(maskToRle(new Uint8Array(9))).toEqual([]); // rle_encode(np.zeros((3, 3))) == []
    expect(maskToRle(new Uint8Array(9).fill(1))).toEqual([0, 9]); // rle_encode(np.ones((3, 3))) == [0, 9]
    expect(maskToRle(new Uint8Array(0))).toEqual([]);
  });

  test('runs at the first and the last pixel', () => {
    expect(maskToRle(mask([[1, 1, 0, 0, 1]]))).toEqual([0, 2, 4, 1]);
    expect(maskToRle(mask([[0, 0, 0, 1, 1]]))).toEqual([3, 2]);
    expect(maskToRle(mask([[1, 0, 1, 0, 1]]))).toEqual([0, 1, 2, 1, 4, 1]);
  });

  test('any non-zero value is inside', () => {
    expect(maskToRle(Uint8Array.from([0, 255, 7, 0]))).toEqual([1, 2]);
  });
});

describe('rleToMask', () => {
  test('decodes the server format', () => {
    expect(Array.from(rleToMask([0, 1, 8, 4, 19, 1], 20))).toEqual(
      [
        [1, 0, 0, 0, 0],
        [0, 0, 0, 1, 1],
        [1, 1, 0, 0, 0],
        [0, 0, 0, 0, 1],
      ].flat(),
    );
  });

  test('clips runs to the mask and ignores a dangling start', () => {
    expect(Array.from(rleToMask([3, 10], 5))).toEqual([0, 0, 0, 1, 1]);
    expect(Array.from(rleToMask([-2, 3], 4))).toEqual([1, 0, 0, 0]);
    expect(Array.from(rleToMask([1, 1, 3], 4))).toEqual([0, 1, 0, 0]);
    expect(Array.from(rleToMask([], 3))).toEqual([0, 0, 0]);
  });

  test('round trips', () => {
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let trial = 0; trial < 50; trial++) {
      const size = 1 + Math.floor(random() * 300);
      const density = random();
      const m = new Uint8Array(size).map(() => (random() < density ? 1 : 0));
      const rle = maskToRle(m);
      expect(rleToMask(rle, size)).toEqual(m);
      // runs are ordered, disjoint, non-empty and not adjacent (a canonical encoding)
      for (let k = 0; k < rle.length; k += 2) {
        expect(rle[k + 1]).toBeGreaterThan(0);
        if (k >= 2) expect(rle[k]).toBeGreaterThan(rle[k - 2] + rle[k - 1]);
      }
      expect(maskToRle(rleToMask(rle, size))).toEqual(rle);
    }
  });
});
