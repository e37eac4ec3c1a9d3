import { describe, expect, it } from 'vitest';
import { buildLabelMap, classWeights, encodeLabels } from '../../src/data/labels';
import { classShares, seededRandom, stratifiedSplit } from '../../src/data/split';

// 1,000 labels over three imbalanced classes.
const labels = Array.from({ length: 1000 }, (_, i) => (i % 10 === 0 ? 'churn' : i % 3 === 0 ? 'billing' : 'card'));

describe('stratifiedSplit', () => {
  it('is deterministic for a seed and differs for another seed', () => {
    const a = stratifiedSplit(labels, { train: 0.75, validation: 0.1, test: 0.15 }, 42);
    const b = stratifiedSplit(labels, { train: 0.75, validation: 0.1, test: 0.15 }, 42);
    const c = stratifiedSplit(labels, { train: 0.75, validation: 0.1, test: 0.15 }, 7);
    expect(b).toEqual(a);
    expect(c.test).not.toEqual(a.test);
  });

  it('partitions every index exactly once with the requested sizes and class shares', () => {
    const s = stratifiedSplit(labels, { train: 0.75, validation: 0.1, test: 0.15 }, 1);
    const all = [...s.train, ...s.validation, ...s.test].sort((x, y) => x - y);
    expect(all).toEqual(labels.map((_, i) => i));
    expect([s.train.length, s.validation.length, s.test.length]).toEqual([750, 100, 150]);
    const whole = classShares(labels);
    for (const part of [s.train, s.validation, s.test]) {
      const shares = classShares(part.map((i) => labels[i]!));
      for (const [cls, share] of Object.entries(whole)) expect(Math.abs((shares[cls] ?? 0) - share)).toBeLessThan(0.01);
    }
  });

  it('rejects shares that do not add up to 1', () => {
    expect(() => stratifiedSplit(labels, { a: 0.5, b: 0.6 }, 1)).toThrow(/add up to 1/);
  });

  it('uses a seeded generator with values in [0, 1)', () => {
    const r = seededRandom(3);
    const xs = Array.from({ length: 1000 }, r);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(seededRandom(3)()).toBe(xs[0]);
  });
});

describe('labels', () => {
  it('encodes sorted labels and computes balanced class weights', () => {
    const map = buildLabelMap(['card', 'billing', 'card', 'churn']);
    expect(map.labels).toEqual(['billing', 'card', 'churn']);
    expect(map.id2label).toEqual({ 0: 'billing', 1: 'card', 2: 'churn' });
    const ids = encodeLabels(['card', 'card', 'card', 'churn'], map);
    expect(ids).toEqual([1, 1, 1, 2]);
    expect(classWeights(ids, 3)).toEqual([0, 4 / 9, 4 / 3]);
    expect(() => encodeLabels(['loans'], map)).toThrow(/not in the label map/);
  });
});
