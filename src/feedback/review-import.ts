/**
 * Labels coming back (pure): each labelled row is checked against the batch it claims to belong to.
 * A row of another task's or model's batch, an unknown item, an edited text, a label the task does not
 * have, a row with no label yet, or an item already imported is refused with the reason; the caller
 * quarantines it with its row number. Nothing is imported twice, so importing the same file again (or a
 * later export that repeats earlier rows) is safe.
 */
import { z } from 'zod';
import { undefuseFormula } from '../io/csv';
import { sha256Hex } from './select';
import { OUT_OF_SCOPE, type BatchManifest, type ReviewItem, type ReviewedRow } from './types';

/** A labelled row as it comes back from the CSV (fill in `label`) or a Label Studio export. */
export const LabelledRowSchema = z.object({
  item_id: z.string().trim().min(1, 'item_id is empty'),
  batch_id: z.string().trim().min(1, 'batch_id is empty'),
  text: z.string(),
  label: z.string().trim(),
  annotator: z.string().trim().optional(),
});
export type LabelledRow = z.infer<typeof LabelledRowSchema>;

export interface ImportContext {
  task: string;
  model: string;
  /** The task's review batches, by id. */
  batches: ReadonlyMap<string, BatchManifest>;
  /** Item ids imported before (from any file). */
  imported: ReadonlySet<string>;
  /** Where the rows come from (file name or Label Studio project), kept with each row. */
  source: string;
  now: Date;
  /** Annotator when the row names none (the CSV's user, or the Label Studio account). */
  defaultAnnotator: string;
}

export type Verdict = { row: ReviewedRow } | { reason: string };

/** Checks one labelled row; `seen` collects the item ids accepted so far in this import (a repeat is refused). */
export function acceptLabelled(row: LabelledRow, ctx: ImportContext, seen: Set<string>): Verdict {
  const batch = ctx.batches.get(row.batch_id);
  if (!batch) return { reason: `batch_id: ${row.batch_id} is not a review batch of ${ctx.task}` };
  if (batch.task !== ctx.task || batch.model !== ctx.model)
    return {
      reason:
        `batch_id: ${row.batch_id} is a batch of ${batch.task} (model ${batch.model}), ` +
        `not of ${ctx.task} (model ${ctx.model})`,
    };
  const item: ReviewItem | undefined = batch.items.find((i) => i.item_id === row.item_id);
  if (!item) return { reason: `item_id: ${row.item_id} is not in batch ${row.batch_id}` };
  const text = undefuseFormula(row.text, item.text);
  if (sha256Hex(text) !== item.text_sha256 && text.trim() !== item.text.trim())
    return { reason: `text: differs from the text of ${row.item_id} as sent for review (edited?)` };
  if (row.label === '') return { reason: `label: empty (not labelled yet); import again once it is` };
  if (!batch.labels.includes(row.label))
    return { reason: `label: "${row.label}" is not one of: ${batch.labels.join(', ')}` };
  if (ctx.imported.has(row.item_id)) return { reason: `item_id: ${row.item_id} was imported before` };
  if (seen.has(row.item_id)) return { reason: `item_id: ${row.item_id} appears twice in this import` };
  seen.add(row.item_id);
  return {
    row: {
      ...item,
      label: row.label,
      annotator: row.annotator || ctx.defaultAnnotator,
      labelled_at: ctx.now.toISOString(),
      source: ctx.source,
    },
  };
}

/** The labels a reviewer may give for a model's classes. */
export const reviewLabels = (classes: readonly string[]): string[] => [
  ...classes.filter((c) => c !== OUT_OF_SCOPE),
  OUT_OF_SCOPE,
];
