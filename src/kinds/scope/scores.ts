/**
 * Out-of-scope ("none of the known intents") scores and how they are judged. Every score is
 * oriented the same way: higher = more in scope.
 * - maximum softmax probability (Hendrycks & Gimpel 2017), the baseline;
 * - negative energy, logsumexp of the logits (Liu et al. 2020);
 * - negative Mahalanobis distance of pooled encoder features to the nearest class mean under one
 *   shared covariance fitted on the training split (Lee et al. 2018; Podolskiy et al. 2021 for intents);
 * - cosine similarity to the nearest training text (k-NN with k = 1 on L2-normalised embeddings, Sun et
 *   al. 2022), here in the pretrained encoder's space, where fine-tuning has not pulled unknown intents
 *   towards the known ones; combined with Mahalanobis as a weighted sum of validation z-scores.
 * Judged as open intent classification is: AUROC of in-scope vs out-of-scope, the false-accept rate
 * at 95% in-scope recall (FPR@95TPR), and a threshold chosen for a stated in-scope recall.
 */
import { rocAuc } from '../../evaluate/metrics';
import { wilsonLower } from '../../evaluate/interval';

type Matrix = Float32Array | Float64Array | readonly number[];

/** Maximum softmax probability per row of probabilities [n, k]. */
export function maxSoftmaxScore(probs: Matrix, k: number): Float64Array {
  const n = probs.length / k;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let j = 0; j < k; j++) m = Math.max(m, probs[i * k + j]!);
    out[i] = m;
  }
  return out;
}

/** Negative energy, T * logsumexp(z / T), per row of logits [n, k]. */
export function negativeEnergyScore(logits: Matrix, k: number, temperature = 1): Float64Array {
  const n = logits.length / k;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let j = 0; j < k; j++) m = Math.max(m, logits[i * k + j]! / temperature);
    let s = 0;
    for (let j = 0; j < k; j++) s += Math.exp(logits[i * k + j]! / temperature - m);
    out[i] = temperature * (m + Math.log(s));
  }
  return out;
}

/** Class means and the Cholesky factor of the shared (tied) covariance, as saved with a model. */
export interface MahalanobisModel {
  dim: number;
  /** [classes, dim], row-major. */
  means: ArrayLike<number>;
  /** Lower-triangular L with L L^T = shared covariance + shrinkage * I, row-major [dim, dim]. */
  cholesky: ArrayLike<number>;
  shrinkage: number;
}

/**
 * Fits class means and the pooled within-class covariance of `features` ([n, dim]) for labels
 * `y` in [0, classes). `shrinkage` (relative to the mean variance) keeps the matrix invertible when
 * dim is large next to the examples per class.
 */
export function fitMahalanobis(
  features: Matrix,
  y: readonly number[],
  classes: number,
  dim: number,
  shrinkage = 1e-3,
): MahalanobisModel {
  const n = y.length;
  if (n * dim !== features.length) throw new Error(`features hold ${features.length / dim} rows for ${n} labels`);
  const means = new Float64Array(classes * dim);
  const counts = new Float64Array(classes);
  y.forEach((c, i) => {
    counts[c]! += 1;
    for (let d = 0; d < dim; d++) means[c * dim + d]! += features[i * dim + d]!;
  });
  for (let c = 0; c < classes; c++) for (let d = 0; d < dim; d++) means[c * dim + d]! /= Math.max(counts[c]!, 1);
  const cov = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  y.forEach((c, i) => {
    for (let d = 0; d < dim; d++) centred[d] = features[i * dim + d]! - means[c * dim + d]!;
    for (let a = 0; a < dim; a++) {
      const ca = centred[a]!;
      for (let b = 0; b <= a; b++) cov[a * dim + b]! += ca * centred[b]!;
    }
  });
  let trace = 0;
  for (let a = 0; a < dim; a++) trace += cov[a * dim + a]! / n;
  const ridge = shrinkage * (trace / dim || 1);
  for (let a = 0; a < dim; a++) {
    for (let b = 0; b <= a; b++) cov[a * dim + b] = cov[a * dim + b]! / n + (a === b ? ridge : 0);
  }
  return { dim, means, cholesky: cholesky(cov, dim), shrinkage };
}

