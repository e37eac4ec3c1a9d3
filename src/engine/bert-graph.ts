/**
 * The BERT-family encoder and sequence-classification head, defined once and emitted as ONNX in three
 * forms: the frozen encoder (pooled embeddings), the classifier for inference (fp32, or int8 dynamic
 * quantization of the encoder's dense layers), and the training step (dropout, weighted
 * cross-entropy and the gradient of every trainable parameter). Training feeds the weights as
 * inputs, so the optimizer in TypeScript updates them in place between steps.
 */
import type { EncoderConfig, EncoderWeights } from './checkpoint';
import { canonicalNames } from './checkpoint';
import { Graph, type Name } from './graph';
import { DataType } from './onnx-proto';

export type Pooling = 'mean' | 'cls' | 'pooler';
export const POOLINGS: readonly Pooling[] = ['mean', 'cls', 'pooler'];

export interface DropoutRates {
  hidden: number;
  attention: number;
  classifier: number;
}

/** Embedding tables: their gradient leaves the graph per token (`grad.embeddings`), not per table. */
export const TABLES = ['embeddings.word', 'embeddings.position', 'embeddings.type'];

/** A dropout site: the training step is fed one uint8 noise tensor of this shape per site. */
export interface NoiseSite {
  name: Name;
  shape: (batch: number, seq: number) => number[];
}

/** Parameter names of a classifier: the encoder's canonical names, the pooler if used, the head. */
export function classifierParamNames(cfg: EncoderConfig, pooling: Pooling): string[] {
  return [
    ...canonicalNames(cfg),
    ...(pooling === 'pooler' ? ['pooler.weight', 'pooler.bias'] : []),
    'classifier.weight',
    'classifier.bias',
  ];
}

export function paramShape(cfg: EncoderConfig, name: string, numLabels: number): number[] {
  const H = cfg.hidden;
  const fixed: Record<string, number[]> = {
    'embeddings.word': [cfg.vocabSize, H],
    'embeddings.position': [cfg.maxPositions, H],
    'embeddings.type': [cfg.typeVocab, H],
    'pooler.weight': [H, H],
    'pooler.bias': [H],
    'classifier.weight': [numLabels, H],
    'classifier.bias': [numLabels],
  };
  if (fixed[name]) return fixed[name]!;
  if (/^embeddings\.ln\./.test(name)) return [H];
  const m = /^layers\.\d+\.(\w+)\.(weight|bias)$/.exec(name);
  if (!m) throw new Error(`unknown parameter ${name}`);
  const [, part, wb] = m;
  if (part!.startsWith('ln')) return [H];
  if (part === 'ffn_in') return wb === 'weight' ? [cfg.intermediate, H] : [cfg.intermediate];
  if (part === 'ffn_out') return wb === 'weight' ? [H, cfg.intermediate] : [H];
  return wb === 'weight' ? [H, H] : [H];
}

/** Flat trained parameters as shaped weights (what buildInferGraph bakes in). */
export function shapedWeights(
  cfg: EncoderConfig,
  params: ReadonlyMap<string, Float32Array>,
  numLabels: number,
): EncoderWeights {
  return new Map([...params].map(([name, data]) => [name, { shape: paramShape(cfg, name, numLabels), data }]));
}

/** Which layer a parameter belongs to: -1 for embeddings, cfg.layers for pooler and head. */
export function paramLayer(cfg: EncoderConfig, name: string): number {
  if (name.startsWith('embeddings.')) return -1;
  const m = /^layers\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : cfg.layers;
}

/**
 * Per-output-column symmetric int8 quantization of W [out, in], returned transposed [in, out] as
 * DynamicQuantizeMatMul wants. 7-bit range: on AVX2 without VNNI the u8s8 kernels can saturate
 * at full range (ONNX Runtime's own quantizer calls this reduce_range).
 */
export function quantizeColumns(w: Float32Array, out: number, inp: number): { q: Int8Array; scale: Float32Array } {
  const q = new Int8Array(out * inp);
  const scale = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    let max = 0;
    for (let i = 0; i < inp; i++) max = Math.max(max, Math.abs(w[o * inp + i]!));
    const s = max / 63 || 1;
    scale[o] = s;
    for (let i = 0; i < inp; i++) q[i * out + o] = Math.max(-63, Math.min(63, Math.round(w[o * inp + i]! / s)));
  }
  return { q, scale };
}

