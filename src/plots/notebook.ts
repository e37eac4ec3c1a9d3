/**
 * Rich output for the tslab kernel: plotly charts and HTML tables rendered inline in Jupyter.
 * `plotlyBootstrap()` loads the plotly bundle into the page once; each `figureHtml` then draws.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { escapeHtml, type Figure } from './html';

export function plotlyBootstrap(): string {
  return `<script>${fs.readFileSync(require.resolve('plotly.js-dist-min/plotly.min.js'), 'utf8')}</script><span style="color:#888">plotly ready</span>`;
}

export function figureHtml(fig: Figure, height = 420): string {
  const id = `fig-${randomUUID()}`;
  return `<div id="${id}" style="height:${height}px"></div><script>Plotly.newPlot('${id}', ${JSON.stringify(fig.data)}, ${JSON.stringify({ margin: { t: 40 }, ...fig.layout })}, {responsive: true});</script>`;
}

export function tableHtml(columns: string[], rows: (string | number)[][]): string {
  const cell = (v: string | number) => `<td style="text-align:left;white-space:pre-wrap">${escapeHtml(typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : String(v))}</td>`;
  return `<table><thead><tr>${columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('')}</tbody></table>`;
}
