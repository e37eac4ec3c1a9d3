/**
 * Derived features as data: a small expression form over a validated record, authored in
 * notebooks/05_tabular.ipynb (./tabular.ts) and saved in a model's feature_transform.json, so that
 * every runtime evaluates the same saved expression: this interpreter in TypeScript, and the
 * python_function flavor's (src/py/convo_pyfunc.py), which holds no feature names or formulas.
 *
 * The forms, as JSON (every value is a float64 number; n-ary operations fold left to right):
 *   { "op": "col", "name": "tenure" }                      a number column's value
 *   { "op": "const", "value": 1 }                          a constant
 *   { "op": "add" | "mul" | "max" | "min", "args": [a, b, ...] }   a + b + ..., a * b * ..., max, min
 *   { "op": "sub" | "div", "args": [a, b] }                a - b, a / b (IEEE: x / 0 is ±Infinity)
 *   { "op": "eq", "col": "PhoneService", "value": "Yes" }  1 when a category column has the value, else 0
 *   { "op": "count", "cols": ["OnlineBackup", ...], "value": "Yes" }   how many of them have it
 */
import { z } from 'zod';
import type { ColumnDecl, FeatureRecord } from '../data/tabular-tasks';

export type DerivedExpr =
  | { op: 'col'; name: string }
  | { op: 'const'; value: number }
  | { op: 'add' | 'mul' | 'max' | 'min'; args: DerivedExpr[] }
  | { op: 'sub' | 'div'; args: [DerivedExpr, DerivedExpr] }
  | { op: 'eq'; col: string; value: string }
  | { op: 'count'; cols: string[]; value: string };

const name = z.string().min(1);

export const DerivedExprSchema: z.ZodType<DerivedExpr> = z.lazy(() =>
  z.discriminatedUnion('op', [
    z.object({ op: z.literal('col'), name }).strict(),
    z.object({ op: z.literal('const'), value: z.number().refine(Number.isFinite, 'must be finite') }).strict(),
    z.object({ op: z.enum(['add', 'mul', 'max', 'min']), args: z.array(DerivedExprSchema).min(2) }).strict(),
    z.object({ op: z.enum(['sub', 'div']), args: z.tuple([DerivedExprSchema, DerivedExprSchema]) }).strict(),
    z.object({ op: z.literal('eq'), col: name, value: z.string() }).strict(),
    z.object({ op: z.literal('count'), cols: z.array(name).min(1), value: z.string() }).strict(),
  ]),
) as z.ZodType<DerivedExpr>;

// ---- constructors (how the notebook writes expressions) ------------------------------------

export const col = (name: string): DerivedExpr => ({ op: 'col', name });
export const num = (value: number): DerivedExpr => ({ op: 'const', value });
export const add = (...args: DerivedExpr[]): DerivedExpr => ({ op: 'add', args });
export const mul = (...args: DerivedExpr[]): DerivedExpr => ({ op: 'mul', args });
export const sub = (a: DerivedExpr, b: DerivedExpr): DerivedExpr => ({ op: 'sub', args: [a, b] });
export const div = (a: DerivedExpr, b: DerivedExpr): DerivedExpr => ({ op: 'div', args: [a, b] });
export const max = (...args: DerivedExpr[]): DerivedExpr => ({ op: 'max', args });
export const min = (...args: DerivedExpr[]): DerivedExpr => ({ op: 'min', args });
export const eq = (column: string, value: string): DerivedExpr => ({ op: 'eq', col: column, value });
export const count = (cols: readonly string[], value: string): DerivedExpr => ({ op: 'count', cols: [...cols], value });

// ---- the interpreter -----------------------------------------------------------------------

const FOLD = {
  add: (a: number, b: number) => a + b,
  mul: (a: number, b: number) => a * b,
  sub: (a: number, b: number) => a - b,
  div: (a: number, b: number) => a / b,
  max: (a: number, b: number) => Math.max(a, b),
  min: (a: number, b: number) => Math.min(a, b),
} as const;

/** The value of `e` on a validated record (float64). */
export function evaluateDerived(e: DerivedExpr, r: FeatureRecord): number {
  switch (e.op) {
    case 'col':
      return Number(r[e.name]);
    case 'const':
      return e.value;
    case 'eq':
      return String(r[e.col]) === e.value ? 1 : 0;
    case 'count':
      return e.cols.reduce((n, c) => n + (String(r[c]) === e.value ? 1 : 0), 0);
    default: {
      const f = FOLD[e.op];
      return e.args.map((a) => evaluateDerived(a, r)).reduce((a, b) => f(a, b));
    }
  }
}

/**
 * The problems of `e` against the declared columns: `col` must name a number column, `eq` and
 * `count` category columns, and their value one the column declares. Empty when it is sound.
 */
export function derivedProblems(e: DerivedExpr, columns: readonly ColumnDecl[]): string[] {
  const decl = new Map(columns.map((c) => [c.name, c]));
  const category = (c: string, value: string): string[] => {
    const d = decl.get(c);
    if (!d) return [`unknown column "${c}"`];
    if (d.type !== 'category') return [`"${c}" is not a category column`];
    return d.values.includes(value) ? [] : [`"${c}" has no value ${JSON.stringify(value)}`];
  };
  switch (e.op) {
    case 'col': {
      const d = decl.get(e.name);
      return !d ? [`unknown column "${e.name}"`] : d.type !== 'number' ? [`"${e.name}" is not a number column`] : [];
    }
    case 'const':
      return [];
    case 'eq':
      return category(e.col, e.value);
    case 'count':
      return e.cols.flatMap((c) => category(c, e.value));
    default:
      return e.args.flatMap((a) => derivedProblems(a, columns));
  }
}

/** The expression, validated in form and against the columns; throws naming the feature and what is wrong. */
export function checkedDerived(feature: string, e: unknown, columns: readonly ColumnDecl[]): DerivedExpr {
  const parsed = DerivedExprSchema.safeParse(e);
  if (!parsed.success) throw new Error(`derived feature "${feature}": not an expression: ${parsed.error.message}`);
  const problems = derivedProblems(parsed.data, columns);
  if (problems.length) throw new Error(`derived feature "${feature}": ${problems.join('; ')}`);
  return parsed.data;
}
