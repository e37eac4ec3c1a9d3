// AUTO-GENERATED from notebooks/01_eda.ipynb - edit the notebook, then run `make promote`.
// Checked by `make promote-check`: hand edits to this file are reported.

// cell eda-03
/** Column profile of tabular rows (pure): what pandas-profiling's overview shows. */
export interface ColumnProfile {
  column: string;
  type: 'number' | 'string' | 'boolean' | 'mixed' | 'empty';
  count: number;
  missing: number;
  distinct: number;
  min?: number;
  max?: number;
  mean?: number;
  top: { value: string; count: number }[];
}

export function profileColumns(rows: readonly Record<string, unknown>[], topN = 5): ColumnProfile[] {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return columns.map((column) => {
    const values = rows.map((r) => r[column]);
    const present = values.filter((v) => v !== undefined && v !== null && v !== '');
    const types = new Set(present.map((v) => typeof v));
    const only = [...types][0] as 'number' | 'string' | 'boolean';
    const type = present.length === 0 ? 'empty' : types.size > 1 ? 'mixed' : only;
    const counts = new Map<string, number>();
    for (const v of present) counts.set(String(v), (counts.get(String(v)) ?? 0) + 1);
    const top = [...counts.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, topN)
      .map(([value, count]) => ({ value, count }));
    const nums = type === 'number' ? (present as number[]) : [];
    return {
      column,
      type,
      count: rows.length,
      missing: rows.length - present.length,
      distinct: counts.size,
      ...(nums.length
        ? { min: Math.min(...nums), max: Math.max(...nums), mean: nums.reduce((a, b) => a + b, 0) / nums.length }
        : {}),
      top,
    };
  });
}

// cell eda-04
/** The profile as an HTML page (for MLflow artifacts). */
export function profileHtml(title: string, profile: ColumnProfile[]): string {
  const esc = (s: string) => s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!);
  const fmt = (x?: number) => (x === undefined ? '' : Number.isInteger(x) ? String(x) : x.toFixed(2));
  const rows = profile
    .map((p) => {
      const top = esc(p.top.map((t) => `${t.value.slice(0, 40)} (${t.count})`).join(', '));
      const cells = [esc(p.column), p.type, p.count, p.missing, p.distinct, fmt(p.min), fmt(p.mean), fmt(p.max), top];
      return `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;
    })
    .join('');
  const style =
    'body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}' +
    'td,th{border:1px solid #ddd;padding:4px 8px}';
  const columns = ['column', 'type', 'rows', 'missing', 'distinct', 'min', 'mean', 'max', 'most frequent'];
  const head = columns.map((h) => `<th>${h}</th>`).join('');
  return (
    `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>${style}</style></head>` +
    `<body><h1>${esc(title)}</h1><table><tr>${head}</tr>${rows}</table></body></html>`
  );
}

// cell eda-23
/** Positive rate per value of one column (pure): the table a churn analyst reads first. */
export function rateByValue(
  rows: readonly Record<string, unknown>[],
  column: string,
  positive: (row: Record<string, unknown>) => boolean,
): { value: string; n: number; rate: number }[] {
  const groups = new Map<string, { n: number; pos: number }>();
  for (const r of rows) {
    const key = String(r[column]);
    const g = groups.get(key) ?? { n: 0, pos: 0 };
    g.n += 1;
    g.pos += positive(r) ? 1 : 0;
    groups.set(key, g);
  }
  return [...groups.entries()]
    .map(([value, g]) => ({ value, n: g.n, rate: g.pos / g.n }))
    .sort((a, b) => b.rate - a.rate);
}

/** Pearson correlation matrix of numeric columns (pure); a constant column correlates 0 with the others. */
export function correlationMatrix(rows: readonly Record<string, unknown>[], columns: readonly string[]): number[][] {
  const xs = columns.map((c) => rows.map((r) => Number(r[c])));
  const stats = xs.map((x) => {
    const mean = x.reduce((a, b) => a + b, 0) / x.length;
    return { mean, sd: Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length) };
  });
  return xs.map((a, i) =>
    xs.map((b, j) => {
      if (i === j) return 1;
      if (stats[i]!.sd === 0 || stats[j]!.sd === 0) return 0;
      let s = 0;
      for (let k = 0; k < a.length; k++) s += (a[k]! - stats[i]!.mean) * (b[k]! - stats[j]!.mean);
      return s / a.length / (stats[i]!.sd * stats[j]!.sd);
    }),
  );
}
