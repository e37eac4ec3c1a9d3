/**
 * Which served predictions a person should look at (pure). A batch mixes the answers the model is least
 * sure of (out of scope, smallest gap between its top two classes, likely label errors) with a uniform
 * random control sample of the traffic, which estimates production accuracy without bias and so never
 * trains. Repeats are collapsed, held-out texts are never sent (a label there would leak into training),
 * and no predicted class takes more than its share of the uncertain part.
 */
import { createHash } from 'node:crypto';
import { leakReason, matchKey, type HeldOutTexts } from '../data/leakage';
import { seededRandom, shuffled } from '../data/split';
import type { ServingRecord } from '../monitor/serving-log';
import type { ReviewItem, ReviewReason } from './types';

/** A served prediction that could go for review. */
export interface Candidate {
  text: string;
  textSha256: string;
  servedAt: string;
  version: string;
  predicted: string;
  topLabel: string;
  inScope: boolean;
  confidence: number;
  margin: number;
}

export const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex');

/** Top probability minus the runner-up's (1 when there is one class). */
export function marginOf(probabilities: Record<string, number>): number {
  const [a = 0, b = 0] = Object.values(probabilities).sort((x, y) => y - x);
  return a - b;
}

/** A logged text prediction as a review candidate; undefined for records without text (tabular). */
export function candidateOf(r: ServingRecord): Candidate | undefined {
  if (r.text === undefined || r.text.trim() === '') return undefined;
  const top = r.top_label ?? r.label;
  return {
    text: r.text,
    // Of the masked text as logged (the log's own text_sha256 is of the request): what import checks against.
    textSha256: sha256Hex(r.text),
    servedAt: r.ts,
    version: r.version,
    predicted: r.label,
    topLabel: top,
    inScope: r.in_scope ?? true,
    confidence: r.confidence ?? r.probabilities[top] ?? 0,
    margin: marginOf(r.probabilities),
  };
}

export interface BatchPolicy {
  size: number;
  /** Share of the batch that is the uniform control sample (at least 0.2). */
  controlShare: number;
  /** Most of the uncertain part one predicted class may take (default: see defaultLabelShare). */
  maxLabelShare?: number;
  /** Which uncertain reasons to draw from, in priority order (default: out_of_scope, low_margin). */
  reasons?: readonly Exclude<ReviewReason, 'control'>[];
  seed: number;
}

export const MIN_CONTROL_SHARE = 0.2;
const DEFAULT_REASONS = ['out_of_scope', 'low_margin'] as const;

/** 1.5 times an even share of the classes, between 10% and 100%: a class may be over-represented, not dominate. */
export const defaultLabelShare = (classes: number): number => Math.min(1, Math.max(0.1, 1.5 / Math.max(classes, 1)));

export interface SelectInputs {
  /** Served predictions, in log order. */
  candidates: readonly Candidate[];
  /** The model's classes (for the per-class cap). */
  classes: readonly string[];
  /** Texts that must never reach training: the validation and test rows. */
  heldOut: HeldOutTexts;
  /** Match keys of the training rows: labelled already, so not sent again, except for a second look (label_issue). */
  trainingTexts?: ReadonlySet<string>;
  /** Texts already sent in earlier batches (their match keys): not sent again. */
  alreadySent?: ReadonlySet<string>;
  /** Extra candidates flagged as likely label errors, for REASON=label-issues. */
  labelIssues?: readonly Candidate[];
  /** Near-duplicate test on top of the folded-text match (e.g. encoder cosine >= 0.95), given the texts kept so far. */
  nearDuplicate?: (text: string, kept: readonly string[]) => boolean;
}

export interface Selection {
  /** The chosen candidates with their reasons, control rows last. */
  chosen: { candidate: Candidate; reason: ReviewReason }[];
  counts: Record<ReviewReason, number>;
  /** Why candidates were passed over. */
  skipped: {
    heldOut: number;
    inTraining: number;
    repeats: number;
    nearDuplicates: number;
    alreadySent: number;
    labelCap: number;
  };
  /** Served predictions considered (after the text filter). */
  considered: number;
}

/** Orders the uncertain candidates of one reason, most in need of a look first. */
function ranked(reason: Exclude<ReviewReason, 'control'>, inputs: SelectInputs): Candidate[] {
  switch (reason) {
    case 'out_of_scope':
      // The rejected ones the model was closest to keeping first: where the threshold's errors live.
      return inputs.candidates.filter((c) => !c.inScope).sort((a, b) => b.confidence - a.confidence);
    case 'low_margin':
      return inputs.candidates.filter((c) => c.inScope).sort((a, b) => a.margin - b.margin);
    case 'label_issue':
      return [...(inputs.labelIssues ?? [])];
  }
}

/**
 * The candidates a batch may take: served texts that are neither held out nor training rows already, and second
 * looks at training rows (label issues) that are not held out. What was left out is counted over the whole log.
 */
function eligible(given: SelectInputs): { inputs: SelectInputs; heldOut: number; inTraining: number } {
  let heldOut = 0;
  let inTraining = 0;
  const keep = (c: Candidate, trainingToo: boolean) => {
    if (leakReason(c.text, given.heldOut) !== undefined) heldOut++;
    else if (trainingToo && given.trainingTexts?.has(matchKey(c.text))) inTraining++;
    else return true;
    return false;
  };
  const candidates = given.candidates.filter((c) => keep(c, true));
  const labelIssues = given.labelIssues?.filter((c) => keep(c, false));
  return { inputs: { ...given, candidates, ...(labelIssues ? { labelIssues } : {}) }, heldOut, inTraining };
}

