/**
 * Rich output for the tslab kernel: plotly charts and HTML tables rendered inline in Jupyter.
 * `plotlyBootstrap()` loads the plotly bundle into the page once; each `figureHtml` then draws.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
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
