/** Evaluation artifacts (pure): the HTML page and the JSON a run logs next to its metrics. */
import { confusionMatrixFigure, curvesFigure } from '../plots/figures';
import { reportHtml } from '../plots/html';
import { classificationReport, type Evaluation } from './metrics';

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
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export function evaluationHtml(title: string, e: Evaluation, lossCurve?: { x: number[]; y: number[] }): string {
  return reportHtml(title, [
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
          ['examples', e.n],
        ],
      },
    },
    { heading: 'Confusion matrix', figure: confusionMatrixFigure(e.confusion, e.labels) },
    {
      heading: 'Per class',
      table: {
        columns: ['label', 'precision', 'recall', 'f1', 'support'],
        rows: e.perClass.map((c) => [c.label, c.precision, c.recall, c.f1, c.support]),
      },
    },
    ...(lossCurve
      ? [{ heading: 'Training loss', figure: curvesFigure({ train_loss: lossCurve }, 'Training loss per epoch') }]
      : []),
    { heading: 'Classification report', text: classificationReport(e) },
  ]);
}
