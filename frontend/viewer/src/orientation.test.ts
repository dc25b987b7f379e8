import { describe, expect, it } from 'vitest';
import { nextOrientation, orientationKey, orientationText, UPRIGHT } from './orientation';

describe('orientation', () => {
  it('rotates in 90 degree steps and comes back upright after four', () => {
    let o = UPRIGHT;
    const seen: number[] = [];
    for (let k = 0; k < 4; k++) {
      o = nextOrientation(o, 'rotate');
      seen.push(o.rotation);
    }
    expect(seen).toEqual([90, 180, 270, 0]);
  });

  it('toggles flips and invert without touching the rest', () => {
    const o = nextOrientation(nextOrientation(UPRIGHT, 'flip-h'), 'invert');
    expect(o).toEqual({ rotation: 0, flipHorizontal: true, flipVertical: false, invert: true });
    expect(nextOrientation(o, 'flip-h').flipHorizontal).toBe(false);
    expect(nextOrientation(o, 'flip-v').flipVertical).toBe(true);
  });

  it('maps the shortcuts without taking R (brush) or H (hide)', () => {
    expect(orientationKey('i', false)).toBe('invert');
    expect(orientationKey('R', true)).toBe('rotate');
    expect(orientationKey('H', true)).toBe('flip-h');
    expect(orientationKey('V', true)).toBe('flip-v');
    expect(orientationKey('v', false)).toBe('flip-v');
    expect(orientationKey('r', false)).toBeNull();
    expect(orientationKey('h', false)).toBeNull();
  });

  it('describes the state for the overlay', () => {
    expect(orientationText(UPRIGHT)).toBe('');
    const o = { rotation: 90, flipHorizontal: true, flipVertical: false, invert: true };
    expect(orientationText(o)).toBe('Rot 90° · Flip H · Inv');
  });
});
