/**
 * What a scoring request carries: the zod schemas of its bodies (which also feed the OpenAPI document)
 * and their reading into the served model's inputs, texts for a text model, validated records for a
 * tabular one. Every rejection is a 4xx whose message names the bad item.
 */
import { z } from 'zod';
import type { FeatureRecord } from '../data/tabular-tasks';
import type { RecordPredictor } from '../kinds';
import { invalidInput, ServeError, type Issue } from './errors';
import type { ServedModel } from './champion';

// Items are checked one by one in `invocationTexts`, so errors can name the bad item.
const textItem = z.unknown();
export const InvocationsSchema = z.union([
  z
    .object({
      dataframe_split: z.object({ columns: z.array(z.string()).optional(), data: z.array(z.array(z.unknown())) }),
    })
    .strict(),
  z.object({ dataframe_records: z.array(z.record(z.string(), z.unknown())) }).strict(),
  z.object({ instances: z.array(textItem) }).strict(),
  z.object({ inputs: z.union([z.array(textItem), z.object({ text: z.array(z.string()) })]) }).strict(),
]);
export const PredictSchema = z.object({ texts: z.array(z.string()) }).strict();
export const PredictRecordsSchema = z.object({ records: z.array(z.unknown()) }).strict();

export type ScoringRoute = '/predict' | '/invocations';

function issuesOf(err: z.ZodError): Issue[] {
  return err.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }));
}

/** Extracts the texts of an MLflow scoring request (any of its four JSON formats). */
export function invocationTexts(body: unknown): string[] {
  const parsed = InvocationsSchema.safeParse(body);
  if (!parsed.success) {
    throw invalidInput(
      'Body must be one of MLflow\'s scoring formats: {"dataframe_split": {"columns": ["text"], "data": [["..."]]}}, ' +
        '{"dataframe_records": [{"text": "..."}]}, {"instances": ["..."]} or {"inputs": ["..."]}',
    );
  }
  const b = parsed.data;
  const asText = (v: unknown, where: string): string => {
    if (typeof v === 'string') return v;
    if (v && typeof v === 'object' && typeof (v as { text?: unknown }).text === 'string')
      return (v as { text: string }).text;
    throw invalidInput(`${where}: expected a string (or an object with a "text" string)`);
  };
  if ('dataframe_split' in b) {
    const col = b.dataframe_split.columns ? b.dataframe_split.columns.indexOf('text') : 0;
    if (col < 0) throw invalidInput('dataframe_split.columns has no "text" column');
    return b.dataframe_split.data.map((row, i) => asText(row[col], `dataframe_split.data[${i}]`));
  }
  if ('dataframe_records' in b) return b.dataframe_records.map((r, i) => asText(r, `dataframe_records[${i}]`));
  if ('instances' in b) return b.instances.map((r, i) => asText(r, `instances[${i}]`));
  const inputs = b.inputs;
  return Array.isArray(inputs) ? inputs.map((r, i) => asText(r, `inputs[${i}]`)) : inputs.text;
}

/** One row of a tabular scoring request, as it arrived, with where it was in the body (for error messages). */
export interface RowAt {
  value: unknown;
  where: string;
}

/** The rows of an MLflow scoring request for a tabular model: objects keyed by column (any of the four formats). */
export function invocationRows(body: unknown): RowAt[] {
  const parsed = InvocationsSchema.safeParse(body);
  if (!parsed.success)
    throw invalidInput(
      'Body must be one of MLflow\'s scoring formats: {"dataframe_split": {"columns": [...], "data": [[...]]}}, ' +
        '{"dataframe_records": [{column: value, ...}]}, {"instances": [{...}]} or {"inputs": [{...}]}',
    );
  const b = parsed.data;
  if ('dataframe_split' in b) {
    const cols = b.dataframe_split.columns;
    if (!cols) throw invalidInput('dataframe_split needs "columns" (the feature column names) for this model');
    return b.dataframe_split.data.map((row, i) => {
      if (row.length !== cols.length)
        throw invalidInput(`dataframe_split.data[${i}]: ${row.length} values for ${cols.length} columns`);
      return { value: Object.fromEntries(cols.map((c, j) => [c, row[j]])), where: `dataframe_split.data[${i}]` };
    });
  }
  if ('dataframe_records' in b)
    return b.dataframe_records.map((value, i) => ({ value, where: `dataframe_records[${i}]` }));
  if ('instances' in b) return b.instances.map((value, i) => ({ value, where: `instances[${i}]` }));
  if (Array.isArray(b.inputs)) return b.inputs.map((value, i) => ({ value, where: `inputs[${i}]` }));
  throw invalidInput('inputs must be a list of records ({column: value}) for this model');
}

