// AUTO-GENERATED from notebooks/05_tabular.ipynb - edit the notebook, then run `make promote`.
// Checked by `make promote-check`: hand edits to this file are reported.

// cell tab-03
/**
 * Tabular features, authored in notebooks/05_tabular.ipynb: derived columns computed from a
 * validated record, then a fitted encoding (one-hot categories, standardised numbers) that turns a
 * record into a model's float32 input row. The fitted transform is saved with the model, so serving
 * applies exactly what training fitted. Derived features are data: expressions
 * (src/features/derived.ts) saved in the transform, which the TypeScript interpreter and the Python
 * flavor (src/py/convo_features.py) both evaluate; this cell is their one definition.
 */
import type { ColumnDecl, FeatureRecord, FeatureValue } from '../data/tabular-tasks';
import { add, checkedDerived, col, count, div, eq, evaluateDerived, max, num, sub } from './derived';
import type { DerivedExpr } from './derived';

/** A derived feature: a named expression over a validated record. */
export interface DerivedFeature {
  description: string;
  expr: DerivedExpr;
}

export const TELCO_ADD_ONS = [
  'MultipleLines',
  'OnlineSecurity',
  'OnlineBackup',
  'DeviceProtection',
  'TechSupport',
  'StreamingTV',
  'StreamingMovies',
];

/** TotalCharges / max(tenure, 1). */
export const chargesPerMonth = div(col('TotalCharges'), max(col('tenure'), num(1)));

/** Derived features by name. A saved transform carries the expressions of those it uses. */
export const DERIVED_FEATURES: Readonly<Record<string, DerivedFeature>> = {
  charges_per_tenure_month: {
    description: 'TotalCharges / max(tenure, 1): what the customer has paid per month so far',
    expr: chargesPerMonth,
  },
  monthly_vs_average_charge: {
    description: 'MonthlyCharges over the average paid so far: above 1 after a price rise or an upgrade',
    expr: div(col('MonthlyCharges'), max(chargesPerMonth, num(1e-6))),
  },
  services_count: {
    description: 'phone, internet and add-on services the customer has (0-9)',
    expr: add(eq('PhoneService', 'Yes'), sub(num(1), eq('InternetService', 'No')), count(TELCO_ADD_ONS, 'Yes')),
  },
};

/** The derived features each tabular task uses. */
export const TASK_DERIVED_FEATURES: Readonly<Record<string, readonly string[]>> = {
  'telco-churn': ['charges_per_tenure_month', 'monthly_vs_average_charge', 'services_count'],
};

export function derivedFeature(name: string): DerivedFeature {
  const f = DERIVED_FEATURES[name];
  if (!f) throw new Error(`unknown derived feature "${name}" (known: ${Object.keys(DERIVED_FEATURES).join(', ')})`);
  return f;
}

/**
 * The expressions of `derived`: those `saved` with a transform, validated against `columns`; a name
 * without one (transforms saved before expressions were) is this notebook's current definition.
 */
export function derivedExpressions(
  derived: readonly string[],
  columns: readonly ColumnDecl[],
  saved: Readonly<Record<string, unknown>> = {},
): Record<string, DerivedExpr> {
  return Object.fromEntries(
    derived.map((name) => [name, checkedDerived(name, saved[name] ?? derivedFeature(name).expr, columns)]),
  );
}

/** The record with its derived features added (pure); `expressions` default to this notebook's. */
export function withDerived(
  r: FeatureRecord,
  derived: readonly string[],
  expressions: Readonly<Record<string, DerivedExpr>> = {},
): Record<string, FeatureValue> {
  const out: Record<string, FeatureValue> = { ...r };
  for (const name of derived) out[name] = evaluateDerived(expressions[name] ?? derivedFeature(name).expr, r);
  return out;
}

