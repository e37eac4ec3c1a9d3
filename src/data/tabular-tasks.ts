/**
 * Tabular tasks (account and usage features), declared like the text tasks in ./tasks.ts: which raw
 * file, which columns with which types, how the label is read, how it is split. The row schema is
 * built from the column declarations, so ingestion (CSV strings) and serving (JSON records) check a
 * row with the same rules and name the same column when one is wrong.
 */
import { z } from 'zod';
import type { SplitSpec } from './tasks';

/** One input column: a number (optionally whole and bounded) or a category from a closed set. */
export type ColumnDecl =
  | { name: string; type: 'number'; integer?: boolean; min?: number; max?: number; blankReason?: string }
  | { name: string; type: 'category'; values: readonly string[] };

export type FeatureValue = string | number;
/** A validated input row of a tabular model: column name -> value. */
export type FeatureRecord = Readonly<Record<string, FeatureValue>>;

export interface TabularTaskSpec {
  name: string;
  description: string;
  dataset: string;
  /** Path under data/raw/. */
  file: string;
  /** Column that identifies a row (a customer); kept in the feature table, never a feature. */
  idColumn: string;
  labelColumn: string;
  /** Raw label value -> class name. */
  labelValues: Record<string, string>;
  positiveLabel: string;
  columns: readonly ColumnDecl[];
  maxBadShare: number;
  split: SplitSpec;
  notes?: string;
}

const numberFrom = (c: Extract<ColumnDecl, { type: 'number' }>) =>
  z.unknown().transform((v, ctx): number => {
    const fail = (message: string) => {
      ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    };
    // CSV cells arrive as strings; a blank cell is missing (with the task's explanation), never 0.
    if (v === undefined || v === null || (typeof v === 'string' && v.trim() === ''))
      return fail(c.blankReason ?? 'missing');
    const x = typeof v === 'string' ? Number(v) : v;
    if (typeof x !== 'number' || !Number.isFinite(x)) return fail(`must be a number (got ${JSON.stringify(v)})`);
    if (c.integer && !Number.isInteger(x)) return fail(`must be a whole number (got ${x})`);
    if (c.min !== undefined && x < c.min) return fail(`must be at least ${c.min} (got ${x})`);
    if (c.max !== undefined && x > c.max) return fail(`must be at most ${c.max} (got ${x})`);
    return x;
  });

const categoryFrom = (c: Extract<ColumnDecl, { type: 'category' }>) =>
  z.preprocess(
    (v) => (typeof v === 'number' ? String(v) : v),
    z.enum(c.values as [string, ...string[]], {
      error: (iss) =>
        iss.input === undefined
          ? 'missing'
          : `must be one of ${c.values.map((v) => JSON.stringify(v)).join(', ')} ` +
            `(got ${JSON.stringify(iss.input)})`,
    }),
  ) as unknown as z.ZodType<string>;

const columnSchemas = (columns: readonly ColumnDecl[]) =>
  Object.fromEntries(columns.map((c) => [c.name, c.type === 'number' ? numberFrom(c) : categoryFrom(c)]));

/** The zod schema of a feature record: exactly the declared columns, each checked by its declaration. */
export function recordSchema(columns: readonly ColumnDecl[]): z.ZodType<FeatureRecord> {
  return z.object(columnSchemas(columns)) as unknown as z.ZodType<FeatureRecord>;
}

export interface RawTabularRow {
  id: string;
  /** The class name (the raw label mapped through `labelValues`). */
  label: string;
  features: FeatureRecord;
}

