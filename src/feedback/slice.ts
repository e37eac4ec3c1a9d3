/**
 * The production evaluation slice (pure): reviewed control rows are a uniform sample of what a model
 * version served, so their human labels estimate how that version does on real traffic, with a 95%
 * interval. The home test split says how a model does on the data it was built from; this says how it
 * does on the queries customers actually send.
 */
import type { Example } from '../data/tasks';
import { wilsonInterval, type ShareInterval } from '../evaluate/interval';
import { OUT_OF_SCOPE, type ReviewedRow } from './types';

export interface SliceEstimate {
  version: string;
  rows: number;
  /** The served answer was right: the right queue, or out_of_scope for a query that belongs to none. */
  accuracy: ShareInterval;
  /** Share of the traffic a person judged in scope (a property of the traffic, not of the model). */
  inScopeRate: ShareInterval;
  /** Of the in-scope queries: kept by the scope rule; kept with the right top label; right top label at all. */
  inScopeKept: ShareInterval;
  keptAndRight: ShareInterval;
  topLabelAccuracy: ShareInterval;
  /** Of the out-of-scope queries: rejected. */
  offTopicRejected: ShareInterval;
}

type Judged = Pick<ReviewedRow, 'label' | 'in_scope' | 'top_label'>;

/** Whether the served answer to a reviewed row was right. */
export const servedRight = (r: Judged): boolean =>
  r.label === OUT_OF_SCOPE ? !r.in_scope : r.in_scope && r.top_label === r.label;

/** Estimates per served version, newest version (highest number) first. Only control rows belong here. */
export function estimateSlice(rows: readonly ReviewedRow[]): SliceEstimate[] {
  const byVersion = new Map<string, ReviewedRow[]>();
  for (const r of rows) {
    if (r.reason !== 'control') throw new Error(`${r.item_id} is not a control row: only control rows estimate`);
    byVersion.set(r.version, [...(byVersion.get(r.version) ?? []), r]);
  }
  return [...byVersion.entries()]
    .sort(([a], [b]) => Number(b) - Number(a) || b.localeCompare(a))
    .map(([version, rs]) => {
      const inScope = rs.filter((r) => r.label !== OUT_OF_SCOPE);
      const offTopic = rs.filter((r) => r.label === OUT_OF_SCOPE);
      const count = (xs: readonly ReviewedRow[], f: (r: ReviewedRow) => boolean) => xs.filter(f).length;
      return {
        version,
        rows: rs.length,
        accuracy: wilsonInterval(count(rs, servedRight), rs.length),
        inScopeRate: wilsonInterval(inScope.length, rs.length),
        inScopeKept: wilsonInterval(
          count(inScope, (r) => r.in_scope),
          inScope.length,
        ),
        keptAndRight: wilsonInterval(count(inScope, servedRight), inScope.length),
        topLabelAccuracy: wilsonInterval(
          count(inScope, (r) => r.top_label === r.label),
          inScope.length,
        ),
        offTopicRejected: wilsonInterval(
          count(offTopic, (r) => !r.in_scope),
          offTopic.length,
        ),
      };
    });
}

const pct = (x: number) => (Number.isNaN(x) ? '  n/a' : `${(100 * x).toFixed(1)}%`);

/** "91.0% [86.2%, 94.3%] (n=200)". */
export const formatInterval = (s: ShareInterval): string =>
  s.n === 0 ? 'n/a (n=0)' : `${pct(s.share)} [${pct(s.lower)}, ${pct(s.upper)}] (n=${s.n})`;

/** MLflow metric names and values of one estimate (share and both bounds). */
export function sliceMetrics(e: SliceEstimate): Record<string, number> {
  const out: Record<string, number> = { production_slice_rows: e.rows };
  const add = (name: string, s: ShareInterval) => {
    if (s.n === 0) return;
    out[`production_${name}`] = s.share;
    out[`production_${name}_lower`] = s.lower;
    out[`production_${name}_upper`] = s.upper;
  };
  add('accuracy', e.accuracy);
  add('in_scope_rate', e.inScopeRate);
  add('in_scope_kept', e.inScopeKept);
  add('kept_and_right', e.keptAndRight);
  add('off_topic_rejected', e.offTopicRejected);
  return out;
}

/**
 * The slice as held-out examples for the retrain gate: rows a person judged in scope, with a label the model has
 * (every version's rows: the human label does not depend on which model answered). Never training rows.
 */
export const sliceExamples = (rows: readonly ReviewedRow[], labels: readonly string[]): Example[] =>
  rows
    .filter((r) => r.label !== OUT_OF_SCOPE && labels.includes(r.label))
    .map((r) => ({ id: `production-slice/${r.item_id}`, text: r.text, label: r.label }));