interface Common {
  config: EncoderConfig;
  pooling: Pooling;
}

export interface TrainGraphSpec extends Common {
  numLabels: number;
  /** Parameters that receive gradients; the others are fed but frozen. */
  trainable: ReadonlySet<string>;
  dropout: DropoutRates;
}

export interface TrainGraph {
  model: Buffer;
  params: string[];
  /** Trainable parameters with a `grad.<name>` output (embedding tables excluded: see embeddingsGrad). */
  gradOutputs: string[];
  /**
   * When the embedding tables train: output `grad.embeddings` [batch*seq, hidden], the gradient of
   * their sum per token.
   */
  embeddingsGrad: boolean;
  noise: NoiseSite[];
}

export interface InferGraphSpec extends Common {
  /** Baked in as initializers; without them the weights are graph inputs (evaluation while training). */
  weights?: EncoderWeights;
  /** Classifier head size; 0 = encoder only (outputs last_hidden_state, cls, mean_pooled). */
  numLabels: number;
  quantize?: 'int8';
}

/** Dropout keeps an element when its uint8 noise is >= round(p * 256): the effective rate is that / 256. */
export const dropoutThreshold = (p: number): number => Math.min(255, Math.round(p * 256));

function forward(
  g: Graph,
  cfg: EncoderConfig,
  pooling: Pooling,
  weight: (name: string) => Name,
  linear: (x: Name, prefix: string) => Name,
  dropout: (x: Name, site: 'hidden' | 'attention', shape: NoiseSite['shape']) => Name,
  tapEmbeddings = false,
): { tap: Name; hidden3: Name; pooled: Name; maskF: Name } {
  const H = cfg.hidden;
  const nh = cfg.heads;
  const dh = H / nh;
  const ids = g.input('input_ids', DataType.INT64, ['batch', 'seq']);
  const mask = g.input('attention_mask', DataType.INT64, ['batch', 'seq']);
  const types = cfg.typeVocab > 0 ? g.input('token_type_ids', DataType.INT64, ['batch', 'seq']) : undefined;

  const bs = g.op('Shape', [ids]);
  const seqLen = g.op('Gather', [bs, g.ints([1], true)], [{ name: 'axis', value: 0 }]);
  const positions = g.op('Range', [g.ints([0], true), seqLen, g.ints([1], true)]);
  // Embedding sum: the tables' gradient is the gradient of this sum per token (scattered by the caller).
  let emb = g.op('Add', [
    g.op('Gather', [weight('embeddings.word'), ids]),
    g.op('Gather', [weight('embeddings.position'), positions]),
  ]);
  if (types) emb = g.op('Add', [emb, g.op('Gather', [weight('embeddings.type'), types])]);
  const rowsH = g.ints([-1, H]);
  const tap = g.op('Reshape', [emb, rowsH]);
  if (tapEmbeddings) g.differentiable(tap);
  const perToken = (b: number, s: number) => [b * s, H];
  let h = dropout(
    g.layerNorm(tap, weight('embeddings.ln.weight'), weight('embeddings.ln.bias'), cfg.layerNormEps),
    'hidden',
    perToken,
  );

  const maskF = g.op('Cast', [mask], [{ name: 'to', value: DataType.FLOAT }]);
  const extMask = g.op('Unsqueeze', [
    g.op('Mul', [g.op('Sub', [g.scalar(1), maskF]), g.scalar(-10000)]),
    g.ints([1, 2]),
  ]);
  const headShape = g.op('Concat', [bs, g.ints([nh, dh])], [{ name: 'axis', value: 0 }]);
  const scale = g.scalar(1 / Math.sqrt(dh));

  for (let i = 0; i < cfg.layers; i++) {
    const p = `layers.${i}`;
    const heads = (x: Name, perm: number[]) => g.transpose(g.reshape(x, headShape), perm);
    const q = heads(linear(h, `${p}.q`), [0, 2, 1, 3]);
    const kT = heads(linear(h, `${p}.k`), [0, 2, 3, 1]);
    const v = heads(linear(h, `${p}.v`), [0, 2, 1, 3]);
    const probs = g.softmax(g.addConst(g.mulConst(g.matmul(q, kT, 4), scale), extMask));
    const dropped = dropout(probs, 'attention', (b, s) => [b, nh, s, s]);
    const ctx = g.reshape(g.transpose(g.matmul(dropped, v, 4), [0, 2, 1, 3]), rowsH);
    const h1 = g.layerNorm(
      g.add(dropout(linear(ctx, `${p}.o`), 'hidden', perToken), h),
      weight(`${p}.ln1.weight`),
      weight(`${p}.ln1.bias`),
      cfg.layerNormEps,
    );
    const ffn = linear(g.gelu(linear(h1, `${p}.ffn_in`)), `${p}.ffn_out`);
    h = g.layerNorm(
      g.add(dropout(ffn, 'hidden', perToken), h1),
      weight(`${p}.ln2.weight`),
      weight(`${p}.ln2.bias`),
      cfg.layerNormEps,
    );
  }
  const hidden3 = g.reshape(h, g.op('Concat', [bs, g.ints([H])], [{ name: 'axis', value: 0 }]));
  const first3 = g.op('Unsqueeze', [
    g.op('Cast', [g.op('Equal', [positions, g.ints([0], true)])], [{ name: 'to', value: DataType.FLOAT }]),
    g.ints([0, 2]),
  ]);
  const mask3 = g.op('Unsqueeze', [maskF, g.ints([2])]);
  const pooled =
    pooling === 'mean'
      ? g.maskedMean(hidden3, mask3)
      : pooling === 'cls'
        ? g.firstToken(hidden3, first3)
        : g.tanh(g.linear(g.firstToken(hidden3, first3), weight('pooler.weight'), weight('pooler.bias')));
  return { tap, hidden3, pooled, maskF };
}

