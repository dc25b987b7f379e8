import { afterEach, describe, expect, test } from 'vitest';
import { humanize, kindLabel, setChoiceLabels, statusLabel } from './labels';

afterEach(() => setChoiceLabels(null));

describe('labels people read instead of codes (issue 12)', () => {
  test("use the server's labels", () => {
    setChoiceLabels({ status: { in_progress: 'In progress' }, kind: { classification_image: 'Image classification' } });
    expect(statusLabel('in_progress')).toBe('In progress');
    expect(kindLabel('classification_image')).toBe('Image classification');
  });

  test('make a code without a label readable, never show underscores', () => {
    setChoiceLabels({ status: {}, kind: {} });
    expect(statusLabel('in_progress')).toBe('In progress');
    expect(kindLabel('classification_series')).toBe('Classification series');
    expect(humanize('')).toBe('');
  });
});
