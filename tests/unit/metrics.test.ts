import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { classificationReport, evaluate, rocAuc } from '../../src/evaluate/metrics';

// Reference values from scikit-learn (scripts/fixtures/make_metrics_fixture.py).
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/metrics-sklearn.json'), 'utf8')) as {
  cases: {
    k: number;
    y_true: number[];
    y_pred: number[];
    probs: number[];
    accuracy: number;
    precision: number[];
    recall: number[];
    f1: number[];
    support: number[];
    macro: number[];
    weighted: number[];
    roc_auc: number;
    confusion: number[][];
  }[];
};

describe('evaluate matches scikit-learn', () => {
  for (const c of fixture.cases) {
    it(`${c.k} classes, ${c.y_true.length} examples`, () => {
      const labels = Array.from({ length: c.k }, (_, i) => `c${i}`);
      const e = evaluate(c.y_true, c.y_pred, labels, c.probs);
      expect(e.accuracy).toBeCloseTo(c.accuracy, 10);
      expect(e.confusion).toEqual(c.confusion);
      e.perClass.forEach((pc, i) => {
        expect(pc.precision).toBeCloseTo(c.precision[i]!, 10);
        expect(pc.recall).toBeCloseTo(c.recall[i]!, 10);
        expect(pc.f1).toBeCloseTo(c.f1[i]!, 10);
        expect(pc.support).toBe(c.support[i]);
      });
      expect([e.macro.precision, e.macro.recall, e.macro.f1].map((x) => x.toFixed(10))).toEqual(
        c.macro.map((x) => x.toFixed(10)),
      );
      expect([e.weighted.precision, e.weighted.recall, e.weighted.f1].map((x) => x.toFixed(10))).toEqual(
        c.weighted.map((x) => x.toFixed(10)),
      );
      expect(e.rocAuc).toBeCloseTo(c.roc_auc, 10);
    });
  }
});

describe('rocAuc', () => {
  it('is 1 for a perfect ranking, 0.5 for all-tied scores, undefined without both classes', () => {
    expect(rocAuc([0.1, 0.2, 0.8, 0.9], [false, false, true, true])).toBe(1);
    expect(rocAuc([0.5, 0.5, 0.5, 0.5], [false, true, false, true])).toBe(0.5);
    expect(rocAuc([0.1, 0.2], [true, true])).toBeUndefined();
  });
});

describe('classificationReport', () => {
  it('lists each class and the averages', () => {
    const r = classificationReport(evaluate([0, 1, 1], [0, 1, 0], ['card', 'billing']));
    expect(r).toMatch(/card\s+0\.5000\s+1\.0000\s+0\.6667\s+1/);
    expect(r).toMatch(/accuracy\s+0\.6667\s+3/);
    expect(r).toMatch(/macro avg/);
  });
});
