/**
 * Self-contained HTML reports with plotly charts: the plotly bundle is inlined, so a report logged
 * to MLflow (or mailed) renders with no network access.
 */
import fs from 'node:fs';

export interface Figure {
  data: Record<string, unknown>[];
  layout?: Record<string, unknown>;
}

export interface ReportSection {
  heading: string;
  /** Plain text (escaped) shown above the figure or table. */
  text?: string;
  /** Text whose spacing matters (aligned columns), shown in a monospace block. */
  preformatted?: string;
  figure?: Figure;
  table?: { columns: string[]; rows: (string | number)[][] };
}

let plotlySource: string | undefined;
function plotlyBundle(): string {
  plotlySource ??= fs.readFileSync(require.resolve('plotly.js-dist-min/plotly.min.js'), 'utf8');
  return plotlySource;
}

export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function tableHtml(t: NonNullable<ReportSection['table']>): string {
  const fmt = (v: string | number) =>
    escapeHtml(typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v);
  return `<table><thead><tr>${t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead><tbody>${t.rows
    .map((r) => `<tr>${r.map((v) => `<td>${fmt(v)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/** A complete HTML page: title, then each section's text, table and chart. */
export function reportHtml(title: string, sections: ReportSection[], opts: { inlinePlotly?: boolean } = {}): string {
  const hasFigures = sections.some((s) => s.figure);
  const script = !hasFigures
    ? ''
    : opts.inlinePlotly === false
      ? '<script src="https://cdn.plot.ly/plotly-3.1.1.min.js"></script>'
      : `<script>${plotlyBundle()}</script>`;
  const body = sections
    .map((s, i) => {
      const parts = [`<h2>${escapeHtml(s.heading)}</h2>`];
      if (s.text) parts.push(`<p>${escapeHtml(s.text)}</p>`);
      if (s.preformatted) parts.push(`<pre>${escapeHtml(s.preformatted)}</pre>`);
      if (s.table) parts.push(tableHtml(s.table));
      if (s.figure) {
        // A figure that sets its own height (a 77-class confusion matrix) gets a container that tall.
        const h = s.figure.layout?.height;
        parts.push(`<div id="fig${i}" class="fig"${typeof h === 'number' ? ` style="height:${h}px"` : ''}></div>`);
        parts.push(
          `<script>Plotly.newPlot('fig${i}', ${JSON.stringify(s.figure.data)}, ` +
            `${JSON.stringify({ margin: { t: 40 }, ...s.figure.layout })}, {responsive: true});</script>`,
        );
      }
      return `<section>${parts.join('\n')}</section>`;
    })
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f5f5f5}
td:first-child,th:first-child{text-align:left}.fig{height:420px}</style>
${script}</head><body><h1>${escapeHtml(title)}</h1>
${body}
</body></html>
`;
}
