/**
 * Where the feedback loop keeps its files, and the only module that reads or writes them. One folder
 * per task under data/feedback/ (batches as sent, the production slice, the reviewed out-of-scope
 * queries) and the reviewed training rows in data/incoming/<task>/, where `make retrain` already reads
 * new labelled data. Every write replaces a whole file atomically: a crash leaves the old file or the
 * new one, never half of one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { matchKey } from '../data/leakage';
import { csvLine } from '../io/csv';
import { writeFileAtomic } from '../io/files';
import { estimateSlice, type SliceEstimate } from './slice';
import {
  BatchManifestSchema,
  destinationOf,
  ReviewedRowSchema,
  type BatchManifest,
  type ReviewedDestination,
  type ReviewedRow,
} from './types';

export interface FeedbackPaths {
  /** data/feedback/<task> */
  dir: string;
  batches: string;
  /** data/incoming/<task>: reviewed training rows go here. */
  incoming: string;
  /** data/quarantine/review/<task> */
  quarantine: string;
}

export const feedbackPaths = (dataDir: string, task: string): FeedbackPaths => ({
  dir: path.join(dataDir, 'feedback', task),
  batches: path.join(dataDir, 'feedback', task, 'batches'),
  incoming: path.join(dataDir, 'incoming', task),
  quarantine: path.join(dataDir, 'quarantine', 'review', task),
});

const FILE_PREFIX: Record<ReviewedDestination, string> = {
  training: 'reviewed',
  slice: 'slice',
  correction: 'corrections',
  out_of_scope: 'out-of-scope',
};

/** The file a reviewed row of `batchId` is kept in. */
export function reviewedFile(p: FeedbackPaths, destination: ReviewedDestination, batchId: string): string {
  return path.join(destination === 'training' ? p.incoming : p.dir, `${FILE_PREFIX[destination]}-${batchId}.jsonl`);
}

export const batchFile = (p: FeedbackPaths, batchId: string, ext: 'json' | 'csv'): string =>
  path.join(p.batches, `${batchId}.${ext}`);

export const BATCH_CSV_COLUMNS = [
  'item_id',
  'batch_id',
  'reason',
  'predicted',
  'top_label',
  'confidence',
  'text',
  'label',
  'annotator',
] as const;

/** Writes a batch as sent: its manifest (the reference every import is checked against) and a CSV to label. */
export function writeBatch(p: FeedbackPaths, batch: BatchManifest): { manifest: string; csv: string } {
  const manifest = batchFile(p, batch.batch_id, 'json');
  const csv = batchFile(p, batch.batch_id, 'csv');
  writeFileAtomic(manifest, `${JSON.stringify(BatchManifestSchema.parse(batch), null, 1)}\n`);
  const lines = [
    BATCH_CSV_COLUMNS.join(','),
    ...batch.items.map((i) =>
      csvLine([i.item_id, i.batch_id, i.reason, i.predicted, i.top_label, i.confidence.toFixed(4), i.text, '', '']),
    ),
  ];
  writeFileAtomic(csv, `${lines.join('\n')}\n`);
  return { manifest, csv };
}

/** The task's batches, by id; a manifest that does not parse stops the import (it is the reference). */
export function readBatches(p: FeedbackPaths): Map<string, BatchManifest> {
  const out = new Map<string, BatchManifest>();
  if (!fs.existsSync(p.batches)) return out;
  for (const f of fs.readdirSync(p.batches).filter((n) => n.endsWith('.json'))) {
    const file = path.join(p.batches, f);
    const parsed = BatchManifestSchema.safeParse(JSON.parse(fs.readFileSync(file, 'utf8')));
    if (!parsed.success) throw new Error(`${file} is not a review batch manifest: ${parsed.error.issues[0]?.message}`);
    if (`${parsed.data.batch_id}.json` !== f) throw new Error(`${file} holds batch ${parsed.data.batch_id}`);
    out.set(parsed.data.batch_id, parsed.data);
  }
  return out;
}

/** Match keys of every text sent in an earlier batch: not sent again. */
export const sentKeys = (batches: ReadonlyMap<string, BatchManifest>): Set<string> =>
  new Set([...batches.values()].flatMap((b) => b.items.map((i) => matchKey(i.text))));

function readRows(file: string): ReviewedRow[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l, i) => {
      const r = ReviewedRowSchema.safeParse(JSON.parse(l));
      if (!r.success) throw new Error(`${file} line ${i + 1}: ${r.error.issues[0]?.message}`);
      return r.data;
    });
}

/** Every reviewed row kept for `destination`, across batches. */
export function readReviewed(p: FeedbackPaths, destination: ReviewedDestination): ReviewedRow[] {
  const dir = destination === 'training' ? p.incoming : p.dir;
  if (!fs.existsSync(dir)) return [];
  const prefix = `${FILE_PREFIX[destination]}-`;
  return fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.jsonl'))
    .sort()
    .flatMap((f) => readRows(path.join(dir, f)));
}

/** The production slice's estimate per version, from the control rows kept so far. */
export const readSliceEstimates = (p: FeedbackPaths): SliceEstimate[] => estimateSlice(readReviewed(p, 'slice'));

/** Item ids already imported, from the kept rows themselves (no second ledger to disagree with them). */
export const importedItemIds = (p: FeedbackPaths): Set<string> =>
  new Set((['training', 'slice', 'out_of_scope'] as const).flatMap((d) => readReviewed(p, d).map((r) => r.item_id)));

/** Adds reviewed rows to their files (one per destination and batch); returns how many went where. */
export function storeReviewed(p: FeedbackPaths, rows: readonly ReviewedRow[]): Record<ReviewedDestination, number> {
  const groups = new Map<string, ReviewedRow[]>();
  const counts: Record<ReviewedDestination, number> = { training: 0, slice: 0, correction: 0, out_of_scope: 0 };
  for (const r of rows) {
    const d = destinationOf(r);
    counts[d]++;
    const file = reviewedFile(p, d, r.batch_id);
    groups.set(file, [...(groups.get(file) ?? []), r]);
  }
  for (const [file, added] of groups) {
    const all = [...readRows(file), ...added];
    writeFileAtomic(file, all.map((r) => `${JSON.stringify(r)}\n`).join(''));
  }
  return counts;
}

/** Keeps rows exported from Label Studio as a JSONL file of the task's feedback folder; returns its path. */
export function writeLabelStudioExport(p: FeedbackPaths, rows: readonly object[], now: Date): string {
  const file = path.join(p.dir, 'label-studio', `export-${now.toISOString().replace(/[-:.]/g, '')}.jsonl`);
  writeFileAtomic(file, rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  return file;
}
