/**
 * Multinomial logistic regression on sparse features (softmax, cross-entropy with class weights,
 * L2 penalty), trained with mini-batch Adam in a seeded order: deterministic for a seed.
 */
import { seededRandom, shuffled } from '../data/split';
import type { SparseVector } from './tfidf';

export interface LogRegOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  l2: number;
  seed: number;
  classWeights?: number[];
}

export const DEFAULT_LOGREG: LogRegOptions = { epochs: 30, batchSize: 32, learningRate: 0.05, l2: 1e-5, seed: 42 };

export interface LogRegState {
  numFeatures: number;
  numClasses: number;
  /** Row-major [numFeatures, numClasses]. */
  weights: Float32Array;
  bias: Float32Array;
}

export function softmaxInPlace(z: Float32Array | number[], offset: number, k: number): void {
  let max = -Infinity;
  for (let c = 0; c < k; c++) max = Math.max(max, z[offset + c]!);
  let sum = 0;
  for (let c = 0; c < k; c++) {
    z[offset + c] = Math.exp(z[offset + c]! - max);
    sum += z[offset + c]!;
  }
  for (let c = 0; c < k; c++) z[offset + c]! /= sum;
}

/** The linear scores W x + b, row-major [xs.length, classes] (what the softmax turns into probabilities). */
export function predictLogits(m: LogRegState, xs: readonly SparseVector[]): Float32Array {
  const k = m.numClasses;
  const out = new Float32Array(xs.length * k);
  xs.forEach((x, r) => {
    const o = r * k;
    out.set(m.bias, o);
    for (let j = 0; j < x.indices.length; j++) {
      const base = x.indices[j]! * k;
      const v = x.values[j]!;
      for (let c = 0; c < k; c++) out[o + c]! += v * m.weights[base + c]!;
    }
  });
  return out;
}

/** Class probabilities, row-major [n, k]. */
export function predictProba(m: LogRegState, xs: readonly SparseVector[]): Float32Array {
  return softmaxRows(predictLogits(m, xs), m.numClasses);
}

/** Softmax of every row of [n, k] logits, in place; returns the same array. */
export function softmaxRows(z: Float32Array, k: number): Float32Array {
  for (let o = 0; o < z.length; o += k) softmaxInPlace(z, o, k);
  return z;
}

export function argmaxRows(probs: Float32Array, k: number): number[] {
  const n = probs.length / k;
  return Array.from({ length: n }, (_, r) => {
    let best = 0;
    for (let c = 1; c < k; c++) if (probs[r * k + c]! > probs[r * k + best]!) best = c;
    return best;
  });
}

/**
 * One Adam step on every entry of `w` (moments `m`, `v`; gradient `g` plus an L2 penalty) with the
 * bias-corrected step size `lr`, for dense trainers; the sparse trainer updates only touched rows.
 */
export function adamUpdate(
  w: Float32Array,
  m: Float32Array,
  v: Float32Array,
  g: ArrayLike<number>,
  lr: number,
  l2 = 0,
): void {
  const [beta1, beta2, eps] = ADAM_BETAS;
  for (let j = 0; j < w.length; j++) {
    const grad = g[j]! + l2 * w[j]!;
    m[j] = beta1 * m[j]! + (1 - beta1) * grad;
    v[j] = beta2 * v[j]! + (1 - beta2) * grad * grad;
    w[j]! -= (lr * m[j]!) / (Math.sqrt(v[j]!) + eps);
  }
}

/** Adam's beta1, beta2 and epsilon. */
export const ADAM_BETAS = [0.9, 0.999, 1e-8] as const;

/** The bias-corrected step size of Adam step `t` (1-based). */
export const adamStepSize = (learningRate: number, t: number): number =>
  (learningRate * Math.sqrt(1 - ADAM_BETAS[1] ** t)) / (1 - ADAM_BETAS[0] ** t);

/**
 * Zero weights, Adam moments, class weights and the seeded example order: what every trainer of this
 * model starts from, so the sparse and the dense trainer see the same batches and train the same model.
 */
export function trainingState(numFeatures: number, numClasses: number, n: number, opts: LogRegOptions) {
  const size = numFeatures * numClasses;
  return {
    W: new Float32Array(size),
    b: new Float32Array(numClasses),
    mW: new Float32Array(size),
    vW: new Float32Array(size),
    mb: new Float32Array(numClasses),
    vb: new Float32Array(numClasses),
    cw: opts.classWeights ?? new Array<number>(numClasses).fill(1),
    random: seededRandom(opts.seed),
    order: Array.from({ length: n }, (_, i) => i),
  };
}

