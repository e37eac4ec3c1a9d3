/**
 * What monitoring compares with the training data: one model's served predictions (a uniform
 * sample when there are more than fit in memory), with counts per served version, and their texts
 * cleaned as training texts were. The serving log keeps the raw request text (PII-masked); the
 * training reference was cleaned by the task's rules, so comparing the two as they are would report
 * the cleaning itself as drift.
 */
import { cleanText, type CleaningConfig } from '../data/clean';
import type { Example } from '../data/tasks';
import { driftReport, type DriftPolicy, type DriftReport, type ScopeDay } from './drift';
import { Reservoir, streamServingLog, type ServingLogFilter, type ServingRecord } from './serving-log';

export interface ServedSample {
  /** At most `capacity` records, a uniform sample of all that matched. */
  records: ServingRecord[];
  /** All records that matched (the model, the period). */
  total: number;
  perVersion: Record<string, number>;
  malformed: number;
  /** Records of other models in the same log folder, skipped. */
  otherModels: number;
  /** Per UTC day, of all matched records that carry an in-scope verdict: how many, how many out of scope. */
  scopeDays: ScopeDay[];
}

export async function sampleServed(
  location: string,
  filter: ServingLogFilter,
  capacity = 50_000,
  random?: () => number,
): Promise<ServedSample> {
  const sample = new Reservoir<ServingRecord>(capacity, random);
  const perVersion: Record<string, number> = {};
  const days = new Map<string, ScopeDay>();
  const r = await streamServingLog(location, filter, (rec) => {
    perVersion[rec.version] = (perVersion[rec.version] ?? 0) + 1;
    sample.add(rec);
    // Counted over every record, not the sample: the daily share is exact.
    if (rec.in_scope !== undefined) {
      const day = rec.ts.slice(0, 10);
      const d = days.get(day) ?? { day, rows: 0, outOfScope: 0 };
      d.rows++;
      if (!rec.in_scope) d.outOfScope++;
      days.set(day, d);
    }
  });
  const scopeDays = [...days.values()].sort((a, b) => a.day.localeCompare(b.day));
  return {
    records: sample.items,
    total: r.records,
    perVersion,
    malformed: r.malformed,
    otherModels: r.otherModels,
    scopeDays,
  };
}

/** Served texts as training saw them: the task's cleaning applied (pure). */
export function servedAsTrained(texts: readonly string[], cleaning: CleaningConfig | null | undefined): string[] {
  return cleaning ? texts.map((t) => cleanText(t, cleaning)) : [...texts];
}

/**
 * Drift of served predictions against the training split, texts compared after the same cleaning (pure).
 * Predicted classes are the model's top labels (the fallback label is no training class); the
 * out-of-scope share per day is its own signal.
 */
export function servedDrift(
  train: readonly Example[],
  served: readonly ServingRecord[],
  cleaning: CleaningConfig | null | undefined,
  policy?: DriftPolicy,
  scopeDays?: readonly ScopeDay[],
): DriftReport {
  const reference = { texts: train.map((e) => e.text), labels: train.map((e) => e.label) };
  const current = {
    texts: servedAsTrained(
      served.map((r) => r.text ?? ''),
      cleaning,
    ),
    labels: served.map((r) => r.top_label ?? r.label),
  };
  return driftReport(
    { reference, current, labelFeature: 'predicted_label', ...(scopeDays?.length ? { outOfScope: scopeDays } : {}) },
    policy,
  );
}
