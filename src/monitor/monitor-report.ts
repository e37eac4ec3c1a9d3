/** The monitoring report (pure): drift of served traffic against the training reference, as HTML. */
import { histogramFigure, labelDistributionFigure } from '../plots/figures';
import { reportHtml } from '../plots/html';
import { analyze } from '../estimators/tfidf';
import type { DriftReport } from './drift';
import { countsPerDay, type ServingRecord } from './serving-log';

export function monitorHtml(
  task: string,
  drift: DriftReport,
  reference: { texts: string[]; labels: string[] },
  records: ServingRecord[],
): string {
  const shares = (xs: string[]) =>
    xs.reduce<Record<string, number>>((acc, x) => ((acc[x] = (acc[x] ?? 0) + 1 / xs.length), acc), {});
  const words = (ts: string[]) => ts.map((t) => analyze(t, [1, 1]).length);
  const perDay = countsPerDay(
    records,
    (r) => r.ts,
    (r) => r.label,
  );
  return reportHtml(`Monitoring: ${task}`, [
    {
      heading: 'Verdict',
      text:
        `Drift level ${drift.level.toUpperCase()}, action: ${drift.action}. ${drift.reason}. Reference ` +
        `${drift.referenceRows} training rows, current ${drift.currentRows} served predictions.`,
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
    {
      heading: 'Predictions per day',
      figure: {
        data: Object.entries(perDay.series).map(([label, y]) => ({ type: 'bar', name: label, x: perDay.days, y })),
        layout: { barmode: 'stack', title: { text: 'Served predictions per day' } },
      },
    },
  ]);
}
