/**
 * The picture and page of a tabular comparison (make compare): mean AUC per candidate with its spread,
 * and the HTML report logged to the parent run.
 */
import type { TabularTaskSpec } from '../../data/tabular-tasks';
import { reportHtml, type Figure } from '../../plots/html';

import type { CandidateOutcome, Comparison } from './train';

/** Mean AUC with its sd as error bars, one bar per candidate: the picture of the comparison. */
export function comparisonFigure(outcomes: readonly CandidateOutcome[]): Figure {
  const sorted = [...outcomes].sort((a, b) => b.summary.mean.roc_auc - a.summary.mean.roc_auc);
  return {
    data: [
      {
        type: 'bar',
        x: sorted.map((o) => o.summary.name),
        y: sorted.map((o) => o.summary.mean.roc_auc),
        error_y: { type: 'data', array: sorted.map((o) => o.summary.sd.roc_auc), visible: true },
        text: sorted.map((o) => o.summary.mean.roc_auc.toFixed(4)),
        textposition: 'outside',
        name: 'cross-validated ROC AUC',
      },
    ],
    layout: {
      title: { text: 'Cross-validated ROC AUC (mean ± sd over folds)' },
      yaxis: { title: { text: 'ROC AUC' }, range: [0.5, 1] },
      xaxis: { title: { text: 'model' } },
      margin: { t: 50, b: 60 },
    },
  };
}

export function comparisonHtml(spec: TabularTaskSpec, c: Comparison, folds: number): string {
  return reportHtml(`Model comparison: ${spec.name}`, [
    {
      heading: `${folds}-fold cross-validation on ${c.nPool} customers (train + validation)`,
      text:
        `Positive class "${spec.positiveLabel}", threshold 0.5 for F1, recall, precision and accuracy. ` +
        `Best: ${c.best.summary.name}.`,
      table: c.table,
    },
    { heading: 'ROC AUC by model', figure: comparisonFigure(c.outcomes) },
    {
      heading: `Held-out test split (${c.nTest} customers), scored by ONNX Runtime`,
      table: {
        columns: [
          'model',
          'test AUC',
          'test F1 (positive)',
          'test accuracy',
          'temperature',
          'test ECE before → after',
          'max |ONNX - library|',
          'refit (s)',
        ],
        rows: c.outcomes.map((o) => [
          o.summary.name,
          o.test.rocAuc ?? NaN,
          o.test.perClass.find((p) => p.label === spec.positiveLabel)?.f1 ?? NaN,
          o.test.accuracy,
          o.calibration.temperature,
          `${o.calibration.test.eceBefore.toFixed(4)} → ${o.calibration.test.eceAfter.toFixed(4)}`,
          o.parityMaxAbsDiff.toExponential(2),
          o.fullFitSeconds,
        ]),
      },
    },
    {
      heading: 'Libraries',
      table: { columns: ['package', 'version'], rows: Object.entries(c.versions) },
    },
  ]);
}
