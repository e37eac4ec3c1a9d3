/**
 * Content digests of dataset splits: sha256 over a canonical serialisation of the examples, so the
 * same data always has the same digest whatever file it came from. Logged to MLflow as the
 * dataset's digest; `make retrain` compares it to decide whether there is new data.
 */
import { createHash } from 'node:crypto';
import type { Example } from './tasks';

export function digestExamples(examples: readonly Pick<Example, 'text' | 'label'>[]): string {
  const h = createHash('sha256');
  for (const e of examples) h.update(JSON.stringify([e.text, e.label])).update('\n');
  return h.digest('hex');
}

/** MLflow limits dataset digests to 36 characters; 32 hex characters keep 128 bits. */
export const shortDigest = (sha256: string): string => sha256.slice(0, 32);
