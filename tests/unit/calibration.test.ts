import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/data/split';
import { evaluate, evaluationMetrics } from '../../src/evaluate/metrics';
import {
  brierScore,
  expectedCalibrationError,
  fitTemperature,
  logitsOfProbs,
  nllAtTemperature,
  reliabilityBins,
  softmaxWithTemperature,
} from '../../src/evaluate/calibration';
import {
  fitMahalanobis,
  maxSoftmaxScore,
  negativeEnergyScore,
  negativeMahalanobisScore,
  openSetMetrics,
  thresholdForRecall,
  thresholdKeepingRecall,
} from '../../src/kinds/scope/scores';
import { wilsonLower } from '../../src/evaluate/interval';
import { binaryProbs, calibrationMeasures } from '../../src/kinds/tabular/train';

/** n examples over k classes whose labels are drawn from softmax(z) while the model reports softmax(z * scale). */
function overconfident(n: number, k: number, scale: number, seed = 7) {
  const rand = seededRandom(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const z = Float64Array.from({ length: n * k }, () => 1.5 * gauss());
  const truth = softmaxWithTemperature(z, k, 1);
  const y = Array.from({ length: n }, (_, i) => {
    let u = rand();
    for (let j = 0; j < k; j++) if ((u -= truth[i * k + j]!) <= 0) return j;
    return k - 1;
  });
  return { logits: z.map((v) => v * scale), y };
}

describe('temperature scaling', () => {
  it('softmax with T = 1 is the softmax; a larger T flattens it; log p gives back the same probabilities', () => {
    const p = softmaxWithTemperature([1, 2, 3], 3, 1);
    expect(Array.from(p).map((v) => +v.toFixed(6))).toEqual([0.090031, 0.244728, 0.665241]);
    expect(Math.max(...softmaxWithTemperature([1, 2, 3], 3, 4))).toBeLessThan(0.45);
    const back = softmaxWithTemperature(logitsOfProbs(p), 3, 1);
    back.forEach((v, i) => expect(v).toBeCloseTo(p[i]!, 12));
  });

  it('recovers the temperature of a model that is overconfident by a known factor', () => {
    const { logits, y } = overconfident(20_000, 5, 3);
    const t = fitTemperature(logits, y, 5);
    expect(t).toBeGreaterThan(2.8);
    expect(t).toBeLessThan(3.2);
    // It is the NLL minimum: both neighbours are worse.
    const nll = nllAtTemperature(logits, y, 5, t);
    expect(nllAtTemperature(logits, y, 5, t * 0.95)).toBeGreaterThan(nll);
    expect(nllAtTemperature(logits, y, 5, t * 1.05)).toBeGreaterThan(nll);
  });

  it('lowers the expected calibration error and the Brier score of an overconfident model', () => {
    const fit = overconfident(20_000, 5, 3, 1);
    const t = fitTemperature(fit.logits, fit.y, 5);
    const held = overconfident(20_000, 5, 3, 2);
    const before = softmaxWithTemperature(held.logits, 5, 1);
    const after = softmaxWithTemperature(held.logits, 5, t);
    expect(expectedCalibrationError(before, held.y, 5)).toBeGreaterThan(0.1);
    expect(expectedCalibrationError(after, held.y, 5)).toBeLessThan(0.02);
    expect(brierScore(after, held.y, 5)).toBeLessThan(brierScore(before, held.y, 5));
  });
});

describe('binary (record model) calibration', () => {
  it('takes p(positive) into label-map order, and a temperature fitted on held-out rows lowers the ECE of others', () => {
    expect(Array.from(binaryProbs([0.25, 1], 0))).toEqual([0.25, 0.75, 1, 0]);
    expect(Array.from(binaryProbs([0.25, 1], 1))).toEqual([0.75, 0.25, 0, 1]);
    // An overconfident binary learner (3x the true logit), its positive class at index 1.
    const fit = overconfident(20_000, 2, 3, 3);
    const held = overconfident(20_000, 2, 3, 4);
    const p = (d: typeof fit) =>
      binaryProbs(
        Array.from(softmaxWithTemperature(d.logits, 2, 1)).filter((_, i) => i % 2 === 1),
        1,
      );
    const t = fitTemperature(logitsOfProbs(p(fit)), fit.y, 2);
    const m = calibrationMeasures(p(held), held.y, t);
    expect(t).toBeGreaterThan(2.7);
    expect(m.eceBefore).toBeGreaterThan(0.05);
    expect(m.eceAfter).toBeLessThan(0.02);
    expect(m.brierAfter).toBeLessThan(m.brierBefore);
    // The decision at 0.5 does not move: p > 0.5 before iff after.
    const after = softmaxWithTemperature(logitsOfProbs(p(held)), 2, t);
    p(held).forEach((v, i) => expect(v > 0.5).toBe(after[i]! > 0.5));
  });
});

describe('calibration measures', () => {
  it('ECE is the count-weighted gap between accuracy and confidence per bin', () => {
    // Two examples at confidence 0.9 (one right), two at 0.6 (both right).
    const probs = [0.9, 0.1, 0.9, 0.1, 0.6, 0.4, 0.4, 0.6];
    const y = [0, 1, 0, 1];
    const bins = reliabilityBins(probs, y, 2, 10).filter((b) => b.count);
    expect(bins.map((b) => [b.count, +b.confidence.toFixed(6), b.accuracy])).toEqual([
      [2, 0.6, 1],
      [2, 0.9, 0.5],
    ]);
    expect(expectedCalibrationError(probs, y, 2, 10)).toBeCloseTo(0.5 * 0.4 + 0.5 * 0.4, 12);
  });

  it('every evaluation with scores reports them, and they are logged as <split>_ece and <split>_brier', () => {
    const probs = [0.9, 0.1, 0.9, 0.1, 0.6, 0.4, 0.4, 0.6];
    const e = evaluate([0, 1, 0, 1], [0, 0, 0, 1], ['a', 'b'], probs);
    // 15 bins put 0.6 and 0.9 in different bins, as 10 did above: ECE 0.4.
    expect(e.calibration!.ece).toBeCloseTo(0.4, 12);
    // (0.01 + 0.01) + (0.81 + 0.81) + (0.16 + 0.16) + (0.16 + 0.16), over 4 examples.
    expect(e.calibration!.brier).toBeCloseTo(2.28 / 4, 12);
    expect(evaluationMetrics(e, 'test_')).toMatchObject({
      test_ece: e.calibration!.ece,
      test_brier: e.calibration!.brier,
    });
    expect(evaluate([0, 1], [0, 1], ['a', 'b']).calibration).toBeUndefined();
  });

  it('Brier score sums squared errors over the classes', () => {
    expect(brierScore([1, 0, 0, 1], [0, 1], 2)).toBe(0);
    expect(brierScore([0.5, 0.5], [0], 2)).toBeCloseTo(0.5, 12);
    expect(brierScore([0, 1], [0], 2)).toBe(2);
  });
});

describe('out-of-scope scores', () => {
  it('MSP and negative energy are higher for a peaked row than a flat one', () => {
    expect(Array.from(maxSoftmaxScore([0.9, 0.1, 0.5, 0.5], 2))).toEqual([0.9, 0.5]);
    const e = negativeEnergyScore([5, 0, 0, 0.1, 0, 0], 3);
    expect(e[0]).toBeCloseTo(Math.log(Math.exp(5) + 2), 10);
    expect(e[0]!).toBeGreaterThan(e[1]!);
  });

  it('Mahalanobis distance uses the shared covariance: a step along a low-variance axis costs more', () => {
    // Class 0 around (0, 0), class 1 around (10, 0); x varies with sd 2, y with sd 0.5.
    const feats: number[] = [];
    const y: number[] = [];
    for (const [cx, cls] of [
      [0, 0],
      [10, 1],
    ] as const)
      for (const dx of [-2, 2])
        for (const dy of [-0.5, 0.5]) {
          feats.push(cx + dx, dy);
          y.push(cls);
        }
    const m = fitMahalanobis(feats, y, 2, 2, 0);
    expect(Array.from(m.means)).toEqual([0, 0, 10, 0]);
    const s = negativeMahalanobisScore(m, [2, 0, 0, 1, 5, 0]);
    // Distance^2 = (dx/2)^2 + (dy/0.5)^2 to the nearest mean.
    expect(s[0]).toBeCloseTo(-1, 10);
    expect(s[1]).toBeCloseTo(-4, 10);
    expect(s[2]).toBeCloseTo(-6.25, 10);
  });

  it('Mahalanobis distance with correlated features matches the explicit inverse of the covariance', () => {
    // One class, features along the diagonal: x and y strongly correlated.
    const pts = [
      [1, 1.2],
      [2, 1.8],
      [3, 3.1],
      [4, 4.2],
      [5, 4.7],
    ];
    const m = fitMahalanobis(pts.flat(), [0, 0, 0, 0, 0], 1, 2, 0);
    const [mx, my] = [3, 3];
    const c = { xx: 0, xy: 0, yy: 0 };
    for (const [x, y] of pts) {
      c.xx += (x! - mx) ** 2 / 5;
      c.xy += ((x! - mx) * (y! - my)) / 5;
      c.yy += (y! - my) ** 2 / 5;
    }
    const det = c.xx * c.yy - c.xy ** 2;
    const d2 = (dx: number, dy: number) => (c.yy * dx * dx - 2 * c.xy * dx * dy + c.xx * dy * dy) / det;
    const s = negativeMahalanobisScore(m, [4, 4, 4, 2]);
    expect(s[0]).toBeCloseTo(-d2(1, 1), 9); // along the correlation: close
    expect(s[1]).toBeCloseTo(-d2(1, -1), 9); // against it: far
    expect(s[1]!).toBeLessThan(s[0]! - 10);
  });

  it("a served threshold keeps the stated recall on new data with 95% confidence; validation's quantile only on average", () => {
    // Wilson's one-sided 95% bound, worked by hand for 960 of 1000: p = 0.96, z = 1.6449.
    const z = 1.6448536269514722;
    const hand = (0.96 + z ** 2 / 2000 - z * Math.sqrt((0.96 * 0.04) / 1000 + z ** 2 / 4e6)) / (1 + z ** 2 / 1000);
    expect(wilsonLower(960, 1000)).toBeCloseTo(hand, 12);
    expect(wilsonLower(960, 1000)).toBeGreaterThan(0.948);
    expect(wilsonLower(960, 1000)).toBeLessThan(0.96);
    // Uniform in-scope scores: a threshold t keeps exactly 1 - t of all future in-scope traffic.
    const rand = seededRandom(11);
    let bounded = 0;
    let plain = 0;
    const draws = 400;
    for (let d = 0; d < draws; d++) {
      const val = Array.from({ length: 1000 }, rand);
      if (1 - thresholdKeepingRecall(val, 0.95) >= 0.95) bounded++;
      if (1 - thresholdForRecall(val, 0.95) >= 0.95) plain++;
    }
    expect(bounded / draws).toBeGreaterThan(0.92); // 95% nominal, Monte Carlo noise ~1%
    expect(plain / draws).toBeLessThan(0.7); // about half the time below the stated recall
    // Too few examples to assure anything: everything is kept.
    expect(thresholdKeepingRecall([3, 1, 2], 0.95)).toBe(1);
  });

  it('thresholds keep the stated in-scope recall; AUROC and FPR@95TPR as open intent papers report them', () => {
    const inScope = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
    expect(thresholdForRecall(inScope, 0.95)).toBe(6); // keeps 6..100 = 95 examples
    expect(thresholdForRecall(inScope, 1)).toBe(1);
    const outOfScope = [0, 0.5, 3, 7, 50];
    const m = openSetMetrics(inScope, outOfScope);
    expect(m.fprAt95Tpr).toBeCloseTo(2 / 5, 12); // 7 and 50 are accepted
    // Pairs (in, out) with in > out, ties counting half: 100 + 100 (0, 0.5), 97 + 0.5 (3), 93 + 0.5 (7), 50 + 0.5 (50).
    expect(m.auroc).toBeCloseTo((200 + 97.5 + 93.5 + 50.5) / 500, 12);
  });
});
