/**
 * A live view of a fine-tuning run in a notebook cell (progress bar, loss, speed, a row per epoch).
 * Lives with the training loop because it is typed by the loop's events; plots/ stays below train/.
 */
import { escapeHtml } from '../plots/html';
import { tableHtml } from '../plots/notebook';
import type { FineTuneEvent } from './finetune';

const EPOCH_COLUMNS = ['epoch', 'train loss', 'val accuracy', 'val macro-F1', 'seconds', ''];

/**
 * A live view of a fine-tuning run for notebooks: returns an event handler that re-renders one HTML
 * block (progress bar, current loss, learning rate, speed, and a row per finished epoch) through
 * `render`, which should update a single display in place (tslab.newDisplay().html).
 */
export function fineTuneProgress(render: (html: string) => void, minIntervalMs = 500): (e: FineTuneEvent) => void {
  let total = 0;
  let step = 0;
  let last = '';
  let lastDraw = 0;
  const epochs: (string | number)[][] = [];
  const draw = (force: boolean) => {
    if (!force && Date.now() - lastDraw < minIntervalMs) return;
    lastDraw = Date.now();
    const pct = total ? (100 * step) / total : 0;
    render(
      `<div style="font-family:monospace"><div style="background:#eee;width:420px;height:10px">` +
        `<div style="background:#1f77b4;width:${pct.toFixed(1)}%;height:10px"></div></div>` +
        `<div>step ${step}/${total} ${escapeHtml(last)}</div>` +
        `${epochs.length ? tableHtml(EPOCH_COLUMNS, epochs) : ''}</div>`,
    );
  };
  return (e) => {
    if (e.type === 'start') {
      total = e.totalSteps;
      step = e.resumedFromStep ?? 0;
      last = e.resumedFromStep !== undefined ? `(resumed at step ${e.resumedFromStep})` : '';
      draw(true);
    } else if (e.type === 'step') {
      step = e.globalStep;
      last =
        `| epoch ${e.epoch + 1} | loss ${e.loss.toFixed(4)} | lr ${e.lr.toExponential(2)} | ` +
        `${e.examplesPerSecond.toFixed(1)} ex/s`;
      draw(step === total);
    } else if (e.type === 'epoch') {
      epochs.push([
        e.record.epoch,
        e.record.trainLoss,
        e.record.valAccuracy,
        e.record.valMacroF1,
        Math.round(e.record.seconds),
        e.improved ? 'best so far' : '',
      ]);
      draw(true);
    } else if (e.type === 'early-stop') {
      last = `early stop after epoch ${e.epoch} (best: epoch ${e.bestEpoch})`;
      draw(true);
    }
  };
}
