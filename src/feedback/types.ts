/**
 * The contracts of the feedback loop: what a review batch holds, what a reviewed row carries back, and
 * where each kind of reviewed row goes. zod schemas, because batches travel out (CSV, Label Studio)
 * and come back edited by people.
 */
import { z } from 'zod';

/** Why a served prediction was sent for review. `control` rows are a uniform sample: they estimate, never train. */
export const REVIEW_REASONS = ['out_of_scope', 'low_margin', 'label_issue', 'control'] as const;
export type ReviewReason = (typeof REVIEW_REASONS)[number];

/** The label a reviewer gives a query that belongs to none of the task's classes. */
export const OUT_OF_SCOPE = 'out_of_scope';

export const ReviewItemSchema = z.object({
  item_id: z.string().min(1),
  batch_id: z.string().min(1),
  task: z.string().min(1),
  model: z.string().min(1),
  version: z.string().min(1),
  /** The served (PII-masked) text, and its digest: an edited text is caught on import. */
  text: z.string().min(1),
  text_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  reason: z.enum(REVIEW_REASONS),
  /**
   * What the model answered: the served label (the fallback when out of scope) and its top class. For a label_issue
   * (a training row), `predicted` is the label the data gives it and `top_label` the class the model suggests.
   */
  predicted: z.string(),
  top_label: z.string(),
  in_scope: z.boolean(),
  /** Top class probability and the gap to the runner-up. */
  confidence: z.number(),
  margin: z.number(),
  served_at: z.string(),
});
export type ReviewItem = z.infer<typeof ReviewItemSchema>;

export const BatchManifestSchema = z.object({
  batch_id: z.string().min(1),
  task: z.string().min(1),
  model: z.string().min(1),
  version: z.string().min(1),
  created: z.string(),
  /** The labels a reviewer may give: the model's classes plus out_of_scope. */
  labels: z.array(z.string()).min(2),
  counts: z.record(z.string(), z.number().int().nonnegative()),
  /** The MLflow run that records the batch, when it was logged. */
  run_id: z.string().optional(),
  items: z.array(ReviewItemSchema),
});
export type BatchManifest = z.infer<typeof BatchManifestSchema>;

/** A reviewed row as it is kept: the item, the human label and who gave it when. */
export const ReviewedRowSchema = ReviewItemSchema.extend({
  label: z.string().min(1),
  annotator: z.string(),
  labelled_at: z.string(),
  /** The file (or Label Studio project) it came back from. */
  source: z.string(),
});
export type ReviewedRow = z.infer<typeof ReviewedRowSchema>;

/**
 * Where a reviewed row goes: control rows to the production evaluation slice (never training), a second look at a
 * training row (label_issue) to the corrections `make retrain` applies to the training data, out_of_scope rows to
 * the scope rule's examples, the rest to training (data/incoming).
 */
export type ReviewedDestination = 'slice' | 'correction' | 'out_of_scope' | 'training';

export const destinationOf = (r: Pick<ReviewedRow, 'reason' | 'label'>): ReviewedDestination =>
  r.reason === 'control'
    ? 'slice'
    : r.reason === 'label_issue'
      ? 'correction'
      : r.label === OUT_OF_SCOPE
        ? 'out_of_scope'
        : 'training';
