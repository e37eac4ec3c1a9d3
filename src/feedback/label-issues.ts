/**
 * Likely label errors in labelled data, by confident learning (Northcutt et al., 2021; cleanlab's
 * `find_label_issues(filter_by='confident_learning')`): from out-of-fold probabilities, a class's threshold is
 * the mean probability the model gives that class on the examples labelled with it; an example whose confident
 * class (the most probable class at or above its threshold) differs from its given label, and whose most probable
 * class differs too, is a likely error. Ranked by self-confidence (the probability of the given label), lowest
 * first. `tests/integration/label-issues.test.ts` checks the result equals cleanlab's on the same probabilities.
 */
import { classWeights, encodeLabels, type LabelMap } from '../data/labels';
import { matchKey } from '../data/leakage';
import { seededRandom, shuffled } from '../data/split';
import type { Example } from '../data/tasks';
import { DEFAULT_BASELINE, predictBaseline, trainBaseline, type BaselineConfig } from '../kinds/tfidf-logreg/model';
import { sha256Hex, type Candidate } from './select';
import { OUT_OF_SCOPE, type ReviewedRow } from './types';

export interface LabelIssue {
  index: number;
  given: number;
  /** The class the model is confident in instead. */
  suggested: number;
  /** Probability of the given label (lower: more likely an error). */
  selfConfidence: number;
}

/** Confident-learning label issues (pure). `probs` is row-major [n, k], out of sample for each row. */
export function confidentLearningIssues(
  labels: readonly number[],
  probs: ArrayLike<number>,
  k: number,
): { issues: LabelIssue[]; thresholds: number[] } {
  const n = labels.length;
  if (probs.length !== n * k) throw new Error(`probabilities hold ${probs.length} values, expected ${n} x ${k}`);
  const sums = new Array<number>(k).fill(0);
  const counts = new Array<number>(k).fill(0);
  labels.forEach((y, i) => {
    sums[y]! += probs[i * k + y]!;
    counts[y]!++;
  });
  const thresholds = sums.map((s, j) => (counts[j] ? s / counts[j]! : 1));
  const issues: LabelIssue[] = [];
  for (let i = 0; i < n; i++) {
    let argmax = 0;
    let confident = -1;
    for (let j = 0; j < k; j++) {
      const p = probs[i * k + j]!;
      if (p > probs[i * k + argmax]!) argmax = j;
      // cleanlab compares with a 1e-6 slack so that a probability equal to its threshold counts.
      if (p >= thresholds[j]! - 1e-6 && (confident < 0 || p > probs[i * k + confident]!)) confident = j;
    }
    const given = labels[i]!;
    if (confident >= 0 && confident !== given && argmax !== given)
      issues.push({ index: i, given, suggested: confident, selfConfidence: probs[i * k + given]! });
  }
  issues.sort((a, b) => a.selfConfidence - b.selfConfidence || a.index - b.index);
  return { issues, thresholds };
}

/**
 * Out-of-fold probabilities of a TF-IDF + logistic-regression model (the cheap, honest view: every row is scored
 * by a model that did not see it), over `folds` folds stratified by label. Row-major [n, k].
 */
export function outOfFoldProbabilities(
  examples: readonly Example[],
  labelMap: LabelMap,
  o: { folds?: number; seed?: number; config?: BaselineConfig } = {},
): Float32Array {
  const folds = o.folds ?? 5;
  const k = labelMap.labels.length;
  const y = encodeLabels(
    examples.map((e) => e.label),
    labelMap,
  );
  // Stratified: each label's rows dealt to the folds in a seeded order.
  const fold = new Array<number>(examples.length);
  const random = seededRandom(o.seed ?? 0);
  for (let c = 0; c < k; c++) {
    const rows = shuffled(
      y.flatMap((v, i) => (v === c ? [i] : [])),
      random,
    );
    rows.forEach((r, i) => (fold[r] = i % folds));
  }
  const out = new Float32Array(examples.length * k);
  for (let f = 0; f < folds; f++) {
    const train = examples.filter((_, i) => fold[i] !== f);
    const held = examples.flatMap((e, i) => (fold[i] === f ? [{ e, i }] : []));
    if (held.length === 0) continue;
    const weights = classWeights(
      y.filter((_, i) => fold[i] !== f),
      k,
    );
    const model = trainBaseline(train, labelMap, weights, o.config ?? DEFAULT_BASELINE);
    const { probs } = predictBaseline(
      model,
      held.map((h) => h.e.text),
    );
    held.forEach((h, r) => out.set(probs.subarray(r * k, (r + 1) * k), h.i * k));
  }
  return out;
}

/** A label issue as a review candidate: the text, the label the data gives it and the class the model suggests. */
export function issueCandidate(
  e: Example,
  issue: LabelIssue,
  probs: ArrayLike<number>,
  labels: readonly string[],
  version: string,
  now: Date,
): Candidate {
  const k = labels.length;
  return {
    text: e.text,
    textSha256: sha256Hex(e.text),
    servedAt: now.toISOString(),
    version,
    predicted: labels[issue.given]!,
    topLabel: labels[issue.suggested]!,
    inScope: true,
    confidence: issue.selfConfidence,
    margin: probs[issue.index * k + issue.suggested]! - issue.selfConfidence,
  };
}

/**
 * Applies reviewed corrections to labelled rows (pure): a row whose text a reviewer labelled again takes that label
 * (the latest review wins), or leaves the data when the reviewer said out_of_scope.
 */
export function applyCorrections(
  rows: readonly Example[],
  corrections: readonly Pick<ReviewedRow, 'text' | 'label' | 'labelled_at'>[],
): { rows: Example[]; relabelled: number; dropped: number } {
  const latest = new Map<string, string>();
  for (const c of [...corrections].sort((a, b) => a.labelled_at.localeCompare(b.labelled_at)))
    latest.set(matchKey(c.text), c.label);
  let relabelled = 0;
  let dropped = 0;
  const out: Example[] = [];
  for (const r of rows) {
    const label = latest.get(matchKey(r.text));
    if (label === undefined || label === r.label) out.push(r);
    else if (label === OUT_OF_SCOPE) dropped++;
    else {
      relabelled++;
      out.push({ ...r, label });
    }
  }
  return { rows: out, relabelled, dropped };
}
