/**
 * One training step of a BERT-family classifier on ONNX Runtime: the weights, a tokenized batch,
 * the weighted one-hot targets and seeded dropout noise go in; loss, logits and a gradient for every
 * trainable parameter come out. The embedding tables' gradients are summed here, on the rows the
 * batch used, from the per-token gradient the graph returns: a batch touches ~2% of the word table's
 * rows, so neither ONNX Runtime nor the optimizer passes over a dense 30k x 384 gradient.
 *
 * This is the backend seam: the graph is plain ONNX, so the same step runs on ONNX Runtime's CUDA
 * execution provider (`executionProviders: ['cuda']`) on a GPU host.
 */
import * as ort from 'onnxruntime-node';
import { mulberry32, MULBERRY32_STEP } from '../data/split';
import type { EncodedBatch } from '../features/tokenize';
import type { EncoderConfig } from './checkpoint';
import { buildTrainGraph, paramShape, type TrainGraph, type TrainGraphSpec } from './bert-graph';
import { batchFeeds, createSession, type SessionOptions } from './ort-session';

export type Params = Map<string, Float32Array>;

/** Sums per-token gradients [tokens, hidden] into the table rows the tokens index. */
export function scatterRows(perToken: Float32Array, index: Int32Array, hidden: number): RowGrads {
  const slot = new Map<number, number>();
  for (const id of index) if (!slot.has(id)) slot.set(id, slot.size);
  const grad = new Float32Array(slot.size * hidden);
  for (let t = 0; t < index.length; t++) {
    const dst = slot.get(index[t]!)! * hidden;
    const src = t * hidden;
    for (let j = 0; j < hidden; j++) grad[dst + j]! += perToken[src + j]!;
  }
  return { rows: Int32Array.from(slot.keys()), grad };
}

/** Gradient of an embedding table on the rows a batch used (the other rows' gradient is zero). */
export interface RowGrads {
  rows: Int32Array;
  /** Row-major [rows.length, hidden]. */
  grad: Float32Array;
}

export interface StepResult {
  loss: number;
  /** Row-major [batch, numLabels]. */
  logits: Float32Array;
  /** Gradients of the trainable dense parameters. */
  grads: Params;
  /** Gradients of the trainable embedding tables, on the rows the batch touched. */
  rowGrads: Map<string, RowGrads>;
  /** L2 norm of all gradients together (dense and row-sparse). */
  gradNorm: number;
}

/** Fills `buf` (4-byte aligned) with deterministic bytes: the 32-bit words of seededRandom(seed). */
export function fillNoise(buf: Uint8Array, seed: number): void {
  let a = seed >>> 0;
  const n = buf.length >> 2;
  const words = new Uint32Array(buf.buffer, buf.byteOffset, n);
  for (let i = 0; i < n; i++) words[i] = mulberry32((a = (a + MULBERRY32_STEP) >>> 0));
  for (let i = n * 4; i < buf.length; i++) buf[i] = mulberry32((a = (a + MULBERRY32_STEP) >>> 0)) & 255;
}

export class TrainStep {
  private readonly shapes: Map<string, number[]>;

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly graph: TrainGraph,
    readonly spec: TrainGraphSpec,
  ) {
    this.shapes = new Map(graph.params.map((p) => [p, paramShape(spec.config, p, spec.numLabels)]));
  }

  static async create(spec: TrainGraphSpec, opts: SessionOptions = {}): Promise<TrainStep> {
    const graph = buildTrainGraph(spec);
    const session = await createSession(graph.model, opts);
    return new TrainStep(session, graph, spec);
  }

  get config(): EncoderConfig {
    return this.spec.config;
  }

  /**
   * Runs forward and backward. `target` is [batch, numLabels] (see Graph.crossEntropy); `noiseSeed`
   * fixes the dropout masks, so a step is a pure function of its inputs (what makes resume exact).
   */
  async run(params: Params, batch: EncodedBatch, target: Float32Array, noiseSeed: number): Promise<StepResult> {
    const { batchSize: B, seqLen: S } = batch;
    const cfg = this.spec.config;
    const feeds = batchFeeds(batch, cfg);
    feeds.target = new ort.Tensor('float32', target, [B, this.spec.numLabels]);
    for (const p of this.graph.params) {
      const t = params.get(p);
      if (!t) throw new Error(`parameter ${p} is missing`);
      feeds[p] = new ort.Tensor('float32', t, this.shapes.get(p)!);
    }
    const shapes = this.graph.noise.map((n) => n.shape(B, S));
    const total = shapes.reduce((s, d) => s + d.reduce((a, b) => a * b, 1), 0);
    const noise = new Uint8Array(total);
    fillNoise(noise, noiseSeed);
    let off = 0;
    this.graph.noise.forEach((n, i) => {
      const size = shapes[i]!.reduce((a, b) => a * b, 1);
      feeds[n.name] = new ort.Tensor('uint8', noise.subarray(off, off + size), shapes[i]!);
      off += size;
    });
    const out = await this.session.run(feeds);
    const grads: Params = new Map();
    for (const p of this.graph.gradOutputs) grads.set(p, out[`grad.${p}`]!.data as Float32Array);
    let sq = (out.grad_sq_norm!.data as Float32Array)[0]!;
    const rowGrads = new Map<string, RowGrads>();
    if (this.graph.embeddingsGrad) {
      const perToken = out['grad.embeddings']!.data as Float32Array;
      const positions = Int32Array.from({ length: B * S }, (_, r) => r % S);
      rowGrads.set('embeddings.word', scatterRows(perToken, batch.inputIds, cfg.hidden));
      rowGrads.set('embeddings.position', scatterRows(perToken, positions, cfg.hidden));
      if (cfg.typeVocab > 0) rowGrads.set('embeddings.type', scatterRows(perToken, batch.tokenTypeIds, cfg.hidden));
      for (const r of rowGrads.values()) for (let i = 0; i < r.grad.length; i++) sq += r.grad[i]! * r.grad[i]!;
    }
    return {
      loss: (out.loss!.data as Float32Array)[0]!,
      logits: out.logits!.data as Float32Array,
      grads,
      rowGrads,
      gradNorm: Math.sqrt(sq),
    };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
