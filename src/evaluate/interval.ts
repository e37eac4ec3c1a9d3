/**
 * Confidence intervals on a share (k successes of n), Wilson's score interval: unlike the normal
 * approximation it stays inside [0, 1] and keeps close to its nominal coverage for small n and for
 * shares near 0 or 1, which is where review batches and scope recall live.
 */

/** z of a two-sided 95% interval. */
export const Z95 = 1.959963984540054;
/** z of a one-sided 95% bound. */
export const Z95_ONE_SIDED = 1.6448536269514722;

export interface ShareInterval {
  k: number;
  n: number;
  share: number;
  lower: number;
  upper: number;
}

/** Wilson score interval of k/n at the given z (default: two-sided 95%). n = 0 gives [0, 1]. */
export function wilsonInterval(k: number, n: number, z = Z95): ShareInterval {
  if (n === 0) return { k, n, share: Number.NaN, lower: 0, upper: 1 };
  const p = k / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return { k, n, share: p, lower: Math.max(0, centre - half), upper: Math.min(1, centre + half) };
}

/**
 * One-sided lower confidence bound on k/n (z = 1.645 for about 95%; Wilson's coverage runs slightly
 * under nominal near shares of 0.95): with that confidence the true share is at least this.
 */
export const wilsonLower = (k: number, n: number, z = Z95_ONE_SIDED): number =>
  n === 0 ? 0 : wilsonInterval(k, n, z).lower;
