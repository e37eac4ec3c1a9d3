/**
 * Deterministic stratified splitting: the same seed gives the same split on every machine, and
 * each class is divided in the same proportions, so split class shares match the whole.
 */

/** The mulberry32 increment: the state advances by this before each output. */
export const MULBERRY32_STEP = 0x6d2b79f5;

/** mulberry32's 32-bit output for an (already advanced) state. */
export function mulberry32(state: number): number {
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

/** mulberry32: a small, fast, well-distributed 32-bit PRNG; deterministic from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + MULBERRY32_STEP) >>> 0;
    return mulberry32(a) / 4294967296;
  };
}

export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/**
 * Splits indices 0..labels.length-1 into named parts with the given shares, class by class.
 * Rounding is carried across classes (largest remainder), so part sizes match the shares overall.
 */
export function stratifiedSplit<K extends string>(
  labels: readonly string[],
  shares: Record<K, number>,
  seed: number,
): Record<K, number[]> {
  const names = Object.keys(shares) as K[];
  const total = names.reduce((s, k) => s + shares[k], 0);
  if (Math.abs(total - 1) > 1e-9) throw new Error(`split shares must add up to 1, got ${total}`);
  const byClass = new Map<string, number[]>();
  labels.forEach((l, i) => byClass.set(l, [...(byClass.get(l) ?? []), i]));
  const random = seededRandom(seed);
  const out = Object.fromEntries(names.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  const carry = Object.fromEntries(names.map((k) => [k, 0])) as Record<K, number>;
  for (const cls of [...byClass.keys()].sort()) {
    const idx = shuffled(byClass.get(cls)!, random);
    // Ideal (fractional) count per part plus what earlier classes left over; floor, then hand the
    // remaining items to the parts with the largest remainders.
    const ideal = names.map((k) => idx.length * shares[k] + carry[k]);
    const counts = ideal.map((x) => Math.floor(x));
    let left = idx.length - counts.reduce((a, b) => a + b, 0);
    const order = names.map((_, i) => i).sort((a, b) => ideal[b]! - counts[b]! - (ideal[a]! - counts[a]!));
    for (const i of order) {
      if (left <= 0) break;
      counts[i]! += 1;
      left -= 1;
    }
    let start = 0;
    names.forEach((k, i) => {
      carry[k] = ideal[i]! - counts[i]!;
      out[k].push(...idx.slice(start, start + counts[i]!));
      start += counts[i]!;
    });
  }
  for (const k of names) out[k].sort((a, b) => a - b);
  return out;
}

/** Share of each label in a list (for checking that splits keep class proportions). */
export function classShares(labels: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const l of labels) counts[l] = (counts[l] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / labels.length]));
}
