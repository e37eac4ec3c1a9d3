/**
 * Data drift between a reference (training) sample and a current one, following Evidently's
 * defaults: with at most 1,000 reference rows, Kolmogorov-Smirnov (numeric) and chi-square
 * (categorical) tests at p < 0.05; above that, normed Wasserstein distance (numeric) and
 * Jensen-Shannon distance (categorical) over 0.1. PSI is reported for every feature. For text, a
 * domain classifier (can a model tell reference from current? ROC AUC > 0.55 = drift), plus text
 * length and out-of-vocabulary-rate shifts. Test distributions come from stdlib-js.
 */
import kstest from '@stdlib/stats-kstest';
import chisquareCdf from '@stdlib/stats-base-dists-chisquare-cdf';
import { buildLabelMap } from '../data/labels';
import { shuffled, seededRandom } from '../data/split';
import type { Example } from '../data/tasks';
import { rocAuc } from '../evaluate/metrics';
import { analyze } from '../estimators/tfidf';
import { DEFAULT_BASELINE, predictBaseline, trainBaseline } from '../kinds/tfidf-logreg/model';

export interface DriftPolicy {
  pValue: number;
  distance: number;
  /** Reference sizes up to this use statistical tests; larger ones use distances. */
  smallReferenceRows: number;
  domainAuc: number;
  /** Share of drifted features (or domain AUC) at which drift is "moderate" (retrain) and "large" (retrain + alert). */
  moderateShare: number;
  largeShare: number;
  largeDomainAuc: number;
  /** Below this many current rows no verdict is drawn (a handful of texts always looks different). */
  minCurrentRows: number;
  /**
   * The out-of-scope share on traffic like the training data: 1 - the in-scope recall the threshold was
   * chosen for (95% by default). The baseline when the window holds only one day.
   */
  expectedOutOfScopeShare: number;
  /** Rises of the latest day's out-of-scope share over its baseline (absolute): drift (retrain), large (alert). */
  outOfScopeJump: number;
  largeOutOfScopeJump: number;
}

export const DEFAULT_DRIFT_POLICY: DriftPolicy = {
  pValue: 0.05,
  distance: 0.1,
  smallReferenceRows: 1000,
  domainAuc: 0.55,
  moderateShare: 0.25,
  largeShare: 0.5,
  largeDomainAuc: 0.75,
  minCurrentRows: 30,
  expectedOutOfScopeShare: 0.05,
  outOfScopeJump: 0.1,
  largeOutOfScopeJump: 0.25,
};

export interface FeatureDrift {
  feature: string;
  kind: 'numeric' | 'categorical' | 'domain' | 'share';
  test: 'ks' | 'chi2' | 'wasserstein_normed' | 'jensen_shannon' | 'domain_classifier_auc' | 'share_jump';
  statistic: number;
  pValue?: number;
  threshold: number;
  drifted: boolean;
  psi?: number;
  /** share_jump: the latest day's share, its baseline, that day and how many days the baseline pooled. */
  share?: { latest: number; baseline: number; day: string; baselineDays: number };
}

export type DriftLevel = 'none' | 'small' | 'moderate' | 'large';
export type DriftAction = 'none' | 'retrain' | 'retrain_and_alert';