/** The training step: loss, logits and gradients, with weights fed as inputs. */
export function buildTrainGraph(spec: TrainGraphSpec): TrainGraph {
  const cfg = spec.config;
  const g = new Graph(`${cfg.family}-classifier-train`);
  const params = classifierParamNames(cfg, spec.pooling);
  for (const p of params) {
    g.input(p, DataType.FLOAT, paramShape(cfg, p, spec.numLabels));
    if (spec.trainable.has(p) && !TABLES.includes(p)) g.differentiable(p);
  }
  const embeddingsTrain = spec.trainable.has('embeddings.word');
  const noise: NoiseSite[] = [];
  const dropout = (x: Name, site: 'hidden' | 'attention' | 'classifier', shape: NoiseSite['shape']): Name => {
    const p = spec.dropout[site];
    const t = dropoutThreshold(p);
    if (t === 0) return x;
    const name = `noise_${noise.length}`;
    noise.push({ name, shape });
    g.input(
      name,
      DataType.UINT8,
      site === 'attention' ? ['batch', cfg.heads, 'seq', 'seq'] : [`${name}_rows`, cfg.hidden],
    );
    const keep = g.op(
      'Cast',
      [g.op('GreaterOrEqual', [g.op('Cast', [name], [{ name: 'to', value: DataType.FLOAT }]), g.scalar(t)])],
      [{ name: 'to', value: DataType.FLOAT }],
    );
    return g.mulConst(x, g.op('Mul', [keep, g.scalar(256 / (256 - t))]));
  };
  const { pooled, tap } = forward(
    g,
    cfg,
    spec.pooling,
    (n) => n,
    (x, prefix) => g.linear(x, `${prefix}.weight`, `${prefix}.bias`),
    dropout,
    embeddingsTrain,
  );
  const logits = g.linear(
    dropout(pooled, 'classifier', (b) => [b, cfg.hidden]),
    'classifier.weight',
    'classifier.bias',
  );
  const target = g.input('target', DataType.FLOAT, ['batch', spec.numLabels]);
  const loss = g.crossEntropy(logits, target);
  g.output(loss, 'loss', DataType.FLOAT, []);
  g.output(logits, 'logits', DataType.FLOAT, ['batch', spec.numLabels]);

  const gradOutputs = params.filter((p) => spec.trainable.has(p) && !TABLES.includes(p));
  const grads = g.gradients(loss, [...gradOutputs, ...(embeddingsTrain ? [tap] : [])]);
  const constGrad = (p: string) => g.op('Mul', [p, g.scalar(0)]);
  const squares: Name[] = [];
  for (const p of gradOutputs) {
    const gp = grads.get(p) ?? constGrad(p);
    squares.push(g.op('ReduceSumSquare', [gp], [{ name: 'keepdims', value: 0 }]));
    g.output(gp, `grad.${p}`, DataType.FLOAT, paramShape(cfg, p, spec.numLabels));
  }
  // Squared L2 norm of the dense gradients, for clipping without another pass over them in JS.
  g.output(
    squares.length ? squares.reduce((a, b) => g.op('Add', [a, b])) : g.scalar(0),
    'grad_sq_norm',
    DataType.FLOAT,
    [],
  );
  if (embeddingsTrain) g.output(grads.get(tap)!, 'grad.embeddings', DataType.FLOAT, ['rows', cfg.hidden]);
  return { model: g.toModel(), params, gradOutputs, embeddingsGrad: embeddingsTrain, noise };
}

