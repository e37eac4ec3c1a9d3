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
    average_precision?: number;
    pr_points?: number;
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
      if (c.k === 2) {
        expect(e.binary!.averagePrecision).toBeCloseTo(c.average_precision!, 10);
        // One point per distinct score, as precision_recall_curve (before our thinning to ~200 points).
        expect(c.pr_points).toBeGreaterThan(200);
        expect(e.binary!.pr.recall.at(-1)).toBe(1);
      } else expect(e.binary).toBeUndefined();
    });
  }
});

describe('binaryCurves', () => {
  it('gives the threshold table a team acts on: precision, recall and the share flagged at each cut', () => {
    const e = evaluate(
      [1, 1, 0, 0, 0],
      [1, 0, 0, 0, 0],
      ['no', 'yes'],
      [0.1, 0.9, 0.6, 0.4, 0.8, 0.2, 0.9, 0.1, 0.95, 0.05],
    );
    const at = (t: number) => e.binary!.thresholds.find((r) => r.threshold === t)!;
    // p(yes) = 0.9, 0.4, 0.2, 0.1, 0.05; positives are the first two.
    expect(at(0.5)).toMatchObject({ precision: 1, recall: 0.5, flagged: 0.2 });
    expect(at(0.15)).toMatchObject({ precision: 2 / 3, recall: 1, flagged: 0.6 });
    expect(e.binary!.averagePrecision).toBe(1);
    expect(e.binary!.positive).toBe('yes');
  });
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
