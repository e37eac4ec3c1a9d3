/**
 * Per-feature drift of a tabular model's served records against its training feature table: every
 * input column with the tests the text monitor uses (KS or normed Wasserstein for numbers, chi-square
 * or Jensen-Shannon for categories, by reference size), the predicted-label distribution, and the share
 * of missing values per column (rows a client sent with a column missing or blank, which serving
 * rejected) against the share in the raw training data. Pure: the caller reads the logs.
 */
import type { ColumnDecl, FeatureRecord } from '../data/tabular-tasks';
import {
  categoricalDrift,
  DEFAULT_DRIFT_POLICY,
  numericDrift,
  type DriftLevel,
  type DriftPolicy,
  type DriftReport,
  type FeatureDrift,
} from './drift';

/** Rows seen and rows with each column missing, on one side of the comparison. */
export interface MissingCounts {
  rows: number;
  missing: Record<string, number>;
}

export interface TabularDriftInput {
  columns: readonly ColumnDecl[];
  reference: { records: readonly FeatureRecord[]; labels: readonly string[]; missing: MissingCounts };
  current: { records: readonly FeatureRecord[]; labels: readonly string[]; missing: MissingCounts };
}

/** An issue message that means "no value" (the schema's wording for an absent or blank cell). */
export const isMissingIssue = (message: string): boolean => message === 'missing' || message.startsWith('blank');

const indicator = (n: number, missing: number): string[] =>
  Array.from({ length: n }, (_, i) => (i < missing ? 'missing' : 'present'));

export function tabularDriftReport(input: TabularDriftInput, p: DriftPolicy = DEFAULT_DRIFT_POLICY): DriftReport {
  const { reference: ref, current: cur } = input;
  const base = { referenceRows: ref.records.length, currentRows: cur.records.length };
  if (cur.records.length < p.minCurrentRows)
    return {
      level: 'none',
      action: 'none',
      driftedShare: 0,
      features: [],
      ...base,
      reason: `only ${cur.records.length} current rows (fewer than ${p.minCurrentRows}): too few to judge drift`,
    };
  const features: FeatureDrift[] = input.columns.map((c) =>
    c.type === 'number'
      ? numericDrift(
          c.name,
          ref.records.map((r) => Number(r[c.name])),
          cur.records.map((r) => Number(r[c.name])),
          p,
        )
      : categoricalDrift(
          c.name,
          ref.records.map((r) => String(r[c.name])),
          cur.records.map((r) => String(r[c.name])),
          p,
        ),
  );
  features.push(categoricalDrift('predicted_label', ref.labels, cur.labels, p));
  // Missing values: only columns where either side has some (a column never missing cannot drift in this).
  for (const c of input.columns) {
    const r = ref.missing.missing[c.name] ?? 0;
    const k = cur.missing.missing[c.name] ?? 0;
    if (r === 0 && k === 0) continue;
    const d = categoricalDrift(
      `missing_share/${c.name}`,
      indicator(ref.missing.rows, r),
      indicator(cur.missing.rows, k),
      p,
    );
    features.push({ ...d, kind: 'categorical' });
  }
  const drifted = features.filter((f) => f.drifted);
  const driftedShare = drifted.length / features.length;
  const level: DriftLevel =
    driftedShare >= p.largeShare
      ? 'large'
      : driftedShare >= p.moderateShare
        ? 'moderate'
        : driftedShare > 0
          ? 'small'
          : 'none';
  return {
    level,
    action: level === 'large' ? 'retrain_and_alert' : level === 'moderate' ? 'retrain' : 'none',
    driftedShare,
    features,
    ...base,
    reason: drifted.length
      ? `drift in ${drifted.map((f) => `${f.feature} (${f.test} ${f.statistic.toFixed(3)})`).join(', ')}`
      : 'no feature drifted',
  };
}