export interface DriftReport {
  level: DriftLevel;
  action: DriftAction;
  driftedShare: number;
  features: FeatureDrift[];
  referenceRows: number;
  currentRows: number;
  reason: string;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const std = (xs: readonly number[]) => {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
};

/** Population Stability Index over the reference's decile bins (numeric) or categories. */
export function psi(refShares: number[], curShares: number[]): number {
  const eps = 1e-4;
  return refShares.reduce((s, r, i) => {
    const a = Math.max(r, eps);
    const b = Math.max(curShares[i] ?? 0, eps);
    return s + (b - a) * Math.log(b / a);
  }, 0);
}

function numericPsi(ref: readonly number[], cur: readonly number[], bins = 10): number {
  const sorted = [...ref].sort((a, b) => a - b);
  const edges = Array.from({ length: bins - 1 }, (_, i) => sorted[Math.floor(((i + 1) * sorted.length) / bins)]!);
  const shares = (xs: readonly number[]) => {
    const counts = new Array<number>(bins).fill(0);
    for (const x of xs) {
      let b = 0;
      while (b < edges.length && x > edges[b]!) b++;
      counts[b]! += 1;
    }
    return counts.map((c) => c / Math.max(1, xs.length));
  };
  return psi(shares(ref), shares(cur));
}

/** 1-D Wasserstein (earth mover's) distance between two samples. */
export function wasserstein(a: readonly number[], b: readonly number[]): number {
  const xs = [...a].sort((x, y) => x - y);
  const ys = [...b].sort((x, y) => x - y);
  const all = [...new Set([...xs, ...ys])].sort((x, y) => x - y);
  let i = 0;
  let j = 0;
  let dist = 0;
  for (let k = 0; k < all.length - 1; k++) {
    while (i < xs.length && xs[i]! <= all[k]!) i++;
    while (j < ys.length && ys[j]! <= all[k]!) j++;
    dist += Math.abs(i / xs.length - j / ys.length) * (all[k + 1]! - all[k]!);
  }
  return dist;
}

/**
 * Two-sample Kolmogorov-Smirnov test. The statistic D = sup |F_ref - F_cur| is computed over all
 * observed values, so ties (integer lengths, zero OOV rates) are handled exactly. The p-value is
 * stdlib's Kolmogorov distribution at the effective size n*m/(n+m) (the usual large-sample
 * approximation): we hand stdlib's one-sample test an evenly spaced sample whose statistic against
 * Uniform(0, 1) is exactly D, rather than re-implementing the distribution.
 */
export function ks2samp(a: readonly number[], b: readonly number[]): { statistic: number; pValue: number } {
  const xs = [...a].sort((x, y) => x - y);
  const ys = [...b].sort((x, y) => x - y);
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < xs.length && j < ys.length) {
    const v = Math.min(xs[i]!, ys[j]!);
    while (i < xs.length && xs[i]! <= v) i++;
    while (j < ys.length && ys[j]! <= v) j++;
    d = Math.max(d, Math.abs(i / xs.length - j / ys.length));
  }
  const n = Math.max(1, Math.round((xs.length * ys.length) / (xs.length + ys.length)));
  if (d <= 1 / (2 * n)) return { statistic: d, pValue: 1 };
  const sample = Array.from({ length: n }, (_, k) => Math.min(1, k / n + d));
  return { statistic: d, pValue: kstest(sample, 'uniform', 0, 1).pValue };
}

export function numericDrift(
  feature: string,
  ref: readonly number[],
  cur: readonly number[],
  p: DriftPolicy = DEFAULT_DRIFT_POLICY,
): FeatureDrift {
  const psiValue = numericPsi(ref, cur);
  if (ref.length <= p.smallReferenceRows) {
    const { statistic, pValue } = ks2samp(ref, cur);
    return {
      feature,
      kind: 'numeric',
      test: 'ks',
      statistic,
      pValue,
      threshold: p.pValue,
      drifted: pValue < p.pValue,
      psi: psiValue,
    };
  }
  const sd = std(ref) || 1;
  const d = wasserstein(ref, cur) / sd;
  return {
    feature,
    kind: 'numeric',
    test: 'wasserstein_normed',
    statistic: d,
    threshold: p.distance,
    drifted: d > p.distance,
    psi: psiValue,
  };
}

export function categoricalDrift(
  feature: string,
  ref: readonly string[],
  cur: readonly string[],
  p: DriftPolicy = DEFAULT_DRIFT_POLICY,
): FeatureDrift {
  const cats = [...new Set([...ref, ...cur])].sort();
  const count = (xs: readonly string[]) => cats.map((c) => xs.filter((x) => x === c).length);
  const rc = count(ref);
  const cc = count(cur);
  const rs = rc.map((c) => c / ref.length);
  const cs = cc.map((c) => c / cur.length);
  const psiValue = psi(rs, cs);
  if (ref.length <= p.smallReferenceRows) {
    // Chi-square test of homogeneity on the 2 x k table (reference vs current counts).
    const total = ref.length + cur.length;
    let chi2 = 0;
    let dof = 0;
    cats.forEach((_, i) => {
      const col = rc[i]! + cc[i]!;
      if (col === 0) return;
      dof++;
      const er = (col * ref.length) / total;
      const ec = (col * cur.length) / total;
      chi2 += (rc[i]! - er) ** 2 / er + (cc[i]! - ec) ** 2 / ec;
    });
    const df = Math.max(1, dof - 1);
    const pValue = 1 - chisquareCdf(chi2, df);
    return {
      feature,
      kind: 'categorical',
      test: 'chi2',
      statistic: chi2,
      pValue,
      threshold: p.pValue,
      drifted: pValue < p.pValue,
      psi: psiValue,
    };
  }
  // Jensen-Shannon distance (base 2, so it lies in [0, 1]).
  const m = rs.map((r, i) => (r + cs[i]!) / 2);
  const kl = (a: number[]) => a.reduce((s, x, i) => (x > 0 ? s + x * Math.log2(x / m[i]!) : s), 0);
  const js = Math.sqrt((kl(rs) + kl(cs)) / 2);
  return {
    feature,
    kind: 'categorical',
    test: 'jensen_shannon',
    statistic: js,
    threshold: p.distance,
    drifted: js > p.distance,
    psi: psiValue,
  };
}

/**
 * Trains a TF-IDF classifier to tell reference texts from current ones on half of each and scores
 * the other half: an AUC near 0.5 means the texts are indistinguishable.
 */