/** Inference graph with the weights baked in as initializers (optionally int8 dense layers). */
export function buildInferGraph(spec: InferGraphSpec): Buffer {
  const cfg = spec.config;
  const g = new Graph(`${cfg.family}-${spec.numLabels ? 'classifier' : 'encoder'}${spec.quantize ? '-int8' : ''}`);
  const added = new Set<string>();
  const weights = spec.weights;
  if (spec.quantize && !weights) throw new Error('int8 quantization needs the weights');
  const weight = (name: string): Name => {
    if (!added.has(name)) {
      if (weights) {
        const t = weights.get(name);
        if (!t) throw new Error(`missing weight ${name}`);
        g.initializer(name, t.shape, t.data);
      } else g.input(name, DataType.FLOAT, paramShape(cfg, name, spec.numLabels));
      added.add(name);
    }
    return name;
  };
  const linear = (x: Name, prefix: string): Name => {
    if (!spec.quantize) return g.linear(x, weight(`${prefix}.weight`), weight(`${prefix}.bias`));
    const t = weights!.get(`${prefix}.weight`)!;
    const [out, inp] = t.shape as [number, number];
    const { q, scale } = quantizeColumns(t.data, out, inp);
    const qn = g.initializer(`${prefix}.weight_int8`, [inp, out], q);
    const sn = g.initializer(`${prefix}.weight_scale`, [out], scale);
    const zn = g.initializer(`${prefix}.weight_zero`, [out], new Int8Array(out));
    return g.op('DynamicQuantizeMatMul', [x, qn, sn, zn, weight(`${prefix}.bias`)], undefined, 'com.microsoft');
  };
  const { hidden3, pooled, maskF } = forward(g, cfg, spec.pooling, weight, linear, (x) => x);
  if (spec.numLabels === 0) {
    g.output(hidden3, 'last_hidden_state', DataType.FLOAT, ['batch', 'seq', cfg.hidden]);
    g.output(g.op('Gather', [hidden3, g.ints([0], true)], [{ name: 'axis', value: 1 }]), 'cls', DataType.FLOAT, [
      'batch',
      cfg.hidden,
    ]);
    g.output(
      spec.pooling === 'mean' ? pooled : g.maskedMean(hidden3, g.op('Unsqueeze', [maskF, g.ints([2])])),
      'mean_pooled',
      DataType.FLOAT,
      ['batch', cfg.hidden],
    );
  } else {
    const logits = g.linear(pooled, weight('classifier.weight'), weight('classifier.bias'));
    g.output(logits, 'logits', DataType.FLOAT, ['batch', spec.numLabels]);
    // The features the head reads: what a Mahalanobis out-of-scope score measures distances on.
    g.output(pooled, 'pooled', DataType.FLOAT, ['batch', cfg.hidden]);
    g.output(g.op('Softmax', [logits], [{ name: 'axis', value: -1 }]), 'probs', DataType.FLOAT, [
      'batch',
      spec.numLabels,
    ]);
  }
  return g.toModel();
}
