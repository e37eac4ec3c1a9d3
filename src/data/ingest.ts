/**
 * Validated ingestion of CSV and JSONL: every row is checked against a zod schema; a bad row is
 * never dropped silently but reported with file, row number, line and reason, and quarantined.
 * The load fails only when the bad share exceeds the dataset's threshold.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { z } from 'zod';

export interface BadRow {
  file: string;
  /** 1-based data row number (header excluded), as a spreadsheet user would count. */
  row: number;
  /** 1-based line in the file where the record starts (records may span lines). */
  line: number;
  reason: string;
  raw: unknown;
}

export interface IngestResult<T> {
  rows: T[];
  /** Row numbers of `rows`, parallel to it, so later stages can still point at the source. */
  rowNumbers: number[];
  /** Lines where `rows` start in the file, parallel to it. */
  lines: number[];
  bad: BadRow[];
  stats: { total: number; good: number; bad: number; badShare: number; reasons: Record<string, number> };
}

export class TooManyBadRowsError extends Error {
  constructor(
    readonly file: string,
    readonly badShare: number,
    readonly maxBadShare: number,
    readonly sample: BadRow[],
  ) {
    super(
      `${file}: ${(badShare * 100).toFixed(1)}% of rows are invalid ` +
        `(limit ${(maxBadShare * 100).toFixed(1)}%). First problems:\n` +
        sample.map((b) => `  row ${b.row} (line ${b.line}): ${b.reason}`).join('\n'),
    );
    this.name = 'TooManyBadRowsError';
  }
}

export interface IngestOptions<S extends z.ZodType> {
  schema: S;
  /** Fail when more than this share of rows is bad (0..1). */
  maxBadShare: number;
  /** Longest accepted text, in characters, per field checked by `textFields`. */
  maxTextChars?: number;
  /** Fields holding free text: checked for invalid UTF-8 and size. */
  textFields?: string[];
  /** Extra per-row check after the schema (e.g. "empty after cleaning"); return a reason to reject. */
  check?: (row: z.output<S>) => string | undefined;
}

const REPLACEMENT = '\uFFFD';

