/**
 * Classification metrics (pure): accuracy, per-class and macro/weighted precision, recall and F1,
 * confusion matrix, ROC AUC (binary, and one-vs-rest macro for multi-class), calibration (ECE, Brier)
 * when there are scores, and a text report in scikit-learn's layout so numbers can be compared side by side.
 */
import { encodeLabels, type LabelMap } from '../data/labels';
import { argmaxRows } from '../estimators/logreg';
import { brierScore, eceOfBins, reliabilityBins, type ReliabilityBin } from './calibration';

export interface ClassMetrics {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Evaluation {
  accuracy: number;
  macro: { precision: number; recall: number; f1: number };
  weighted: { precision: number; recall: number; f1: number };
  perClass: ClassMetrics[];
  /** confusion[true][predicted] */
  confusion: number[][];
  /** Binary: AUC of the positive class; multi-class: one-vs-rest macro AUC. Undefined without scores. */
  rocAuc?: number;
  /** Two classes with scores: the positive class's precision-recall curve and threshold table. */
  binary?: BinaryCurves;
  /** With scores: how well the probabilities are calibrated (ECE over 15 confidence bins, Brier score). */
  calibration?: { ece: number; brier: number; bins: ReliabilityBin[] };
  labels: string[];
  n: number;
}

export interface ThresholdRow {
  threshold: number;
  precision: number;
  recall: number;
  f1: number;
  /** Share of examples at or above the threshold (what a team would have to act on). */
  flagged: number;
}

export interface BinaryCurves {
  positive: string;
  /** Precision-recall points by decreasing threshold (at most ~200, evenly spread over the ranks). */
  pr: { precision: number[]; recall: number[]; threshold: number[] };
  /** scikit-learn's average precision: sum over ranks of (R_n - R_{n-1}) * P_n. */
  averagePrecision: number;
  thresholds: ThresholdRow[];
}

/**
 * Precision-recall curve, average precision and a threshold table of the positive class (pure).
 * Ties in score form one point, as in scikit-learn's precision_recall_curve.
 */
export function binaryCurves(
  scores: readonly number[],
  positive: readonly boolean[],
  positiveLabel: string,
): BinaryCurves | undefined {
  const nPos = positive.filter(Boolean).length;
  if (nPos === 0 || nPos === positive.length) return undefined;
  const order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  const points: { p: number; r: number; t: number }[] = [];
  let tp = 0;
  let fp = 0;
  let ap = 0;
  let prevRecall = 0;
  for (let i = 0; i < order.length; i++) {
    if (positive[order[i]!]) tp++;
    else fp++;
    const last = i + 1 === order.length || scores[order[i + 1]!]! !== scores[order[i]!]!;
    if (!last) continue;
    const precision = tp / (tp + fp);
    const recall = tp / nPos;
    ap += (recall - prevRecall) * precision;
    prevRecall = recall;
    points.push({ p: precision, r: recall, t: scores[order[i]!]! });
  }
  const step = Math.max(1, Math.ceil(points.length / 200));
  const kept = points.filter((_, i) => i % step === 0 || i === points.length - 1);
  const thresholds = Array.from({ length: 19 }, (_, i) => Number(((i + 1) * 0.05).toFixed(2))).map((threshold) => {
    let t = 0;
    let flagged = 0;
    scores.forEach((sc, i) => {
      if (sc >= threshold) {
        flagged++;
        if (positive[i]) t++;
      }
    });
    const precision = safeDiv(t, flagged);
    const recall = t / nPos;
    return {
      threshold,
      precision,
      recall,
      f1: safeDiv(2 * precision * recall, precision + recall),
      flagged: flagged / scores.length,
    };
  });
  return {
    positive: positiveLabel,
    pr: { precision: kept.map((x) => x.p), recall: kept.map((x) => x.r), threshold: kept.map((x) => x.t) },
    averagePrecision: ap,
    thresholds,
  };
}

export function confusionMatrix(yTrue: readonly number[], yPred: readonly number[], k: number): number[][] {
  const m = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  yTrue.forEach((t, i) => (m[t]![yPred[i]!]! += 1));
  return m;
}

/**
 * Area under the ROC curve via the Mann-Whitney U statistic, with tied scores counted half:
 * the probability that a random positive scores above a random negative.
 */
export function rocAuc(scores: readonly number[], positive: readonly boolean[]): number | undefined {
  const idx = scores.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(scores.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1]![0] === idx[i]![0]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[idx[k]![1]] = avg;
    i = j + 1;
  }
  const nPos = positive.filter(Boolean).length;
  const nNeg = positive.length - nPos;
  if (nPos === 0 || nNeg === 0) return undefined;
  const rankSum = positive.reduce((s, p, i) => (p ? s + ranks[i]! : s), 0);
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

const safeDiv = (a: number, b: number) => (b === 0 ? 0 : a / b);

/**
 * Evaluates predictions. `probs` (row-major [n, k]) enables ROC AUC; for two classes the AUC is
 * that of `positiveIndex` (default 1).
 */
export function evaluate(
  yTrue: readonly number[],
  yPred: readonly number[],
  labels: readonly string[],
  probs?: Float32Array | number[],
  positiveIndex = 1,
): Evaluation {
  const k = labels.length;
  const n = yTrue.length;
  const confusion = confusionMatrix(yTrue, yPred, k);
  const perClass: ClassMetrics[] = labels.map((label, c) => {
    const tp = confusion[c]![c]!;
    const support = confusion[c]!.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[c]!, 0);
    const precision = safeDiv(tp, predicted);
    const recall = safeDiv(tp, support);
    return { label, precision, recall, f1: safeDiv(2 * precision * recall, precision + recall), support };
  });
  const avg = (key: 'precision' | 'recall' | 'f1', weighted: boolean) =>
    weighted
      ? safeDiv(
          perClass.reduce((s, c) => s + c[key] * c.support, 0),
          n,
        )
      : perClass.reduce((s, c) => s + c[key], 0) / k;
  let auc: number | undefined;
  let binary: BinaryCurves | undefined;
  if (probs) {
    const col = (c: number) => yTrue.map((_, i) => probs[i * k + c]!);
    if (k === 2) {
      const positives = yTrue.map((t) => t === positiveIndex);
      auc = rocAuc(col(positiveIndex), positives);
      binary = binaryCurves(col(positiveIndex), positives, labels[positiveIndex]!);
    } else {
      const aucs = labels
        .map((_, c) =>
          rocAuc(
            col(c),
            yTrue.map((t) => t === c),
          ),
        )
        .filter((a): a is number => a !== undefined);
      auc = aucs.length ? aucs.reduce((a, b) => a + b, 0) / aucs.length : undefined;
    }
  }
  const calibration = probs && n > 0 ? calibrationOf(probs, yTrue, k) : undefined;
  return {
    accuracy: safeDiv(yTrue.filter((t, i) => t === yPred[i]).length, n),
    macro: { precision: avg('precision', false), recall: avg('recall', false), f1: avg('f1', false) },
    weighted: { precision: avg('precision', true), recall: avg('recall', true), f1: avg('f1', true) },
    perClass,
    confusion,
    rocAuc: auc,
    ...(binary ? { binary } : {}),
    ...(calibration ? { calibration } : {}),
    labels: [...labels],
    n,
  };
}

