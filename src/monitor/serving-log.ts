/**
 * The serving log: one JSON object per prediction, in one file per UTC day
 * (`<dir>/predictions-YYYY-MM-DD.jsonl`), written by `make serve` and streamed back, line by line,
 * by `make monitor` and `make report`, so a log of many GB is never read into memory at once.
 * Several servers (tasks) may share the folder: readers keep only their model's records.
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { z } from 'zod';

export const ServingRecordSchema = z.object({
  ts: z.string(),
  route: z.string(),
  model: z.string(),
  version: z.string(),
  /** Text models: the request text's hash and its PII-masked text. */
  text_sha256: z.string().optional(),
  text: z.string().optional(),
  /** Tabular models: the validated feature record. */
  features: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
  /** Tabular models: the row's id (e.g. customerID) when the request sent it. */
  record_id: z.string().optional(),
  /** The served label: the fallback (out_of_scope) when the model judged the input out of scope. */
  label: z.string(),
  /** Models with an out-of-scope rule: the top class even when out of scope, and the verdict. */
  top_label: z.string().optional(),
  in_scope: z.boolean().optional(),
  confidence: z.number().optional(),
  probabilities: z.record(z.string(), z.number()),
  bucket: z.enum(['A', 'B', 'C']).optional(),
  latency_ms: z.number(),
});
export type ServingRecord = z.infer<typeof ServingRecordSchema>;

/**
 * A tabular row a request sent that could not be scored (a missing or wrong column): kept in
 * `rejected-YYYY-MM-DD.jsonl` beside the predictions, so monitoring can see the share of missing values
 * in what clients send, which the predictions alone (all valid) never show.
 */
export const RejectedRowSchema = z.object({
  ts: z.string(),
  route: z.string(),
  model: z.string(),
  version: z.string(),
  issues: z.array(z.object({ column: z.string(), message: z.string() })),
});
export type RejectedRow = z.infer<typeof RejectedRowSchema>;

export type LogKind = 'predictions' | 'rejected';
const dayFile = (kind: LogKind) => new RegExp(`^${kind}-(\\d{4}-\\d{2}-\\d{2})\\.jsonl$`);

export const servingLogFile = (dir: string, day: Date, kind: LogKind = 'predictions'): string =>
  path.join(dir, `${kind}-${day.toISOString().slice(0, 10)}.jsonl`);

/**
 * Appends records to the day's file, opening the next day's file at midnight UTC. A failing write
 * (disk full, folder removed) never throws into a request: it is counted, and the next write tries
 * a fresh file handle.
 */
export class ServingLogWriter {
  private stream: fs.WriteStream | undefined;
  private day = '';
  errors = 0;
  lastError: string | undefined;

  constructor(
    readonly dir: string,
    private readonly onError: (err: Error) => void = () => {},
    private readonly kind: LogKind = 'predictions',
    /** Day files older than this many days are deleted when a new day's file opens (undefined: kept). */
    private readonly retentionDays?: number,
  ) {}

  private fail(err: Error): void {
    this.errors++;
    this.lastError = err.message;
    this.stream?.destroy();
    this.stream = undefined;
    this.onError(err);
  }

  private open(now: Date): fs.WriteStream | undefined {
    const day = now.toISOString().slice(0, 10);
    if (this.stream && this.day === day) return this.stream;
    this.stream?.end();
    try {
      fs.mkdirSync(this.dir, { recursive: true });
    } catch (err) {
      this.fail(err as Error);
      return undefined;
    }
    const stream = fs.createWriteStream(servingLogFile(this.dir, now, this.kind), { flags: 'a' });
    stream.on('error', (err) => {
      if (this.stream === stream) this.fail(err);
    });
    this.stream = stream;
    this.day = day;
    if (this.retentionDays !== undefined)
      for (const f of expiredLogFiles(this.dir, now, this.retentionDays, this.kind)) fs.rmSync(f, { force: true });
    return stream;
  }

