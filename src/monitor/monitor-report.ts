/** The monitoring report (pure): drift of served traffic against the training reference, as HTML. */
import { histogramFigure, labelDistributionFigure, outOfScopeTrendFigure } from '../plots/figures';
import { reportHtml, type ReportSection } from '../plots/html';
import { analyze } from '../estimators/tfidf';
import type { ColumnDecl, FeatureRecord } from '../data/tabular-tasks';
import { DEFAULT_DRIFT_POLICY, type DriftReport, type FeatureDrift, type ScopeDay } from './drift';
import { countsPerDay, type ServingRecord } from './serving-log';

/** The verdict and the table of every feature's test: the top of both monitoring reports. */
function verdictSections(drift: DriftReport, current: string): ReportSection[] {
  return [
    {
      heading: 'Verdict',
      text:
        `Drift level ${drift.level.toUpperCase()}, action: ${drift.action}. ${drift.reason}. Reference ` +
        `${drift.referenceRows} training rows, current ${drift.currentRows} ${current}.`,
    },
    {
      heading: 'Features',
      table: {
        columns: ['feature', 'test', 'statistic', 'p-value', 'threshold', 'PSI', 'drifted'],
        rows: drift.features.map((f) => [
          f.feature,
          f.test,
          f.statistic,
          f.pValue ?? '',
          f.threshold,
          f.psi ?? '',
          f.drifted ? 'yes' : 'no',
        ]),
      },
    },
  ];
}

/** One sentence on the out-of-scope share: the latest day, its baseline, and whether it is drift. */
function scopeVerdict(f: FeatureDrift): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const base = f.share!.baselineDays
    ? `over the ${f.share!.baselineDays} day(s) before`
    : 'expected on in-scope traffic (1 - recall)';
  return (
    `${pct(f.share!.latest)} of ${f.share!.day}'s predictions were out of scope, against ${pct(f.share!.baseline)} ` +
    `${base}; a rise of ${(f.threshold * 100).toFixed(0)} points is drift${f.drifted ? ': DRIFT' : ''}.`
  );
}

export function monitorHtml(
  task: string,
  drift: DriftReport,
  reference: { texts: string[]; labels: string[] },
  records: ServingRecord[],
  scopeDays: readonly ScopeDay[] = [],
): string {
  const oos = drift.features.find((f) => f.share);
  const shares = (xs: string[]) =>
    xs.reduce<Record<string, number>>((acc, x) => ((acc[x] = (acc[x] ?? 0) + 1 / xs.length), acc), {});
  const words = (ts: string[]) => ts.map((t) => analyze(t, [1, 1]).length);
  const perDay = countsPerDay(
    records,
    (r) => r.ts,
    (r) => r.label,
  );
  return reportHtml(`Monitoring: ${task}`, [
    ...verdictSections(drift, 'served predictions'),
    {
      heading: 'Predicted labels (served) vs training labels',
      figure: labelDistributionFigure({
        training: shares(reference.labels),
        served: shares(records.map((r) => r.label)),
      }),
    },
    {
      heading: 'Text length',
      figure: histogramFigure(
        { training: words(reference.texts), served: words(records.map((r) => r.text ?? '')) },
        'Words per text',
        'words',
      ),
    },
    ...(scopeDays.length
      ? [
          {
            heading: 'Out-of-scope share',
            text: oos?.share
              ? scopeVerdict(oos)
              : 'Too few predictions on the latest day to judge the out-of-scope share.',
            figure: outOfScopeTrendFigure(
              scopeDays,
              oos?.share?.baseline ?? DEFAULT_DRIFT_POLICY.expectedOutOfScopeShare,
              oos?.threshold ?? DEFAULT_DRIFT_POLICY.outOfScopeJump,
            ),
          },
        ]
      : []),
    {
      heading: 'Predictions per day',
      figure: {
        data: Object.entries(perDay.series).map(([label, y]) => ({ type: 'bar', name: label, x: perDay.days, y })),
        layout: { barmode: 'stack', title: { text: 'Served predictions per day' } },
      },
    },
  ]);
}

/** The monitoring report of a tabular model: every feature's test, and a chart per drifted feature. */
export function tabularMonitorHtml(
  task: string,
  drift: DriftReport,
  columns: readonly ColumnDecl[],
  reference: { records: readonly FeatureRecord[]; labels: readonly string[] },
  records: readonly ServingRecord[],
): string {
  const shares = (xs: readonly string[]) =>
    xs.reduce<Record<string, number>>((acc, x) => ((acc[x] = (acc[x] ?? 0) + 1 / xs.length), acc), {});
  const served = records.flatMap((r) => (r.features ? [r.features] : []));
  const drifted = columns.filter((c) => drift.features.some((f) => f.feature === c.name && f.drifted));
  const perDay = countsPerDay(
    records,
    (r) => r.ts,
    (r) => r.label,
  );
  return reportHtml(`Monitoring: ${task}`, [
    ...verdictSections(drift, 'served records'),
    ...drifted.map((c) => ({
      heading: `Drifted: ${c.name}`,
      figure:
        c.type === 'number'
          ? histogramFigure(
              {
                training: reference.records.map((r) => Number(r[c.name])),
                served: served.map((r) => Number(r[c.name])),
              },
              c.name,
              c.name,
            )
          : labelDistributionFigure({
              training: shares(reference.records.map((r) => String(r[c.name]))),
              served: shares(served.map((r) => String(r[c.name]))),
            }),
    })),
    {
      heading: 'Predicted labels (served) vs training labels',
      figure: labelDistributionFigure({
        training: shares(reference.labels),
        served: shares(records.map((r) => r.label)),
      }),
    },
    {
      heading: 'Predictions per day',
      figure: {
        data: Object.entries(perDay.series).map(([label, y]) => ({ type: 'bar', name: label, x: perDay.days, y })),
        layout: { barmode: 'stack', title: { text: 'Served predictions per day' } },
      },
    },
  ]);
}