/** Cholesky factor of a symmetric positive-definite matrix given by its lower triangle. */
function cholesky(m: Float64Array, dim: number): Float64Array {
  const l = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++) {
    for (let j = 0; j <= i; j++) {
      let s = m[i * dim + j]!;
      for (let k = 0; k < j; k++) s -= l[i * dim + k]! * l[j * dim + k]!;
      if (i === j) {
        if (s <= 0) throw new Error('covariance is not positive definite; raise the shrinkage');
        l[i * dim + i] = Math.sqrt(s);
      } else l[i * dim + j] = s / l[j * dim + j]!;
    }
  }
  return l;
}

/**
 * Negative squared Mahalanobis distance to the nearest class mean, per row of features [n, dim].
 * With L L^T = S, d_c(x) = |L^-1 x - L^-1 mu_c|^2: one triangular solve per row, then a Euclidean
 * distance per class (the whitened means are computed once), so scoring costs O(dim^2 + classes dim)
 * per text rather than O(classes dim^2).
 */
export function negativeMahalanobisScore(m: MahalanobisModel, features: Matrix): Float64Array {
  const { dim } = m;
  const classes = m.means.length / dim;
  const whitened = whitenedMeans(m);
  const n = features.length / dim;
  const out = new Float64Array(n);
  const z = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    forwardSolve(m.cholesky, dim, (a) => features[i * dim + a]!, z);
    let best = Infinity;
    for (let c = 0; c < classes; c++) {
      let dist = 0;
      for (let a = 0; a < dim; a++) dist += (z[a]! - whitened[c * dim + a]!) ** 2;
      best = Math.min(best, dist);
    }
    out[i] = -best;
  }
  return out;
}

const whitenedCache = new WeakMap<MahalanobisModel, Float64Array>();

/** L^-1 mu_c for every class, [classes, dim] (cached per model). */
function whitenedMeans(m: MahalanobisModel): Float64Array {
  let w = whitenedCache.get(m);
  if (!w) {
    const classes = m.means.length / m.dim;
    w = new Float64Array(classes * m.dim);
    const z = new Float64Array(m.dim);
    for (let c = 0; c < classes; c++) {
      forwardSolve(m.cholesky, m.dim, (a) => m.means[c * m.dim + a]!, z);
      w.set(z, c * m.dim);
    }
    whitenedCache.set(m, w);
  }
  return w;
}

/** Solves L z = b for lower-triangular L ([dim, dim], row-major) into `z`. */
function forwardSolve(l: ArrayLike<number>, dim: number, b: (a: number) => number, z: Float64Array): void {
  for (let a = 0; a < dim; a++) {
    let s = b(a);
    for (let k = 0; k < a; k++) s -= l[a * dim + k]! * z[k]!;
    z[a] = s / l[a * dim + a]!;
  }
}

/**
 * Per query row, the cosine similarity to its nearest row of `bank` (both row-major [n, dim] and
 * L2-normalised, so a dot product is the cosine). With `selfOffset`, query i is bank row selfOffset + i
 * (where that row exists) and is not its own neighbour: leave-one-out scores for texts in the bank.
 */
export function nearestNeighbourSimilarity(
  bank: ArrayLike<number>,
  queries: ArrayLike<number>,
  dim: number,
  selfOffset?: number,
): Float64Array {
  const rows = bank.length / dim;
  const n = queries.length / dim;
  if (!Number.isInteger(rows) || !Number.isInteger(n)) throw new Error(`bank or queries are not rows of ${dim}`);
  if (rows === 0) throw new Error('an empty neighbour bank');
  const out = new Float64Array(n).fill(-Infinity);
  const q = new Float32Array(dim);
  for (let i = 0; i < n; i++) {
    for (let d = 0; d < dim; d++) q[d] = queries[i * dim + d]!;
    let best = -Infinity;
    const self = selfOffset === undefined ? -1 : selfOffset + i;
    for (let r = 0; r < rows; r++) {
      if (r === self) continue;
      let dot = 0;
      const o = r * dim;
      for (let d = 0; d < dim; d++) dot += q[d]! * bank[o + d]!;
      if (dot > best) best = dot;
    }
    out[i] = best;
  }
  return out;
}

