/**
 * The logistic regression of ./logreg.ts for dense inputs (pooled encoder embeddings), with each
 * mini-batch's forward and backward pass run by ONNX Runtime's multi-threaded GEMM instead of scalar
 * JavaScript loops. Same seeded order, batches, class weights, L2 penalty and Adam update, so it
 * trains the same model; about six times faster per epoch on 384-d embeddings (0.34 s against 2.05 s on
 * 9,003 x 384 x 77), which is what makes a tuning study of many heads affordable on two cores.
 */
import type * as ort from 'onnxruntime-node';
import { Tensor } from 'onnxruntime-node';
import { shuffled } from '../data/split';
import { Graph } from '../engine/graph';
import { DataType } from '../engine/onnx-proto';
import { createSession } from '../engine/ort-session';
import {
  adamStepSize,
  adamUpdate,
  DEFAULT_LOGREG,
  trainingState,
  type EpochLog,
  type LogRegOptions,
  type LogRegState,
} from './logreg';

/**
 * One step's graph: P = softmax(X W + b); Q = s (P - Y) with s the example's weight / batch size;
 * gW = Xᵀ Q, gb = Σ Q. The loss itself is read from P in JavaScript.
 */
export function headStepGraph(numFeatures: number, numClasses: number): Buffer {
  const g = new Graph('logreg_step');
  const F = DataType.FLOAT;
  const x = g.input('x', F, ['batch', numFeatures]);
  const y = g.input('y_onehot', F, ['batch', numClasses]);
  const s = g.input('scale', F, ['batch', 1]);
  const w = g.input('w', F, [numFeatures, numClasses]);
  const b = g.input('b', F, [numClasses]);
  const p = g.op('Softmax', [g.op('Gemm', [x, w, b])], [{ name: 'axis', value: -1 }]);
  const q = g.op('Mul', [g.op('Sub', [p, y]), s]);
  g.output(p, 'probs', F, ['batch', numClasses]);
  g.output(g.op('Gemm', [x, q], [{ name: 'transA', value: 1 }]), 'grad_w', F, [numFeatures, numClasses]);
  g.output(g.op('ReduceSum', [q, g.ints([0])], [{ name: 'keepdims', value: 0 }]), 'grad_b', F, [numClasses]);
  return g.toModel();
}

/** Trains one epoch per `next()`; `rows` are dense vectors of `numFeatures` values. */
export async function* denseLogRegEpochs(
  rows: readonly Float32Array[],
  ys: readonly number[],
  numFeatures: number,
  numClasses: number,
  opts: LogRegOptions = DEFAULT_LOGREG,
): AsyncGenerator<EpochLog, LogRegState, void> {
  const k = numClasses;
  const d = numFeatures;
  const session: ort.InferenceSession = await createSession(headStepGraph(d, k));
  try {
    const { W, b, mW, vW, mb, vb, cw, random, order } = trainingState(d, k, ys.length, opts);
    let t = 0;
    for (let epoch = 1; epoch <= opts.epochs; epoch++) {
      let lossSum = 0;
      let weightSum = 0;
      const perm = shuffled(order, random);
      for (let start = 0; start < perm.length; start += opts.batchSize) {
        const batch = perm.slice(start, start + opts.batchSize);
        const n = batch.length;
        const xb = new Float32Array(n * d);
        const yb = new Float32Array(n * k);
        const sb = new Float32Array(n);
        batch.forEach((i, r) => {
          xb.set(rows[i]!, r * d);
          yb[r * k + ys[i]!] = 1;
          sb[r] = cw[ys[i]!]! / n;
        });
        const out = await session.run({
          x: new Tensor('float32', xb, [n, d]),
          y_onehot: new Tensor('float32', yb, [n, k]),
          scale: new Tensor('float32', sb, [n, 1]),
          w: new Tensor('float32', W, [d, k]),
          b: new Tensor('float32', b, [k]),
        });
        const probs = out.probs!.data as Float32Array;
        const gW = out.grad_w!.data as Float32Array;
        const gb = out.grad_b!.data as Float32Array;
        batch.forEach((i, r) => {
          const w = cw[ys[i]!]!;
          lossSum -= w * Math.log(Math.max(probs[r * k + ys[i]!]!, 1e-12));
          weightSum += w;
        });
        t++;
        const lr = adamStepSize(opts.learningRate, t);
        adamUpdate(b, mb, vb, gb, lr);
        adamUpdate(W, mW, vW, gW, lr, opts.l2);
      }
      yield { epoch, loss: lossSum / weightSum, model: { numFeatures: d, numClasses: k, weights: W, bias: b } };
    }
    return { numFeatures: d, numClasses: k, weights: W, bias: b };
  } finally {
    await session.release();
  }
}
