/**
 * Rich output for the tslab kernel: plotly charts and HTML tables rendered inline in Jupyter.
 * `plotlyBootstrap()` loads the plotly bundle into the page once; each `figureHtml` then draws.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { FineTuneEvent } from '../train/finetune';
import { escapeHtml, type Figure } from './html';

export function plotlyBootstrap(): string {
  return (
    `<script>${fs.readFileSync(require.resolve('plotly.js-dist-min/plotly.min.js'), 'utf8')}</script><span ` +
    `style="color:#888">plotly ready</span>`
  );
}

/** A figure for a notebook cell: as tall as its layout asks (a 77-class matrix), else `height`. */
export function figureHtml(fig: Figure, height = 420): string {
  if (typeof fig.layout?.height === 'number') height = fig.layout.height;
  const id = `fig-${randomUUID()}`;
  return (
    `<div id="${id}" style="height:${height}px"></div><script>Plotly.newPlot('${id}', ` +
    `${JSON.stringify(fig.data)}, ${JSON.stringify({ margin: { t: 40 }, ...fig.layout })}, ` +
    `{responsive: true});</script>`
  );
}

export function tableHtml(columns: string[], rows: (string | number)[][]): string {
  const text = (v: string | number) => (typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : String(v));
  const cell = (v: string | number) => `<td style="text-align:left;white-space:pre-wrap">${escapeHtml(text(v))}</td>`;
  const head = columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('');
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

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
