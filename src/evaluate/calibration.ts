/**
 * Probability calibration (Guo et al. 2017, "On Calibration of Modern Neural Networks"): one
 * temperature T fitted on the validation split by minimising its negative log-likelihood, applied as
 * softmax(z / T), and the measures that say whether it helped: expected calibration error (equal-width
 * confidence bins, 15 by default) and the multi-class Brier score. Pure functions over row-major
 * [n, k] arrays.
 *
 * Every model kind serves probabilities, not always logits; log p is a valid logit vector (softmax is
 * shift-invariant per row), so the same temperature fits every kind.
 */

type Matrix = Float32Array | Float64Array | readonly number[];

/** softmax(z / T) per row of logits `z` ([n, k]). */
export function softmaxWithTemperature(logits: Matrix, k: number, temperature: number): Float64Array {
  const n = logits.length / k;
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, logits[i * k + j]! / temperature);
    let sum = 0;
    for (let j = 0; j < k; j++) sum += out[i * k + j] = Math.exp(logits[i * k + j]! / temperature - max);
    for (let j = 0; j < k; j++) out[i * k + j]! /= sum;
  }
  return out;
}

/** Logits from probabilities: log p, floored so a zero probability stays finite. */
export function logitsOfProbs(probs: Matrix): Float64Array {
  return Float64Array.from(probs as ArrayLike<number>, (p) => Math.log(Math.max(p, 1e-12)));
}

/** Mean negative log-likelihood of the true classes under softmax(z / T). */
export function nllAtTemperature(logits: Matrix, yTrue: readonly number[], k: number, temperature: number): number {
  let sum = 0;
  yTrue.forEach((y, i) => {
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, logits[i * k + j]! / temperature);
    let lse = 0;
    for (let j = 0; j < k; j++) lse += Math.exp(logits[i * k + j]! / temperature - max);
    sum -= logits[i * k + y]! / temperature - max - Math.log(lse);
  });
  return sum / yTrue.length;
}

/**
 * The temperature in [0.05, 20] with the lowest validation NLL. The NLL is unimodal in log T for
 * practical purposes, so a golden-section search on log T finds it to ~1e-6 without gradients.
 */
export function fitTemperature(logits: Matrix, yTrue: readonly number[], k: number): number {
  if (yTrue.length === 0) throw new Error('cannot fit a temperature on no examples');
  const f = (logT: number) => nllAtTemperature(logits, yTrue, k, Math.exp(logT));
  const g = (Math.sqrt(5) - 1) / 2;
  let [a, b] = [Math.log(0.05), Math.log(20)];
  let c = b - g * (b - a);
  let d = a + g * (b - a);
  let fc = f(c);
  let fd = f(d);
  while (b - a > 1e-6) {
    if (fc < fd) {
      [b, d, fd] = [d, c, fc];
      c = b - g * (b - a);
      fc = f(c);
    } else {
      [a, c, fc] = [c, d, fd];
      d = a + g * (b - a);
      fd = f(d);
    }
  }
  return Math.exp((a + b) / 2);
}

export interface ReliabilityBin {
  /** Bin bounds on the confidence axis. */
  lower: number;
  upper: number;
  count: number;
  /** Mean top-class probability of the examples in the bin. */
  confidence: number;
  /** Share of them whose top class is right. */
  accuracy: number;
}

/** Equal-width bins of top-class confidence with their accuracy: the data of a reliability diagram. */
export function reliabilityBins(probs: Matrix, yTrue: readonly number[], k: number, bins = 15): ReliabilityBin[] {
  const acc = Array.from({ length: bins }, (_, b) => ({
    lower: b / bins,
    upper: (b + 1) / bins,
    count: 0,
    confSum: 0,
    correct: 0,
  }));
  yTrue.forEach((y, i) => {
    let top = 0;
    for (let j = 1; j < k; j++) if (probs[i * k + j]! > probs[i * k + top]!) top = j;
    const conf = probs[i * k + top]!;
    // (lower, upper] bins, as in Guo et al.; a confidence of exactly 0 joins the first bin.
    const b = Math.min(bins - 1, Math.max(0, Math.ceil(conf * bins) - 1));
    acc[b]!.count += 1;
    acc[b]!.confSum += conf;
    acc[b]!.correct += Number(top === y);
  });
  return acc.map((a) => ({
    lower: a.lower,
    upper: a.upper,
    count: a.count,
    confidence: a.count ? a.confSum / a.count : 0,
    accuracy: a.count ? a.correct / a.count : 0,
  }));
}

/** Expected calibration error of reliability bins: the count-weighted mean |accuracy - confidence|. */
export function eceOfBins(bins: readonly ReliabilityBin[]): number {
  const n = bins.reduce((s, b) => s + b.count, 0);
  return n ? bins.reduce((s, b) => s + (b.count / n) * Math.abs(b.accuracy - b.confidence), 0) : 0;
}

/** Expected calibration error over `bins` equal-width confidence bins (15, as Guo et al.). */
export const expectedCalibrationError = (probs: Matrix, yTrue: readonly number[], k: number, bins = 15): number =>
  eceOfBins(reliabilityBins(probs, yTrue, k, bins));

/** Multi-class Brier score: mean over examples of sum_j (p_j - [j = y])^2 (0 is perfect, 2 the worst). */
export function brierScore(probs: Matrix, yTrue: readonly number[], k: number): number {
  let sum = 0;
  yTrue.forEach((y, i) => {
    for (let j = 0; j < k; j++) sum += (probs[i * k + j]! - Number(j === y)) ** 2;
  });
  return sum / yTrue.length;
}