export function domainClassifierAuc(
  ref: readonly string[],
  cur: readonly string[],
  seed = 42,
  maxPerSide = 2000,
): number {
  const random = seededRandom(seed);
  const r = shuffled(ref, random).slice(0, maxPerSide);
  const c = shuffled(cur, random).slice(0, maxPerSide);
  const half = (xs: string[]) => [xs.slice(0, Math.ceil(xs.length / 2)), xs.slice(Math.ceil(xs.length / 2))] as const;
  const [rTrain, rTest] = half(r);
  const [cTrain, cTest] = half(c);
  const train: Example[] = [
    ...rTrain.map((text, i) => ({ id: `r${i}`, text, label: 'reference' })),
    ...cTrain.map((text, i) => ({ id: `c${i}`, text, label: 'current' })),
  ];
  const map = buildLabelMap(['current', 'reference']);
  const weights = [train.length / (2 * cTrain.length), train.length / (2 * rTrain.length)];
  const model = trainBaseline(train, map, weights, {
    ...DEFAULT_BASELINE,
    tfidf: { ...DEFAULT_BASELINE.tfidf, minDf: 1 },
    logreg: { ...DEFAULT_BASELINE.logreg, epochs: 10, seed },
  });
  const testTexts = [...rTest, ...cTest];
  const { probs } = predictBaseline(model, testTexts);
  const scores = testTexts.map((_, i) => probs[i * 2]!); // p(current)
  return (
    rocAuc(
      scores,
      testTexts.map((_, i) => i >= rTest.length),
    ) ?? 0.5
  );
}

/** Share of words in each text that the reference vocabulary never saw. */
export function oovRates(texts: readonly string[], vocabulary: ReadonlySet<string>): number[] {
  return texts.map((t) => {
    const words = analyze(t, [1, 1]);
    return words.length ? words.filter((w) => !vocabulary.has(w)).length / words.length : 0;
  });
}

/** One UTC day of served predictions: how many, and how many were judged out of scope. */
export interface ScopeDay {
  day: string;
  rows: number;
  outOfScope: number;
}

/**
 * The out-of-scope share as a drift signal (pure): the latest day's share against the days before it in
 * the window, pooled (with a single day, against the share expected on in-scope traffic). The statistic
 * is the rise in share; it is drift when the rise reaches `outOfScopeJump` and a one-sided
 * two-proportion test (chi-square, 1 degree of freedom) finds it at p < `pValue`, so neither a small
 * day's noise nor a tiny rise on a huge day counts. A latest day with fewer than `minCurrentRows` (today, just
 * after midnight) gives way to the day before; undefined when no day is large enough.
 */
export function outOfScopeDrift(
  days: readonly ScopeDay[],
  p: DriftPolicy = DEFAULT_DRIFT_POLICY,
): FeatureDrift | undefined {
  const sorted = [...days].filter((d) => d.rows > 0).sort((a, b) => a.day.localeCompare(b.day));
  // A monitor run just after midnight sees only a few of today's rows: judge the day before instead.
  if (sorted.length > 1 && sorted.at(-1)!.rows < p.minCurrentRows) sorted.pop();
  const latest = sorted.at(-1);
  if (!latest || latest.rows < p.minCurrentRows) return undefined;
  const before = sorted.slice(0, -1);
  const n0 = before.reduce((a, d) => a + d.rows, 0);
  const share = latest.outOfScope / latest.rows;
  const base = n0 > 0 ? before.reduce((a, d) => a + d.outOfScope, 0) / n0 : p.expectedOutOfScopeShare;
  const jump = share - base;
  // Pooled two-proportion z (one-sample z against the expected share when there is no earlier day).
  const pooled = n0 > 0 ? (latest.outOfScope + base * n0) / (latest.rows + n0) : base;
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / latest.rows + (n0 > 0 ? 1 / n0 : 0)));
  const z = se > 0 ? jump / se : jump > 0 ? Infinity : 0;
  const pValue = z <= 0 ? 1 : Number.isFinite(z) ? (1 - chisquareCdf(z * z, 1)) / 2 : 0;
  return {
    feature: 'out_of_scope_share',
    kind: 'share',
    test: 'share_jump',
    statistic: jump,
    pValue,
    threshold: p.outOfScopeJump,
    drifted: jump >= p.outOfScopeJump && pValue < p.pValue,
    share: { latest: share, baseline: base, day: latest.day, baselineDays: before.length },
  };
}

export interface DriftInput {
  reference: { texts: readonly string[]; labels?: readonly string[] };
  current: { texts: readonly string[]; labels?: readonly string[] };
  /** Name of the categorical column compared (labels for training data, predicted labels for serving). */
  labelFeature?: string;
  /** Served predictions per day with their out-of-scope counts (models with an out-of-scope rule). */
  outOfScope?: readonly ScopeDay[];
}