/** A row's column problems, for the rejected-rows log that monitoring reads. */
export type OnRejected = (issues: { column: string; message: string }[]) => void;

/** Validates rows against the model's columns; every problem names its row and column. */
export function parseRecords(
  predictor: RecordPredictor,
  rows: readonly RowAt[],
  onRejected?: OnRejected,
): { records: FeatureRecord[]; ids: (string | undefined)[] } {
  const issues: Issue[] = [];
  const records: FeatureRecord[] = [];
  const ids: (string | undefined)[] = [];
  for (const row of rows) {
    const r = predictor.parseRecord(row.value);
    const id = predictor.idColumn ? (row.value as Record<string, unknown> | null)?.[predictor.idColumn] : undefined;
    ids.push(typeof id === 'string' || typeof id === 'number' ? String(id).slice(0, 200) : undefined);
    if ('record' in r) {
      records.push(r.record);
      continue;
    }
    onRejected?.(r.issues.map((i) => ({ column: i.path, message: i.message })));
    issues.push(...r.issues.map((i) => ({ path: `${row.where}.${i.path}`, message: i.message })));
  }
  if (issues.length)
    throw invalidInput(
      `Invalid records: ${issues
        .slice(0, 5)
        .map((i) => `${i.path}: ${i.message}`)
        .join('; ')}${issues.length > 5 ? ` (and ${issues.length - 5} more)` : ''}`,
      issues,
    );
  return { records, ids };
}

export interface InputLimits {
  maxBatchTexts: number;
  maxTextChars: number;
}

function checkTexts(texts: string[], limits: InputLimits): void {
  if (texts.length === 0) throw invalidInput('No texts given');
  if (texts.length > limits.maxBatchTexts)
    throw new ServeError(
      'MLOPS_ERR_TOO_MANY_INPUTS',
      `${texts.length} texts in one request; the limit is ${limits.maxBatchTexts}. Split the batch.`,
    );
  const issues = texts.flatMap((t, i) =>
    t.trim() === ''
      ? [{ path: `texts.${i}`, message: 'empty text' }]
      : t.length > limits.maxTextChars
        ? [{ path: `texts.${i}`, message: `${t.length} characters, over the ${limits.maxTextChars} limit` }]
        : [],
  );
  if (issues.length)
    throw invalidInput(
      `Invalid texts: ${issues
        .slice(0, 5)
        .map((i) => `${i.path}: ${i.message}`)
        .join('; ')}`,
      issues,
    );
}

function checkCount(n: number, limits: InputLimits): void {
  if (n === 0) throw invalidInput('No records given');
  if (n > limits.maxBatchTexts)
    throw new ServeError(
      'MLOPS_ERR_TOO_MANY_INPUTS',
      `${n} records in one request; the limit is ${limits.maxBatchTexts}. Split the batch.`,
    );
}

/** What one request scores: texts for a text model, validated records for a tabular one. */
export type ScoreInputs =
  { kind: 'text'; texts: string[] } | { kind: 'record'; records: FeatureRecord[]; ids: (string | undefined)[] };

/** Reads a request body as the inputs of `model`'s kind (texts or records), validated. */
export function inputsFor(
  model: ServedModel,
  body: unknown,
  route: ScoringRoute,
  limits: InputLimits,
  onRejected?: OnRejected,
): ScoreInputs {
  const p = model.predictor;
  if (p.input === 'text') {
    let texts: string[];
    if (route === '/invocations') texts = invocationTexts(body);
    else {
      const parsed = PredictSchema.safeParse(body);
      if (!parsed.success) throw invalidInput('Body must be {"texts": ["...", ...]}', issuesOf(parsed.error));
      texts = parsed.data.texts;
    }
    checkTexts(texts, limits);
    return { kind: 'text', texts };
  }
  let rows: RowAt[];
  if (route === '/invocations') rows = invocationRows(body);
  else {
    const parsed = PredictRecordsSchema.safeParse(body);
    if (!parsed.success)
      throw invalidInput(
        `This model scores records: the body must be {"records": [{${p.columns
          .slice(0, 2)
          .map((c) => `"${c.name}": ...`)
          .join(', ')}, ...}]}`,
        issuesOf(parsed.error),
      );
    rows = parsed.data.records.map((value, i) => ({ value, where: `records[${i}]` }));
  }
  checkCount(rows.length, limits);
  return { kind: 'record', ...parseRecords(p, rows, onRejected) };
}
