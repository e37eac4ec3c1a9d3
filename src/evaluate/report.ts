/** Evaluation artifacts (pure): the HTML page and the JSON a run logs next to its metrics. */
import { confusionMatrixFigure, curvesFigure, precisionRecallFigure, thresholdFigure } from '../plots/figures';
import { reportHtml, type ReportSection } from '../plots/html';
import type { Evaluation } from './metrics';

export function evaluationJson(e: Evaluation): string {
  const doc = {
    accuracy: e.accuracy,
    macro: e.macro,
    weighted: e.weighted,
    roc_auc: e.rocAuc ?? null,
    per_class: e.perClass,
    labels: e.labels,
    confusion: e.confusion,
    n: e.n,
    ...(e.binary
      ? { average_precision: e.binary.averagePrecision, positive: e.binary.positive, thresholds: e.binary.thresholds }
      : {}),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** What a run can plot about its training: the loss per step or epoch, and per-epoch train vs validation. */
export interface TrainingCurves {
  loss?: { x: number[]; y: number[]; per: 'step' | 'epoch' };
  /** Per-epoch series on one chart: e.g. train and validation loss, or validation macro-F1. */
  epochs?: { title: string; yTitle: string; series: Record<string, { x: number[]; y: number[] }> };
}

/** The evaluation page of a run: summary, confusion matrix, classification report, curves, binary views. */
export function evaluationHtml(title: string, e: Evaluation, curves: TrainingCurves = {}): string {
  const positiveShare = e.binary
    ? (e.perClass.find((c) => c.label === e.binary!.positive)?.support ?? 0) / Math.max(1, e.n)
    : 0;
  const sections: ReportSection[] = [
    {
      heading: 'Summary',
      table: {
        columns: ['metric', 'value'],
        rows: [
          ['accuracy', e.accuracy],
          ['macro F1', e.macro.f1],
          ['weighted F1', e.weighted.f1],
          ['macro precision', e.macro.precision],
          ['macro recall', e.macro.recall],
          ...(e.rocAuc !== undefined ? [['ROC AUC', e.rocAuc] as [string, number]] : []),
          ...(e.binary ? [['average precision', e.binary.averagePrecision] as [string, number]] : []),
          ['examples', e.n],
        ],
      },
    },
    { heading: 'Confusion matrix', figure: confusionMatrixFigure(e.confusion, e.labels) },
    { heading: 'Classification report', table: classificationReportTable(e) },
  ];
  if (e.binary)
    sections.push(
      {
        heading: 'Precision and recall',
        text:
          `For the imbalanced "${e.binary.positive}" class the default cut (the most probable label) is one choice ` +
          'among many: the curve and the table show what each threshold trades.',
        figure: precisionRecallFigure(e.binary.pr, e.binary.positive, e.binary.averagePrecision, positiveShare),
      },
      { heading: 'Threshold view', figure: thresholdFigure(e.binary.thresholds, e.binary.positive) },
      {
        heading: 'Thresholds',
        table: {
          columns: ['threshold', 'precision', 'recall', 'F1', 'share flagged'],
          rows: e.binary.thresholds.map((r) => [r.threshold.toFixed(2), r.precision, r.recall, r.f1, r.flagged]),
        },
      },
    );
  if (curves.loss)
    sections.push({
      heading: 'Training loss',
      figure: curvesFigure(
        { 'train loss': curves.loss },
        `Training loss per ${curves.loss.per}`,
        curves.loss.per === 'step' ? 'optimizer step' : 'epoch',
        'cross-entropy',
      ),
    });
  if (curves.epochs)
    sections.push({
      heading: 'Train and validation',
      figure: curvesFigure(curves.epochs.series, curves.epochs.title, 'epoch', curves.epochs.yTitle),
    });
  return reportHtml(title, sections);
}

/** scikit-learn's classification report as a table: one row per class, then accuracy and the averages. */
export function classificationReportTable(e: Evaluation): { columns: string[]; rows: (string | number)[][] } {
  return {
    columns: ['label', 'precision', 'recall', 'f1-score', 'support'],
    rows: [
      ...e.perClass.map((c) => [c.label, c.precision, c.recall, c.f1, c.support]),
      ['accuracy', '', '', e.accuracy, e.n],
      ['macro avg', e.macro.precision, e.macro.recall, e.macro.f1, e.n],
      ['weighted avg', e.weighted.precision, e.weighted.recall, e.weighted.f1, e.n],
    ],
  };
}
