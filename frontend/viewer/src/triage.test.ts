import { describe, expect, test } from 'vitest';
import { HEATMAP_COLOR, heatmapPixels, triageBadge, usableHeatmap, type Triage } from './triage';

const scored = (over: Partial<Triage> = {}): Triage => ({
  scored: true,
  model_id: 'ab'.repeat(32),
  model_name: 'Chest triage',
  score: 0.8712,
  positive_class: 'abnormal',
  computed_at: '2026-12-07T12:00:00Z',
  heatmap: { sop_uid: '1.2.3', frame: 0, rows: 3, columns: 3, rle: [3, 3] },
  ...over,
});

describe('triage badge and heat map', () => {
  test('the badge says the score and the model', () => {
    expect(triageBadge(scored())).toBe('Triage score 0.87 · Chest triage');
    expect(triageBadge(scored({ model_name: '' }))).toBe('Triage score 0.87');
  });

  test('nothing scored: no badge, no heat map', () => {
    const none: Triage = { scored: false, model_id: null, model_name: null, score: null, positive_class: null, computed_at: null, heatmap: null };
    expect(triageBadge(none)).toBe('');
    expect(triageBadge(null)).toBe('');
    expect(usableHeatmap(none)).toBeNull();
    expect(usableHeatmap(scored({ heatmap: { sop_uid: '1', frame: 0, rows: 3, columns: 3, rle: [] } }))).toBeNull();
    expect(usableHeatmap(scored())?.sop_uid).toBe('1.2.3');
  });

  test('its pixels are the map rows in the heat map colour, nothing elsewhere', () => {
    const px = heatmapPixels(usableHeatmap(scored())!);
    const alpha = Array.from({ length: 9 }, (_, i) => px[i * 4 + 3]);
    expect(alpha.map((a) => a > 0)).toEqual([false, false, false, true, true, true, false, false, false]);
    const hex = '#' + [px[12], px[13], px[14]].map((v) => v.toString(16).padStart(2, '0')).join('');
    expect(hex).toBe(HEATMAP_COLOR);
  });
});
