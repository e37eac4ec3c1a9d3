/**
 * The review loop's two steps, each from files to files: `buildReviewBatch` reads the served model's
 * serving log and writes a batch to label (and records it as an MLflow run); `importReviewed` reads a
 * labelled file back, quarantines what does not check out, and files every accepted row where it belongs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ingestFile, writeQuarantine, type BadRow } from '../data/ingest';
import { heldOutTexts, matchKey } from '../data/leakage';
import type { Example } from '../data/tasks';
import { withRun, type MlflowClient } from '../mlflow';
import { streamServingLog } from '../monitor/serving-log';
import { acceptLabelled, LabelledRowSchema, reviewLabels, type ImportContext } from './review-import';
import {
  candidateOf,
  cosineNearDuplicate,
  reviewItems,
  selectReviewBatch,
  uncertainPool,
  type BatchPolicy,
  type Candidate,
  type Selection,
} from './select';
import { sliceMetrics, type SliceEstimate } from './slice';
import {
  importedItemIds,
  readBatches,
  readSliceEstimates,
  sentKeys,
  storeReviewed,
  writeBatch,
  type FeedbackPaths,
} from './store';
import type { BatchManifest, ReviewedDestination, ReviewedRow } from './types';

export interface BuildBatchInputs {
  task: string;
  /** The served model: registered name and version (only its predictions are read). */
  model: string;
  version: string;
  classes: readonly string[];
  logDir: string;
  since?: Date;
  /** The task's prepared splits: none of their texts is sent. */
  splits: { train: readonly Example[]; validation: readonly Example[]; test: readonly Example[] };
  paths: FeedbackPaths;
  policy: BatchPolicy;
  /** Training rows to look at again (REASON=label-issues), as candidates. */
  labelIssues?: Candidate[];
  /** Embeds texts (L2-normalised) for the near-duplicate check; without it only folded-text repeats collapse. */
  embed?: (texts: readonly string[]) => Promise<Float32Array[]>;
  now?: Date;
}

export interface BuiltBatch {
  manifest: BatchManifest;
  files: { manifest: string; csv: string };
  selection: Selection;
  served: number;
}

/** `2026-12-06T221530Z`-style batch ids: sortable, one per second per task. */
export const batchIdAt = (task: string, now: Date): string =>
  `${task}-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}`;

export async function buildReviewBatch(i: BuildBatchInputs): Promise<BuiltBatch> {
  const candidates: Candidate[] = [];
  const filter = { model: i.model, ...(i.since ? { since: i.since } : {}) };
  const read = await streamServingLog(i.logDir, filter, (r) => {
    if (r.version !== i.version) return;
    const c = candidateOf(r);
    if (c) candidates.push(c);
  });
  if (candidates.length === 0)
    throw new Error(
      `no served text predictions of ${i.model} version ${i.version} in ${i.logDir}` +
        ` (${read.records} of other versions, ${read.otherModels} of other models); serve it first`,
    );
  const batches = readBatches(i.paths);
  const inputs = {
    candidates,
    classes: i.classes,
    heldOut: heldOutTexts(
      [...i.splits.validation, ...i.splits.test].map((e) => e.text),
      'the validation or test split',
    ),
    trainingTexts: new Set(i.splits.train.map((e) => matchKey(e.text))),
    alreadySent: sentKeys(batches),
    ...(i.labelIssues ? { labelIssues: i.labelIssues } : {}),
  };
  let nearDuplicate;
  if (i.embed) {
    const pool = uncertainPool(inputs, i.policy, 3 * i.policy.size);
    const vectors = await i.embed(pool);
    nearDuplicate = cosineNearDuplicate(new Map(pool.map((t, k) => [t, vectors[k]!])));
  }
  const selection = selectReviewBatch({ ...inputs, ...(nearDuplicate ? { nearDuplicate } : {}) }, i.policy);
  const now = i.now ?? new Date();
  const batchId = batchIdAt(i.task, now);
  if (batches.has(batchId)) throw new Error(`batch ${batchId} exists already; try again in a second`);
  const manifest: BatchManifest = {
    batch_id: batchId,
    task: i.task,
    model: i.model,
    version: i.version,
    created: now.toISOString(),
    labels: reviewLabels(i.classes),
    counts: selection.counts,
    items: reviewItems(selection, { batchId, task: i.task, model: i.model }),
  };
  return { manifest, files: writeBatch(i.paths, manifest), selection, served: candidates.length };
}