  write(records: readonly (ServingRecord | RejectedRow)[], now = new Date()): void {
    if (records.length === 0) return;
    try {
      this.open(now)?.write(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    } catch (err) {
      this.fail(err as Error);
    }
  }

  close(): Promise<void> {
    const s = this.stream;
    this.stream = undefined;
    return new Promise((resolve) => (s && !s.destroyed ? s.end(() => resolve()) : resolve()));
  }
}

/** Day files of `kind` in `dir` whose day is more than `keepDays` days before `now`'s (UTC). */
export function expiredLogFiles(dir: string, now: Date, keepDays: number, kind: LogKind = 'predictions'): string[] {
  const oldest = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - keepDays));
  const cut = oldest.toISOString().slice(0, 10);
  return fs
    .readdirSync(dir)
    .flatMap((f) => {
      const day = dayFile(kind).exec(f)?.[1];
      return day !== undefined && day < cut ? [path.join(dir, f)] : [];
    })
    .sort();
}

/** The log files to read: a single file, or a folder's day files from `since` on (oldest first). */
export function servingLogFiles(location: string, since?: Date, kind: LogKind = 'predictions'): string[] {
  if (!fs.existsSync(location))
    throw new Error(`${location} does not exist: nothing has been served yet (make serve writes it)`);
  if (!fs.statSync(location).isDirectory()) return [location];
  const from = since?.toISOString().slice(0, 10) ?? '';
  return fs
    .readdirSync(location)
    .map((f) => dayFile(kind).exec(f))
    .filter((m): m is RegExpExecArray => m !== null && m[1]! >= from)
    .map((m) => path.join(location, m[0]))
    .sort();
}

export interface ServingLogFilter {
  /** Keep only this registered model's predictions. */
  model?: string;
  since?: Date;
}

/**
 * Streams the records that pass the filter to `onRecord`; malformed lines are counted, not fatal
 * (the log is append-only, a crash can leave a torn last line).
 */
export function streamServingLog(
  location: string,
  filter: ServingLogFilter,
  onRecord: (r: ServingRecord) => unknown,
): Promise<{ records: number; malformed: number; otherModels: number }> {
  return streamLog(servingLogFiles(location, filter.since), ServingRecordSchema, filter, onRecord);
}

/** Streams the rejected rows of a log folder (none when the folder has no rejected-*.jsonl yet). */
export function streamRejected(
  location: string,
  filter: ServingLogFilter,
  onRow: (r: RejectedRow) => void,
): Promise<{ records: number; malformed: number; otherModels: number }> {
  const files = fs.statSync(location).isDirectory() ? servingLogFiles(location, filter.since, 'rejected') : [];
  return streamLog(files, RejectedRowSchema, filter, onRow);
}

async function streamLog<T extends { model: string; ts: string }>(
  files: readonly string[],
  schema: z.ZodType<T>,
  filter: ServingLogFilter,
  // Awaited: an async consumer (the churn report scores as it reads) holds the reading back.
  onRecord: (r: T) => unknown,
): Promise<{ records: number; malformed: number; otherModels: number }> {
  let records = 0;
  let malformed = 0;
  let otherModels = 0;
  for (const file of files) {
    const lines = readline.createInterface({ input: fs.createReadStream(file, 'utf8'), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line.trim()) continue;
      let r: T;
      try {
        r = schema.parse(JSON.parse(line));
      } catch {
        malformed++;
        continue;
      }
      if (filter.model !== undefined && r.model !== filter.model) {
        otherModels++;
        continue;
      }
      if (filter.since && new Date(r.ts) < filter.since) continue;
      records++;
      await onRecord(r);
    }
  }
  return { records, malformed, otherModels };
}

/** A uniform sample of at most `capacity` items from a stream of unknown length (reservoir sampling). */
export class Reservoir<T> {
  readonly items: T[] = [];
  seen = 0;

  constructor(
    private readonly capacity: number,
    private readonly random: () => number = Math.random,
  ) {}

  add(item: T): void {
    this.seen++;
    if (this.items.length < this.capacity) this.items.push(item);
    else {
      const j = Math.floor(this.random() * this.seen);
      if (j < this.capacity) this.items[j] = item;
    }
  }
}

/** Counts per day (UTC) and key, for time series. */
export function countsPerDay<T>(
  items: readonly T[],
  ts: (t: T) => string,
  key: (t: T) => string,
): { days: string[]; series: Record<string, number[]> } {
  const days = [...new Set(items.map((i) => ts(i).slice(0, 10)))].sort();
  const keys = [...new Set(items.map(key))].sort();
  const series = Object.fromEntries(keys.map((k) => [k, days.map(() => 0)]));
  for (const i of items) series[key(i)]![days.indexOf(ts(i).slice(0, 10))]! += 1;
  return { days, series };
}