export function selectReviewBatch(given: SelectInputs, policy: BatchPolicy): Selection {
  if (!Number.isInteger(policy.size) || policy.size < 1) throw new Error(`batch size must be a positive integer`);
  if (policy.controlShare < MIN_CONTROL_SHARE || policy.controlShare > 1)
    throw new Error(`control share must be between ${MIN_CONTROL_SHARE} and 1 (got ${policy.controlShare})`);
  const random = seededRandom(policy.seed);
  const { inputs, heldOut, inTraining } = eligible(given);
  const skipped = { heldOut, inTraining, repeats: 0, nearDuplicates: 0, alreadySent: 0, labelCap: 0 };
  const keys = new Set<string>();
  const keptTexts: string[] = [];
  const refusal = (c: Candidate, key: string): 'repeats' | 'alreadySent' | 'nearDuplicates' | undefined => {
    if (keys.has(key)) return 'repeats';
    if (inputs.alreadySent?.has(key)) return 'alreadySent';
    if (inputs.nearDuplicate?.(c.text, keptTexts)) return 'nearDuplicates';
    return undefined;
  };
  /** Takes the candidate unless it repeats, was sent before or near-duplicates a kept one. */
  const admit = (c: Candidate, count = true): boolean => {
    const key = matchKey(c.text);
    const why = refusal(c, key);
    if (why !== undefined) {
      if (count) skipped[why]++;
      return false;
    }
    keys.add(key);
    keptTexts.push(c.text);
    return true;
  };

  const controlSize = Math.min(policy.size, Math.ceil(policy.size * policy.controlShare));
  const uncertainSize = policy.size - controlSize;
  const chosen: Selection['chosen'] = [];

  // The control sample first, so its rows are a uniform draw of the traffic, not of what uncertainty left over.
  const control: Candidate[] = [];
  for (const c of shuffled(inputs.candidates, random)) {
    if (control.length === controlSize) break;
    // Held-out and repeated texts are passed over here too; that is a small, stated bias of the slice.
    if (admit(c, false)) control.push(c);
  }

  // The uncertain part: reasons taken in turn, each in its own order, under the per-class cap.
  const cap = Math.max(
    1,
    Math.floor(uncertainSize * (policy.maxLabelShare ?? defaultLabelShare(inputs.classes.length))),
  );
  const perClass = new Map<string, number>();
  const queues = (policy.reasons ?? DEFAULT_REASONS).map((reason) => ({
    reason,
    items: ranked(reason, inputs),
    at: 0,
  }));
  const uncertain: Selection['chosen'] = [];
  const capped: Selection['chosen'] = [];
  while (uncertain.length < uncertainSize && queues.some((q) => q.at < q.items.length)) {
    for (const q of queues) {
      if (uncertain.length === uncertainSize) break;
      while (q.at < q.items.length) {
        const c = q.items[q.at++]!;
        if ((perClass.get(c.topLabel) ?? 0) >= cap) {
          capped.push({ candidate: c, reason: q.reason });
          continue;
        }
        if (!admit(c)) continue;
        perClass.set(c.topLabel, (perClass.get(c.topLabel) ?? 0) + 1);
        uncertain.push({ candidate: c, reason: q.reason });
        break;
      }
    }
  }
  // Too few candidates of the other classes: the capped ones fill what is left rather than an empty slot.
  for (const c of capped) {
    if (uncertain.length === uncertainSize) {
      skipped.labelCap++;
      continue;
    }
    if (admit(c.candidate)) uncertain.push(c);
  }
  chosen.push(...uncertain, ...control.map((candidate) => ({ candidate, reason: 'control' as const })));
  const counts = { out_of_scope: 0, low_margin: 0, label_issue: 0, control: 0 };
  for (const c of chosen) counts[c.reason]++;
  return { chosen, counts, skipped, considered: given.candidates.length };
}

/**
 * The texts the uncertain part can reach: the first `perReason` distinct texts of each reason's order.
 * Embedding only these keeps the near-duplicate check to a few hundred texts, not the whole log.
 */
export function uncertainPool(given: SelectInputs, policy: BatchPolicy, perReason: number): string[] {
  const { inputs } = eligible(given);
  const texts = new Map<string, string>();
  for (const reason of policy.reasons ?? DEFAULT_REASONS) {
    let taken = 0;
    for (const c of ranked(reason, inputs)) {
      if (taken === perReason) break;
      const key = matchKey(c.text);
      if (texts.has(key)) continue;
      texts.set(key, c.text);
      taken++;
    }
  }
  return [...texts.values()];
}

/** Cosine of L2-normalised vectors at or above `threshold` with any kept text's: a near duplicate. */
export function cosineNearDuplicate(
  vectors: ReadonlyMap<string, Float32Array>,
  threshold = 0.95,
): NonNullable<SelectInputs['nearDuplicate']> {
  return (text, kept) => {
    const v = vectors.get(text);
    if (!v) return false; // outside the embedded pool: the folded-text match still applies
    return kept.some((k) => {
      const w = vectors.get(k);
      if (!w) return false;
      let dot = 0;
      for (let i = 0; i < v.length; i++) dot += v[i]! * w[i]!;
      return dot >= threshold;
    });
  };
}

/** The chosen candidates as the batch's items. */
export function reviewItems(
  selection: Selection,
  batch: { batchId: string; task: string; model: string },
): ReviewItem[] {
  return selection.chosen.map(({ candidate: c, reason }, i) => ({
    item_id: `${batch.batchId}-${String(i + 1).padStart(4, '0')}`,
    batch_id: batch.batchId,
    task: batch.task,
    model: batch.model,
    version: c.version,
    text: c.text,
    text_sha256: c.textSha256,
    reason,
    predicted: c.predicted,
    top_label: c.topLabel,
    in_scope: c.inScope,
    confidence: c.confidence,
    margin: c.margin,
    served_at: c.servedAt,
  }));
}
