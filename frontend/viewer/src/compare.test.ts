import { describe, expect, it, vi } from 'vitest';

vi.mock('@cornerstonejs/core', () => ({ Enums: {}, metaData: { get: () => null } }));
vi.mock('./viewer', () => ({ framesOf: () => [] }));

const { bestPrior } = await import('./compare');

const s = (id: string, modality: string, instance_count: number) => ({ id, modality, number: 1, description: '', instance_count, thumbnail_url: null });

describe('bestPrior', () => {
  it('prefers the same modality, then the most images', () => {
    expect(bestPrior('CT', [s('a', 'MR', 90), s('b', 'CT', 10), s('c', 'CT', 40)])?.id).toBe('c');
    expect(bestPrior('CT', [s('a', 'MR', 90), s('b', 'PT', 100)])?.id).toBe('b');
    expect(bestPrior('CT', [])).toBeNull();
  });
});