export interface EpochLog {
  epoch: number;
  loss: number;
  /** The weights after this epoch (live views, valid during the callback): for validation scores. */
  model: LogRegState;
}

/** Trains; `onEpoch` receives the weighted mean training loss of each epoch. */
export function trainLogReg(
  xs: readonly SparseVector[],
  ys: readonly number[],
  numFeatures: number,
  numClasses: number,
  opts: LogRegOptions = DEFAULT_LOGREG,
  onEpoch?: (e: EpochLog) => void,
): LogRegState {
  const epochs = logRegEpochs(xs, ys, numFeatures, numClasses, opts);
  for (;;) {
    const r = epochs.next();
    // `=== true`: the notebook kernel's TypeScript (no strict null checks) narrows IteratorResult only so.
    if (r.done === true) return r.value;
    onEpoch?.(r.value);
  }
}

/**
 * The same training, one epoch per `next()`: a caller can stop between epochs (a pruned trial) or
 * await something (a pruner's verdict) before going on. Returns the final weights when done.
 */
export function* logRegEpochs(
  xs: readonly SparseVector[],
  ys: readonly number[],
  numFeatures: number,
  numClasses: number,
  opts: LogRegOptions = DEFAULT_LOGREG,
): Generator<EpochLog, LogRegState, void> {
  const k = numClasses;
  // Adam moments; lazily updated rows for sparse features keep an epoch linear in the data size.
  const { W, b, mW, vW, mb, vb, cw, random, order } = trainingState(numFeatures, k, ys.length, opts);
  const [beta1, beta2, eps] = ADAM_BETAS;
  let t = 0;
  const p = new Float32Array(k);
  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    let lossSum = 0;
    let weightSum = 0;
    const perm = shuffled(order, random);
    for (let start = 0; start < perm.length; start += opts.batchSize) {
      const batch = perm.slice(start, start + opts.batchSize);
      const gW = new Map<number, Float32Array>();
      const gb = new Float32Array(k);
      for (const i of batch) {
        const x = xs[i]!;
        const y = ys[i]!;
        p.set(b);
        for (let j = 0; j < x.indices.length; j++) {
          const base = x.indices[j]! * k;
          for (let c = 0; c < k; c++) p[c]! += x.values[j]! * W[base + c]!;
        }
        softmaxInPlace(p, 0, k);
        const w = cw[y]!;
        lossSum -= w * Math.log(Math.max(p[y]!, 1e-12));
        weightSum += w;
        p[y]! -= 1;
        for (let c = 0; c < k; c++) gb[c]! += (w * p[c]!) / batch.length;
        for (let j = 0; j < x.indices.length; j++) {
          const f = x.indices[j]!;
          let g = gW.get(f);
          if (!g) gW.set(f, (g = new Float32Array(k)));
          for (let c = 0; c < k; c++) g[c]! += (w * p[c]! * x.values[j]!) / batch.length;
        }
      }
      t++;
      const lr = adamStepSize(opts.learningRate, t);
      adamUpdate(b, mb, vb, gb, lr);
      for (const [f, g] of gW) {
        const base = f * k;
        for (let c = 0; c < k; c++) {
          const grad = g[c]! + opts.l2 * W[base + c]!;
          mW[base + c] = beta1 * mW[base + c]! + (1 - beta1) * grad;
          vW[base + c] = beta2 * vW[base + c]! + (1 - beta2) * grad * grad;
          W[base + c]! -= (lr * mW[base + c]!) / (Math.sqrt(vW[base + c]!) + eps);
        }
      }
    }
    yield { epoch, loss: lossSum / weightSum, model: { numFeatures, numClasses, weights: W, bias: b } };
  }
  return { numFeatures, numClasses, weights: W, bias: b };
}

export interface LogRegJson {
  numFeatures: number;
  numClasses: number;
  /** Float32 little-endian, base64. */
  weights: string;
  bias: string;
}

export function logRegToJson(m: LogRegState): LogRegJson {
  const b64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
  return { numFeatures: m.numFeatures, numClasses: m.numClasses, weights: b64(m.weights), bias: b64(m.bias) };
}

export function logRegFromJson(j: LogRegJson): LogRegState {
  const f32 = (s: string) => {
    const buf = Buffer.from(s, 'base64');
    return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  };
  return { numFeatures: j.numFeatures, numClasses: j.numClasses, weights: f32(j.weights), bias: f32(j.bias) };
}
