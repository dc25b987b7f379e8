import { describe, expect, test } from 'vitest';
import { loadOpacity, saveOpacity } from './prefs';

function memoryStorage(): Pick<Storage, 'getItem' | 'setItem'> & { items: Map<string, string> } {
  const items = new Map<string, string>();
  return {
    items,
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => void items.set(key, value),
  };
}

describe('annotation opacity preference', () => {
  test('what is saved is loaded', () => {
    const storage = memoryStorage();
    expect(loadOpacity(storage)).toBeNull();
    saveOpacity(storage, 0.35);
    expect(loadOpacity(storage)).toBe(0.35);
    saveOpacity(storage, 0);
    expect(loadOpacity(storage)).toBe(0);
  });

  test('a value out of range is clamped; garbage is ignored', () => {
    const storage = memoryStorage();
    saveOpacity(storage, 1);
    const [key] = storage.items.keys();
    for (const [raw, expected] of [
      ['2', 1],
      ['-0.5', 0],
      ['abc', null],
      ['', null],
      ['NaN', null],
    ] as const) {
      storage.items.set(key, raw);
      expect(loadOpacity(storage)).toBe(expected);
    }
  });

  test('storage that throws or is missing loses the preference, not the page', () => {
    const refusing = {
      getItem: () => {
        throw new Error('SecurityError');
      },
      setItem: () => {
        throw new Error('QuotaExceededError');
      },
    };
    expect(loadOpacity(refusing)).toBeNull();
    expect(() => saveOpacity(refusing, 0.5)).not.toThrow();
    expect(loadOpacity(null)).toBeNull();
  });
});