export function driftReport(input: DriftInput, p: DriftPolicy = DEFAULT_DRIFT_POLICY): DriftReport {
  const { reference: ref, current: cur } = input;
  if (cur.texts.length < p.minCurrentRows) {
    return {
      level: 'none',
      action: 'none',
      driftedShare: 0,
      features: [],
      referenceRows: ref.texts.length,
      currentRows: cur.texts.length,
      reason: `only ${cur.texts.length} current rows (fewer than ${p.minCurrentRows}): too few to judge drift`,
    };
  }
  const vocab = new Set(ref.texts.flatMap((t) => analyze(t, [1, 1])));
  const words = (ts: readonly string[]) => ts.map((t) => analyze(t, [1, 1]).length);
  const features: FeatureDrift[] = [
    numericDrift('text_length_words', words(ref.texts), words(cur.texts), p),
    numericDrift('oov_rate', oovRates(ref.texts, vocab), oovRates(cur.texts, vocab), p),
  ];
  if (ref.labels && cur.labels)
    features.push(categoricalDrift(input.labelFeature ?? 'label', ref.labels, cur.labels, p));
  const auc = domainClassifierAuc(ref.texts, cur.texts);
  features.push({
    feature: 'text_domain',
    kind: 'domain',
    test: 'domain_classifier_auc',
    statistic: auc,
    threshold: p.domainAuc,
    drifted: auc > p.domainAuc,
  });
  const oos = input.outOfScope ? outOfScopeDrift(input.outOfScope, p) : undefined;
  if (oos) features.push(oos);
  // The share of drifted data features (the out-of-scope share is judged by its own rule below, and must not
  // dilute theirs: one drifted feature of four is moderate drift, with or without the extra signal).
  const data = features.filter((f) => f.kind !== 'share');
  const driftedShare = data.filter((f) => f.drifted).length / data.length;
  // A rise in out-of-scope traffic is a signal of its own: new kinds of requests the model has no class for.
  const oosLevel: DriftLevel = !oos?.drifted ? 'none' : oos.statistic >= p.largeOutOfScopeJump ? 'large' : 'moderate';
  const level: DriftLevel =
    driftedShare >= p.largeShare || auc > p.largeDomainAuc || oosLevel === 'large'
      ? 'large'
      : driftedShare >= p.moderateShare || auc > p.domainAuc || oosLevel === 'moderate'
        ? 'moderate'
        : driftedShare > 0
          ? 'small'
          : 'none';
  const action: DriftAction = level === 'large' ? 'retrain_and_alert' : level === 'moderate' ? 'retrain' : 'none';
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const drifted = features
    .filter((f) => f.drifted)
    .map((f) =>
      f.share
        ? `${f.feature} (${pct(f.share.latest)} on ${f.share.day} vs ${pct(f.share.baseline)} before)`
        : `${f.feature} (${f.test} ${f.statistic.toFixed(3)})`,
    );
  return {
    level,
    action,
    driftedShare,
    features,
    referenceRows: ref.texts.length,
    currentRows: cur.texts.length,
    reason: drifted.length ? `drift in ${drifted.join(', ')}` : 'no feature drifted',
  };
}

const LEVEL_CODE: Record<DriftLevel, number> = { none: 0, small: 0, moderate: 1, large: 2 };

/**
 * The verdict in Prometheus' text format, for node_exporter's textfile collector (pure): drift level
 * (0 none or small, 1 moderate, 2 large), drifted share and the run's time. monitoring/alerts.yml reads them.
 */
export function driftTextfile(task: string, drift: DriftReport, at: Date): string {
  const t = `{task="${task.replace(/["\\\n]/g, '_')}"}`;
  return [
    '# HELP convo_drift_level Drift of served traffic vs training data (0 none/small, 1 moderate, 2 large).',
    '# TYPE convo_drift_level gauge',
    `convo_drift_level${t} ${LEVEL_CODE[drift.level]}`,
    '# HELP convo_drift_drifted_share Share of monitored features that drifted.',
    '# TYPE convo_drift_drifted_share gauge',
    `convo_drift_drifted_share${t} ${drift.driftedShare}`,
    ...drift.features
      .filter((f) => f.share)
      .flatMap((f) => [
        "# HELP convo_out_of_scope_share The latest served day's share of out-of-scope predictions.",
        '# TYPE convo_out_of_scope_share gauge',
        `convo_out_of_scope_share${t} ${f.share!.latest}`,
      ]),
    '# HELP convo_monitor_last_run_timestamp_seconds When make monitor last compared this task.',
    '# TYPE convo_monitor_last_run_timestamp_seconds gauge',
    `convo_monitor_last_run_timestamp_seconds${t} ${Math.floor(at.getTime() / 1000)}`,
    '',
  ].join('\n');
}
