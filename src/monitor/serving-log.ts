/** The serving log written by `make serve` (one JSON object per prediction), read back with validation. */
import fs from 'node:fs';
import { z } from 'zod';

export const ServingRecordSchema = z.object({
  ts: z.string(),
  route: z.string(),
  model: z.string(),
  version: z.string(),
  text_sha256: z.string(),
  text: z.string(),
  label: z.string(),
  probabilities: z.record(z.string(), z.number()),
  bucket: z.enum(['A', 'B', 'C']).optional(),
  latency_ms: z.number(),
});
export type ServingRecord = z.infer<typeof ServingRecordSchema>;

/** Records at or after `since`; malformed lines are counted, not fatal (the log is append-only). */
export function readServingLog(file: string, since?: Date): { records: ServingRecord[]; malformed: number } {
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist: nothing has been served yet (make serve writes it)`);
  const records: ServingRecord[] = [];
  let malformed = 0;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = ServingRecordSchema.parse(JSON.parse(line));
      if (!since || new Date(r.ts) >= since) records.push(r);
    } catch {
      malformed++;
    }
  }
  return { records, malformed };
}

/** Counts per day (UTC) and key, for time series. */
export function countsPerDay<T>(items: readonly T[], ts: (t: T) => string, key: (t: T) => string): { days: string[]; series: Record<string, number[]> } {
  const days = [...new Set(items.map((i) => ts(i).slice(0, 10)))].sort();
  const keys = [...new Set(items.map(key))].sort();
  const series = Object.fromEntries(keys.map((k) => [k, days.map(() => 0)]));
  for (const i of items) series[key(i)]![days.indexOf(ts(i).slice(0, 10))]! += 1;
  return { days, series };
}
