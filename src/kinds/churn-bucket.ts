/**
 * The action buckets of churn tasks: what a p(churn) asks the business to do. Served predictions
 * (/predict) and batch scoring (make score) both apply this rule, so it lives with the models' decisions.
 */
export interface BucketThresholds {
  /** p(churn) at or above: bucket A (very likely to churn: call them). */
  a: number;
  /** p(churn) at or above (and below `a`): bucket B (on the fence: offer a discount). Below: C (retained). */
  b: number;
}

/** A (call them) from p = 0.7, B (offer a discount) from 0.4. */
export const DEFAULT_BUCKETS: BucketThresholds = { a: 0.7, b: 0.4 };

export function churnBucket(p: number, t: BucketThresholds): 'A' | 'B' | 'C' {
  return p >= t.a ? 'A' : p >= t.b ? 'B' : 'C';
}
