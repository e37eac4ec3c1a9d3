/**
 * Rapid model comparison (PyCaret's compare_models, with the folds and metrics computed here): pure
 * functions from out-of-fold probabilities to a table of mean +- sd per metric.
 */
import { evaluate } from '../../evaluate/metrics';
import { stratifiedSplit } from '../../data/split';
import type { CandidateResult, LearnerCandidate } from './learners';

/** The default candidates: one linear model, bagged trees, boosted trees. */
export const DEFAULT_CANDIDATES: readonly LearnerCandidate[] = [
  { name: 'logistic_regression', estimator: 'logistic_regression', params: { C: 1.0 } },
  {
    name: 'random_forest',
    estimator: 'random_forest',
    params: { n_estimators: 300, min_samples_leaf: 5, max_features: 'sqrt' },
  },
  {
    name: 'lightgbm',
    estimator: 'lightgbm',
    params: {
      n_estimators: 300,
      learning_rate: 0.03,
      num_leaves: 15,
      min_child_samples: 20,
      subsample: 0.8,
      subsample_freq: 1,
      colsample_bytree: 0.8,
    },
  },
];

export const COMPARE_METRICS = ['roc_auc', 'f1', 'recall', 'precision', 'accuracy'] as const;
export type CompareMetric = (typeof COMPARE_METRICS)[number] | 'fit_seconds';

/** Fold index (0..k-1) per row, stratified by label and deterministic for a seed. */
export function stratifiedFolds(labels: readonly string[], k: number, seed: number): number[] {
  if (!Number.isInteger(k) || k < 2) throw new Error(`folds must be a whole number >= 2, got ${k}`);
  const shares = Object.fromEntries(Array.from({ length: k }, (_, f) => [`f${f}`, 1 / k])) as Record<string, number>;
  const parts = stratifiedSplit(labels, shares, seed);
  const folds = new Array<number>(labels.length).fill(-1);
  Object.values(parts).forEach((idx, f) => idx.forEach((i) => (folds[i] = f)));
  return folds;
}

/** Positive-class metrics at the 0.5 threshold, ROC AUC from the probabilities (y: 1 = positive). */
export function binaryMetrics(
  y: readonly number[],
  p: readonly number[],
): Record<(typeof COMPARE_METRICS)[number], number> {
  const probs = new Float32Array(y.length * 2);
  p.forEach((v, i) => {
    probs[2 * i] = 1 - v;
    probs[2 * i + 1] = v;
  });
  const e = evaluate(
    y,
    p.map((v) => (v >= 0.5 ? 1 : 0)),
    ['negative', 'positive'],
    probs,
    1,
  );
  const pos = e.perClass[1]!;
  return { roc_auc: e.rocAuc ?? NaN, f1: pos.f1, recall: pos.recall, precision: pos.precision, accuracy: e.accuracy };
}

export interface CandidateSummary {
  name: string;
  estimator: string;
  params: LearnerCandidate['params'];
  folds: Record<CompareMetric, number>[];
  mean: Record<CompareMetric, number>;
  sd: Record<CompareMetric, number>;
}

const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Sample standard deviation (n - 1), as PyCaret and scikit-learn's cross_validate users report it. */
const sdOf = (xs: number[]) => {
  if (xs.length < 2) return 0;
  const m = meanOf(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
};

/** Per-fold metrics of one candidate's out-of-fold probabilities, and their mean and sd. */
export function summarise(c: CandidateResult, y: readonly number[], folds: readonly number[]): CandidateSummary {
  const k = Math.max(...folds) + 1;
  const perFold = Array.from({ length: k }, (_, f) => {
    const idx = folds.flatMap((fi, i) => (fi === f ? [i] : []));
    return {
      ...binaryMetrics(
        idx.map((i) => y[i]!),
        idx.map((i) => c.oof_proba[i]!),
      ),
      fit_seconds: c.fold_fit_seconds[f] ?? NaN,
    };
  });
  const keys = [...COMPARE_METRICS, 'fit_seconds'] as CompareMetric[];
  return {
    name: c.name,
    estimator: c.estimator,
    params: c.params,
    folds: perFold,
    mean: Object.fromEntries(keys.map((m) => [m, meanOf(perFold.map((f) => f[m]))])) as Record<CompareMetric, number>,
    sd: Object.fromEntries(keys.map((m) => [m, sdOf(perFold.map((f) => f[m]))])) as Record<CompareMetric, number>,
  };
}

/** The comparison table (best ROC AUC first): model, then "mean ± sd" per metric. */
export function comparisonTable(summaries: readonly CandidateSummary[]): { columns: string[]; rows: string[][] } {
  const sorted = [...summaries].sort((a, b) => b.mean.roc_auc - a.mean.roc_auc);
  const cell = (s: CandidateSummary, m: CompareMetric) =>
    m === 'fit_seconds'
      ? `${s.mean[m].toFixed(2)} ± ${s.sd[m].toFixed(2)}`
      : `${s.mean[m].toFixed(4)} ± ${s.sd[m].toFixed(4)}`;
  return {
    columns: ['model', 'AUC', 'F1', 'recall', 'precision', 'accuracy', 'fit time (s)'],
    rows: sorted.map((s) => [s.name, ...[...COMPARE_METRICS, 'fit_seconds' as const].map((m) => cell(s, m))]),
  };
}