/** Records a built batch as an MLflow run of the task's experiment: reasons, counts, model version, the batch. */
export async function logReviewBatch(client: MlflowClient, b: BuiltBatch, policy: BatchPolicy): Promise<string> {
  return withRun(
    client,
    {
      experiment: b.manifest.task,
      runName: `review-${b.manifest.batch_id}`,
      tags: { 'mlops.review.batch': b.manifest.batch_id },
    },
    async (run) => {
      await run.logParams({
        task: b.manifest.task,
        model: b.manifest.model,
        model_version: b.manifest.version,
        batch_size: policy.size,
        control_share: policy.controlShare,
        seed: policy.seed,
        reasons: (policy.reasons ?? ['out_of_scope', 'low_margin']).join(','),
      });
      const { skipped, counts } = b.selection;
      await run.logMetrics({
        served_predictions: b.served,
        batch_rows: b.manifest.items.length,
        ...Object.fromEntries(Object.entries(counts).map(([k, v]) => [`rows_${k}`, v])),
        ...Object.fromEntries(Object.entries(skipped).map(([k, v]) => [`skipped_${k}`, v])),
      });
      await run.logArtifact(b.files.manifest, 'review');
      await run.logArtifact(b.files.csv, 'review');
      return run.runId;
    },
  );
}

export interface ImportOutcome {
  accepted: number;
  /** Accepted rows by where they went. */
  destinations: Record<ReviewedDestination, number>;
  quarantined: BadRow[];
  quarantineFile?: string;
  /** The production slice after the import, per version. */
  slice: SliceEstimate[];
}

/**
 * Imports a labelled CSV or JSONL (item_id, batch_id, text, label[, annotator]). Bad rows are quarantined
 * with their row number and reason, good rows stored; importing the same file twice adds nothing.
 */
export function importReviewed(
  file: string,
  ctx: Omit<ImportContext, 'batches' | 'imported' | 'source'> & { paths: FeedbackPaths },
): ImportOutcome {
  const batches = readBatches(ctx.paths);
  const context: ImportContext = {
    ...ctx,
    batches,
    imported: importedItemIds(ctx.paths),
    source: path.basename(file),
  };
  const seen = new Set<string>();
  const accepted: ReviewedRow[] = [];
  // Every row is checked, none fails the whole file (maxBadShare 1): a half-labelled file imports its labelled half.
  const read = ingestFile(file, {
    schema: LabelledRowSchema,
    maxBadShare: 1,
    textFields: ['text'],
    check: (row) => {
      const v = acceptLabelled(row, context, seen);
      if ('reason' in v) return v.reason;
      accepted.push(v.row);
      return undefined;
    },
  });
  const destinations = storeReviewed(ctx.paths, accepted);
  let quarantineFile: string | undefined;
  if (read.bad.length) {
    quarantineFile = path.join(ctx.paths.quarantine, `${path.basename(file)}.${ctx.now.getTime()}.quarantine.jsonl`);
    writeQuarantine(quarantineFile, read.bad);
  }
  return {
    accepted: accepted.length,
    destinations,
    quarantined: read.bad,
    ...(quarantineFile ? { quarantineFile } : {}),
    slice: readSliceEstimates(ctx.paths),
  };
}

/** Logs the production slice of each version as metrics (step = version number) of an import run. */
export async function logImport(client: MlflowClient, task: string, file: string, o: ImportOutcome): Promise<string> {
  return withRun(
    client,
    { experiment: task, runName: `review-import`, tags: { 'mlops.review.import': path.basename(file) } },
    async (run) => {
      await run.logMetrics({
        imported_rows: o.accepted,
        quarantined_rows: o.quarantined.length,
        ...Object.fromEntries(Object.entries(o.destinations).map(([k, v]) => [`imported_${k}`, v])),
      });
      for (const e of o.slice) await run.logMetrics(sliceMetrics(e), Number(e.version) || 0);
      if (fs.existsSync(file)) await run.logArtifact(file, 'review');
      return run.runId;
    },
  );
}
