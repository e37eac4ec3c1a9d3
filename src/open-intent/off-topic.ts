/**
 * The off-topic check of a served model: queries that belong to no queue at all (data/eval/off-topic.txt,
 * written for this project, never used for tuning) should come back out of scope, while the task's own
 * test queries stay in scope.
 */
import fs from 'node:fs';
import { argmaxRows } from '../estimators/logreg';
import type { Scope } from '../kinds/types';

/** The queries of an off-topic file: one per line, `#` comments and blank lines skipped. */
export function readOffTopic(file: string): string[] {
  if (!fs.existsSync(file)) throw new Error(`no off-topic set at ${file}`);
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

export interface OffTopicResult {
  offTopic: number;
  inScope: number;
  /** Share of off-topic queries answered out of scope (the bar: >= 0.80). */
  offTopicRejected: number;
  /** Share of in-scope test queries kept in scope (the bar: >= 0.95). */
  inScopeKept: number;
  threshold: number;
  /** The off-topic queries still sent to a queue, with the label they got. */
  accepted: { text: string; label: string; score: number }[];
}

/** Judges both sets with a model's scope (its own threshold, or a deployment's). */
export async function offTopicCheck(
  scope: Scope,
  labels: readonly string[],
  offTopic: readonly string[],
  inScope: readonly string[],
): Promise<OffTopicResult> {
  const off = await scope.judge(offTopic);
  const ins = await scope.judge(inScope);
  const top = argmaxRows(off.probs, labels.length);
  const accepted = offTopic
    .map((text, i) => ({ text, label: labels[top[i]!]!, score: off.scores[i]! }))
    .filter((a) => a.score >= scope.threshold);
  return {
    offTopic: offTopic.length,
    inScope: inScope.length,
    offTopicRejected: 1 - accepted.length / offTopic.length,
    inScopeKept: Array.from(ins.scores).filter((s) => s >= scope.threshold).length / inScope.length,
    threshold: scope.threshold,
    accepted,
  };
}