/** Human-readable reason from a zod error, naming the field. */
function zodReason(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || 'row'}: ${i.message}`).join('; ');
}

/** Validates already-parsed records (pure); used by both CSV and JSONL readers. */
export function validateRecords<S extends z.ZodType>(
  file: string,
  records: { value: unknown; line: number; parseError?: string }[],
  opts: IngestOptions<S>,
): IngestResult<z.output<S>> {
  const rows: z.output<S>[] = [];
  const rowNumbers: number[] = [];
  const lines: number[] = [];
  const bad: BadRow[] = [];
  const maxChars = opts.maxTextChars ?? 20_000;
  records.forEach((rec, i) => {
    const rowNo = i + 1;
    const reject = (reason: string) => bad.push({ file, row: rowNo, line: rec.line, reason, raw: rec.value });
    if (rec.parseError) return reject(rec.parseError);
    const obj = rec.value as Record<string, unknown>;
    for (const f of opts.textFields ?? []) {
      const v = obj?.[f];
      if (typeof v === 'string' && v.includes(REPLACEMENT)) return reject(`${f}: not valid UTF-8`);
      if (typeof v === 'string' && v.length > maxChars)
        return reject(`${f}: ${v.length} characters, over the ${maxChars} limit`);
    }
    const parsed = opts.schema.safeParse(obj);
    if (!parsed.success) return reject(zodReason(parsed.error));
    const extra = opts.check?.(parsed.data);
    if (extra) return reject(extra);
    rows.push(parsed.data);
    rowNumbers.push(rowNo);
    lines.push(rec.line);
  });
  const total = records.length;
  const reasons: Record<string, number> = {};
  for (const b of bad) {
    const key = b.reason.replace(/\d+ characters/, 'N characters');
    reasons[key] = (reasons[key] ?? 0) + 1;
  }
  return {
    rows,
    rowNumbers,
    lines,
    bad,
    stats: { total, good: rows.length, bad: bad.length, badShare: total ? bad.length / total : 0, reasons },
  };
}

/** Decodes bytes as UTF-8; invalid sequences become U+FFFD so the affected rows can be rejected. */
function decode(buf: Buffer): string {
  return new TextDecoder('utf-8', { fatal: false }).decode(buf).replace(/^\uFEFF/, '');
}

export function readCsvRecords(text: string): { value: unknown; line: number; parseError?: string }[] {
  const parsed = parse(text, {
    skip_empty_lines: true,
    relax_column_count: true,
    relax_quotes: false,
    info: true,
    bom: true,
  }) as { record: string[]; info: { lines: number } }[];
  const [header, ...records] = parsed;
  if (!header) return [];
  const columns = header.record;
  // info.lines is the line where a record ends; a record starts on the line after the previous one ended.
  let prevEnd = header.info.lines;
  return records.map(({ record, info }) => {
    const line = prevEnd + 1;
    prevEnd = info.lines;
    const value = Object.fromEntries(columns.map((c, i) => [c, record[i]]));
    const parseError =
      record.length !== columns.length
        ? `expected ${columns.length} columns (${columns.join(', ')}), found ${record.length}`
        : undefined;
    return { value, line, parseError };
  });
}

export function readJsonlRecords(text: string): { value: unknown; line: number; parseError?: string }[] {
  const out: { value: unknown; line: number; parseError?: string }[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    try {
      out.push({ value: JSON.parse(line), line: i + 1 });
    } catch (err) {
      out.push({ value: line.slice(0, 200), line: i + 1, parseError: `invalid JSON: ${(err as Error).message}` });
    }
  });
  return out;
}

/** Reads and validates a CSV or JSONL file (by extension); throws TooManyBadRowsError over the threshold. */
export function ingestFile<S extends z.ZodType>(file: string, opts: IngestOptions<S>): IngestResult<z.output<S>> {
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist. Run \`make data\` to fetch the datasets.`);
  const text = decode(fs.readFileSync(file));
  const ext = path.extname(file).toLowerCase();
  let records;
  try {
    records = ext === '.jsonl' || ext === '.ndjson' ? readJsonlRecords(text) : readCsvRecords(text);
  } catch (err) {
    throw new Error(`${file}: cannot be parsed as ${ext === '.jsonl' ? 'JSONL' : 'CSV'}: ${(err as Error).message}`);
  }
  const result = validateRecords(file, records, opts);
  if (result.stats.badShare > opts.maxBadShare)
    throw new TooManyBadRowsError(file, result.stats.badShare, opts.maxBadShare, result.bad.slice(0, 10));
  return result;
}

/** Writes quarantined rows as JSONL (one object per bad row, with its reason and row number). */
export function writeQuarantine(file: string, bad: BadRow[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bad.map((b) => JSON.stringify(b)).join('\n') + (bad.length ? '\n' : ''));
}

/**
 * Moves the valid rows `refuse` has a reason against into `bad` (a policy, not a malformed row: they do
 * not count towards the malformed share, which ingestFile has checked already).
 */
export function refuseRows<T>(
  file: string,
  res: IngestResult<T>,
  refuse: (row: T) => string | undefined,
): IngestResult<T> {
  const out: IngestResult<T> = { ...res, rows: [], rowNumbers: [], lines: [], bad: [...res.bad] };
  res.rows.forEach((row, i) => {
    const reason = refuse(row);
    if (reason) out.bad.push({ file, row: res.rowNumbers[i]!, line: res.lines[i]!, reason, raw: row });
    else {
      out.rows.push(row);
      out.rowNumbers.push(res.rowNumbers[i]!);
      out.lines.push(res.lines[i]!);
    }
  });
  out.bad.sort((a, b) => a.row - b.row);
  return out;
}