/** The schema of a raw (flat) row: id, label and the feature columns; other columns are ignored. */
export function rawRowSchema(spec: TabularTaskSpec): z.ZodType<RawTabularRow> {
  const labels = Object.keys(spec.labelValues) as [string, ...string[]];
  return z
    .object({
      [spec.idColumn]: z
        .string({ error: `${spec.idColumn} is missing` })
        .trim()
        .min(1, `${spec.idColumn} is empty`),
      [spec.labelColumn]: z.enum(labels, { error: `${spec.labelColumn} must be one of ${labels.join(', ')}` }),
      ...columnSchemas(spec.columns),
    })
    .transform((r) => ({
      id: String(r[spec.idColumn]),
      label: spec.labelValues[String(r[spec.labelColumn])]!,
      features: Object.fromEntries(spec.columns.map((c) => [c.name, r[c.name]])) as FeatureRecord,
    })) as unknown as z.ZodType<RawTabularRow>;
}

const yesNo = ['Yes', 'No'] as const;
const internetAddOn = ['Yes', 'No', 'No internet service'] as const;

export const TABULAR_TASKS = {
  'telco-churn': {
    name: 'telco-churn',
    description: 'Will a telecom customer churn, judged from account, service and billing features (IBM Telco).',
    dataset: 'telco-churn',
    file: 'telco-churn/Telco-Customer-Churn.csv',
    idColumn: 'customerID',
    labelColumn: 'Churn',
    labelValues: { Yes: 'yes', No: 'no' },
    positiveLabel: 'yes',
    columns: [
      { name: 'gender', type: 'category', values: ['Female', 'Male'] },
      { name: 'SeniorCitizen', type: 'category', values: ['0', '1'] },
      { name: 'Partner', type: 'category', values: yesNo },
      { name: 'Dependents', type: 'category', values: yesNo },
      { name: 'tenure', type: 'number', integer: true, min: 0, max: 1200 },
      { name: 'PhoneService', type: 'category', values: yesNo },
      { name: 'MultipleLines', type: 'category', values: ['Yes', 'No', 'No phone service'] },
      { name: 'InternetService', type: 'category', values: ['DSL', 'Fiber optic', 'No'] },
      { name: 'OnlineSecurity', type: 'category', values: internetAddOn },
      { name: 'OnlineBackup', type: 'category', values: internetAddOn },
      { name: 'DeviceProtection', type: 'category', values: internetAddOn },
      { name: 'TechSupport', type: 'category', values: internetAddOn },
      { name: 'StreamingTV', type: 'category', values: internetAddOn },
      { name: 'StreamingMovies', type: 'category', values: internetAddOn },
      { name: 'Contract', type: 'category', values: ['Month-to-month', 'One year', 'Two year'] },
      { name: 'PaperlessBilling', type: 'category', values: yesNo },
      {
        name: 'PaymentMethod',
        type: 'category',
        values: ['Electronic check', 'Mailed check', 'Bank transfer (automatic)', 'Credit card (automatic)'],
      },
      { name: 'MonthlyCharges', type: 'number', min: 0 },
      {
        name: 'TotalCharges',
        type: 'number',
        min: 0,
        blankReason: 'blank (a customer in their first month has not been billed yet)',
      },
    ],
    // 11 of 7,043 rows have a blank TotalCharges: quarantined and reported, not coerced to 0.
    maxBadShare: 0.01,
    split: { seed: 42, validationShare: 0.1, testShare: 0.2 },
    notes: 'About 26.5% churn. Published ROC AUC on this data is about 0.84-0.85.',
  },
} as const satisfies Record<string, TabularTaskSpec>;

export type TabularTaskName = keyof typeof TABULAR_TASKS;
export const TABULAR_TASK_NAMES = Object.keys(TABULAR_TASKS) as TabularTaskName[];

export function isTabularTask(name: string): boolean {
  return Object.hasOwn(TABULAR_TASKS, name);
}

export function tabularTaskSpec(name: string): TabularTaskSpec {
  const t = (TABULAR_TASKS as Record<string, TabularTaskSpec>)[name];
  if (!t) throw new Error(`Unknown tabular task "${name}". Tabular tasks: ${TABULAR_TASK_NAMES.join(', ')}`);
  return t;
}