/** scikit-learn style classification report. */
export function classificationReport(e: Evaluation): string {
  const w = Math.max(12, ...e.labels.map((l) => l.length));
  const f = (x: number) => x.toFixed(4).padStart(10);
  const lines = [
    `${''.padStart(w)} ${['precision', 'recall', 'f1-score', 'support'].map((h) => h.padStart(10)).join('')}`,
    '',
  ];
  for (const c of e.perClass)
    lines.push(`${c.label.padStart(w)} ${f(c.precision)}${f(c.recall)}${f(c.f1)}${String(c.support).padStart(10)}`);
  lines.push('', `${'accuracy'.padStart(w)} ${''.padStart(20)}${f(e.accuracy)}${String(e.n).padStart(10)}`);
  lines.push(
    `${'macro avg'.padStart(w)} ${f(e.macro.precision)}${f(e.macro.recall)}${f(e.macro.f1)}${String(e.n).padStart(10)}`,
  );
  lines.push(
    `${'weighted avg'.padStart(w)} ` +
      `${f(e.weighted.precision)}${f(e.weighted.recall)}${f(e.weighted.f1)}${String(e.n).padStart(10)}`,
  );
  if (e.rocAuc !== undefined) lines.push(`${'roc auc'.padStart(w)} ${''.padStart(20)}${f(e.rocAuc)}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Mean cross-entropy of class probabilities (row-major [n, k]) against true class ids, each example
 * weighted by its class weight when given (as the training loss is), so train and validation compare.
 */
export function crossEntropy(
  probs: Float32Array | readonly number[],
  yTrue: readonly number[],
  k: number,
  classWeights?: readonly number[],
): number {
  let sum = 0;
  let weight = 0;
  yTrue.forEach((y, i) => {
    const w = classWeights?.[y] ?? 1;
    sum -= w * Math.log(Math.max(probs[i * k + y]!, 1e-12));
    weight += w;
  });
  return weight ? sum / weight : Number.NaN;
}

/** Flat metric dict for MLflow, with a prefix such as `test_`. */
export function evaluationMetrics(e: Evaluation, prefix: string): Record<string, number> {
  return {
    [`${prefix}accuracy`]: e.accuracy,
    [`${prefix}macro_precision`]: e.macro.precision,
    [`${prefix}macro_recall`]: e.macro.recall,
    [`${prefix}macro_f1`]: e.macro.f1,
    [`${prefix}weighted_f1`]: e.weighted.f1,
    ...(e.rocAuc !== undefined ? { [`${prefix}roc_auc`]: e.rocAuc } : {}),
    ...(e.calibration ? { [`${prefix}ece`]: e.calibration.ece, [`${prefix}brier`]: e.calibration.brier } : {}),
  };
}

function calibrationOf(probs: Float32Array | number[], yTrue: readonly number[], k: number) {
  const bins = reliabilityBins(probs, yTrue, k, 15);
  return { ece: eceOfBins(bins), brier: brierScore(probs, yTrue, k), bins };
}

/** Evaluates class probabilities (row-major [n, k]) against labelled examples, argmax as the prediction. */
export function evaluateProbs(
  probs: Float32Array,
  examples: readonly { label: string }[],
  labelMap: LabelMap,
  positiveLabel?: string,
): Evaluation {
  const yTrue = encodeLabels(
    examples.map((e) => e.label),
    labelMap,
  );
  return evaluate(
    yTrue,
    argmaxRows(probs, labelMap.labels.length),
    labelMap.labels,
    probs,
    positiveLabel !== undefined ? labelMap.label2id[positiveLabel] : undefined,
  );
}