/** Mean and standard deviation of scores: the scale a score is z-scored with before it is combined. */
export interface Standardization {
  mean: number;
  std: number;
}

export function fitStandardization(scores: ArrayLike<number>): Standardization {
  const n = scores.length;
  if (n < 2) throw new Error('standardising a score needs at least two values');
  let mean = 0;
  for (let i = 0; i < n; i++) mean += scores[i]! / n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (scores[i]! - mean) ** 2 / (n - 1);
  return { mean, std: Math.sqrt(v) || 1 };
}

/** w * z(a) + (1 - w) * z(b), each z-scored with its own standardisation. */
export function combinedScore(
  a: ArrayLike<number>,
  za: Standardization,
  b: ArrayLike<number>,
  zb: Standardization,
  weight: number,
): Float64Array {
  if (a.length !== b.length) throw new Error(`combining ${a.length} scores with ${b.length}`);
  return Float64Array.from(
    { length: a.length },
    (_, i) => (weight * (a[i]! - za.mean)) / za.std + ((1 - weight) * (b[i]! - zb.mean)) / zb.std,
  );
}

export interface OpenSetMetrics {
  /** P(a random in-scope example scores above a random out-of-scope one). */
  auroc: number;
  /** Share of out-of-scope examples accepted at the threshold that keeps 95% of in-scope ones. */
  fprAt95Tpr: number;
}

/**
 * The highest threshold that keeps at least `recall` of the in-scope scores at or above it: examples
 * scoring below it are out of scope.
 */
export function thresholdForRecall(inScopeScores: ArrayLike<number>, recall: number): number {
  if (inScopeScores.length === 0) throw new Error('no in-scope scores to choose a threshold on');
  const sorted = Float64Array.from(inScopeScores).sort();
  // Keep ceil(recall * n) examples: the threshold is the score of the lowest one kept.
  const keep = Math.ceil(recall * sorted.length - 1e-9);
  return sorted[sorted.length - Math.max(keep, 1)]!;
}

/**
 * The threshold a served model keeps: the highest one at which the share of in-scope validation scores kept
 * is at least `recall` with about 95% confidence (Wilson lower bound), so the stated recall holds on new
 * in-scope traffic, not only on average. The plain quantile (thresholdForRecall) keeps `recall` of validation
 * and, by sampling noise alone, less than that on about half of new samples. When even keeping every
 * validation text cannot assure it (a tiny split), the threshold is the lowest validation score.
 */
export function thresholdKeepingRecall(inScopeScores: ArrayLike<number>, recall: number): number {
  const n = inScopeScores.length;
  if (n === 0) throw new Error('no in-scope scores to choose a threshold on');
  const sorted = Float64Array.from(inScopeScores).sort();
  let keep = n;
  while (keep > 1 && wilsonLower(keep - 1, n) >= recall) keep--;
  return sorted[n - keep]!;
}

export function openSetMetrics(inScope: ArrayLike<number>, outOfScope: ArrayLike<number>): OpenSetMetrics {
  const scores = [...Array.from(inScope), ...Array.from(outOfScope)];
  const positive = [...Array.from(inScope, () => true), ...Array.from(outOfScope, () => false)];
  const auroc = rocAuc(scores, positive);
  if (auroc === undefined) throw new Error('open-set metrics need in-scope and out-of-scope examples');
  const t = thresholdForRecall(inScope, 0.95);
  const accepted = Array.from(outOfScope).filter((s) => s >= t).length;
  return { auroc, fprAt95Tpr: accepted / outOfScope.length };
}