// cell tab-05
/** The fitted encoding: what training learned about each column, saved as feature_transform.json. */
export interface FeatureTransform {
  version: 1;
  /** Input columns, as declared by the task (the serving schema is built from them). */
  columns: ColumnDecl[];
  derived: string[];
  /**
   * The derived features' expressions, as fitted: what every runtime evaluates. Transforms saved before
   * expressions were lack it; their names resolve through DERIVED_FEATURES (TypeScript only).
   */
  expressions?: Record<string, DerivedExpr>;
  /** Standardised numbers: input numeric columns, then derived features. */
  numeric: { name: string; mean: number; std: number }[];
  /** One-hot categories: one output per declared value (an all-zero row never occurs: values are validated). */
  categorical: { name: string; categories: string[] }[];
  /** Output column names in matrix order, e.g. `tenure`, `Contract=Two year`. */
  outputs: string[];
  /** A typical training record (median numbers, most frequent categories): the baseline of attributions. */
  reference: Record<string, FeatureValue>;
  /** Rows the transform was fitted on. */
  fittedRows: number;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export function mode(xs: string[]): string {
  const counts = new Map<string, number>();
  for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]![0];
}

/** Fits the encoding on training records (pure): means and standard deviations, category lists, reference. */
export function fitFeatureTransform(
  records: readonly FeatureRecord[],
  columns: readonly ColumnDecl[],
  derived: readonly string[],
): FeatureTransform {
  if (records.length === 0) throw new Error('cannot fit a feature transform on no records');
  const expressions = derivedExpressions(derived, columns);
  const rows = records.map((r) => withDerived(r, derived, expressions));
  const numericNames = [...columns.filter((c) => c.type === 'number').map((c) => c.name), ...derived];
  const numeric = numericNames.map((name) => {
    const xs = rows.map((r) => Number(r[name]));
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length;
    // A constant column keeps scale 1, so it maps to 0 rather than dividing by zero.
    return { name, mean, std: Math.sqrt(variance) || 1 };
  });
  const categorical = columns.flatMap((c) =>
    c.type === 'category' ? [{ name: c.name, categories: [...c.values] }] : [],
  );
  const reference: Record<string, FeatureValue> = {};
  for (const c of columns)
    reference[c.name] =
      c.type === 'number' ? median(records.map((r) => Number(r[c.name]))) : mode(records.map((r) => String(r[c.name])));
  return {
    version: 1,
    columns: columns.map((c) => ({ ...c })),
    derived: [...derived],
    expressions,
    numeric,
    categorical,
    outputs: [...numeric.map((n) => n.name), ...categorical.flatMap((c) => c.categories.map((v) => `${c.name}=${v}`))],
    reference,
    fittedRows: records.length,
  };
}

export const resolved = new WeakMap<FeatureTransform, Record<string, DerivedExpr>>();

/**
 * A transform's derived-feature expressions, validated (once per transform); loaders call it so that a
 * malformed expression or an unknown name fails at load rather than while scoring.
 */
export function transformExpressions(t: FeatureTransform): Record<string, DerivedExpr> {
  let e = resolved.get(t);
  if (!e) {
    e = derivedExpressions(t.derived, t.columns, t.expressions);
    resolved.set(t, e);
  }
  return e;
}

/** Encodes records into a row-major float32 matrix [records.length, outputs.length] (pure). */
export function applyFeatureTransform(t: FeatureTransform, records: readonly FeatureRecord[]): Float32Array {
  const width = t.outputs.length;
  const out = new Float32Array(records.length * width);
  const expressions = transformExpressions(t);
  records.forEach((record, i) => {
    const r = withDerived(record, t.derived, expressions);
    let j = i * width;
    for (const n of t.numeric) out[j++] = (Number(r[n.name]) - n.mean) / n.std;
    for (const c of t.categorical) {
      const k = c.categories.indexOf(String(r[c.name]));
      if (k >= 0) out[j + k] = 1;
      j += c.categories.length;
    }
  });
  return out;
}
