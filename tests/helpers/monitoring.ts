import fs from 'node:fs';
import path from 'node:path';

const dir = path.join(__dirname, '..', '..', 'monitoring');

/** Every PromQL expression in the alert rules and the Grafana dashboard. */
export function monitoringExpressions(): string[] {
  const rules = fs.readFileSync(path.join(dir, 'alerts.yml'), 'utf8');
  const dashboard = JSON.parse(fs.readFileSync(path.join(dir, 'grafana', 'convo-mlops.json'), 'utf8')) as {
    panels: { targets: { expr: string }[] }[];
  };
  const ruleExprs = [...rules.matchAll(/expr: (\|\n(?:\s{10,}.*\n)+|.*)/g)].map((m) => m[1]!.replace(/^\|/, ''));
  return [...ruleExprs, ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr))];
}

const PROMQL_WORDS = new Set([
  'sum',
  'by',
  'rate',
  'increase',
  'histogram_quantile',
  'or',
  'and',
  'absent',
  'time',
  'le',
  'job',
  'route',
  'status',
  'instance',
  'label',
  'version',
  'task',
  'up',
  'without',
  'on',
  'avg',
  'max',
  'min',
]);

/** The metric names those expressions read (histograms by their base name), excluding `up`. */
export function referencedMetrics(exprs: string[]): Set<string> {
  const names = new Set<string>();
  for (const e of exprs) {
    const stripped = e
      .replace(/\{[^}]*\}/g, '')
      .replace(/"[^"]*"/g, '')
      .replace(/\[[^\]]*\]/g, '');
    for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
      const w = m[0];
      if (PROMQL_WORDS.has(w) || /^\d/.test(w)) continue;
      names.add(w.replace(/_(bucket|sum|count)$/, ''));
    }
  }
  return names;
}
