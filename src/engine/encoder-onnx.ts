/**
 * ONNX Runtime sessions over the BERT graphs of bert-graph.ts: the frozen encoder (last hidden state,
 * [CLS] vector and attention-masked mean, as sentence-transformers pools) and the sequence
 * classifier (logits and probabilities), both fed tokenized batches with dynamic sizes.
 */
import * as ort from 'onnxruntime-node';
import { lengthSortedBatches, padBatch, type EncodedBatch } from '../features/tokenize';
import { buildInferGraph } from './bert-graph';
import { loadEncoderCheckpoint, readEncoderConfig, type EncoderConfig } from './checkpoint';
import { batchFeeds, createSession, type SessionOptions } from './ort-session';
import type { Params } from './train-step';

export interface EncoderOutput {
  lastHidden: Float32Array;
  cls: Float32Array;
  meanPooled: Float32Array;
  batchSize: number;
  seqLen: number;
  hidden: number;
}

export class OrtEncoder {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly config: EncoderConfig,
  ) {}

  /**
   * An encoder saved as ONNX (`encoderGraph`) beside its config.json: what a model folder ships, so
   * Python's onnxruntime runs the very same graph.
   */
  static async fromOnnx(file: string, configDir: string, opts: SessionOptions = {}): Promise<OrtEncoder> {
    return new OrtEncoder(await createSession(file, opts), readEncoderConfig(configDir));
  }

  /** Loads a Hugging Face checkpoint folder and compiles its encoder for ONNX Runtime. */
  static async fromCheckpoint(dir: string, opts: SessionOptions = {}): Promise<OrtEncoder> {
    const { config, weights } = loadEncoderCheckpoint(dir);
    const model = buildInferGraph({ config, weights, pooling: 'mean', numLabels: 0 });
    return new OrtEncoder(await createSession(model, opts), config);
  }

  async run(batch: EncodedBatch): Promise<EncoderOutput> {
    const out = await this.session.run(batchFeeds(batch, this.config));
    return {
      lastHidden: out.last_hidden_state!.data as Float32Array,
      cls: out.cls!.data as Float32Array,
      meanPooled: out.mean_pooled!.data as Float32Array,
      batchSize: batch.batchSize,
      seqLen: batch.seqLen,
      hidden: this.config.hidden,
    };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * A sequence classifier on ONNX Runtime: from model bytes with the weights inside (serving), or
 * with the weights fed on every call (evaluation between training steps).
 */
export class OrtClassifier {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly config: EncoderConfig,
    readonly numLabels: number,
    private readonly paramShapes?: Map<string, number[]>,
  ) {}

  static async create(
    model: Buffer | string,
    config: EncoderConfig,
    numLabels: number,
    opts: SessionOptions & { paramShapes?: Map<string, number[]> } = {},
  ): Promise<OrtClassifier> {
    return new OrtClassifier(await createSession(model, opts), config, numLabels, opts.paramShapes);
  }

  /** Probabilities, row-major [batch, numLabels]. */
  async probs(batch: EncodedBatch, params?: Params): Promise<Float32Array> {
    return (await this.outputs(batch, ['probs'], params)).probs!;
  }

  /** Whether the graph has an output (graphs saved before `pooled` existed lack it). */
  hasOutput(name: string): boolean {
    return this.session.outputNames.includes(name);
  }

  /** Named outputs ([batch, width] each) of one batch; a classifier fed its weights needs `params`. */
  async outputs(
    batch: EncodedBatch,
    names: readonly ClassifierOutput[],
    params?: Params,
  ): Promise<Record<string, Float32Array>> {
    const feeds = batchFeeds(batch, this.config);
    if (this.paramShapes) {
      if (!params) throw new Error('this classifier is fed its weights: pass params');
      for (const [name, shape] of this.paramShapes) feeds[name] = new ort.Tensor('float32', params.get(name)!, shape);
    }
    const out = await this.session.run(feeds, names as string[]);
    return Object.fromEntries(names.map((n) => [n, out[n]!.data as Float32Array]));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

export type ClassifierOutput = 'logits' | 'probs' | 'pooled';

/**
 * Named outputs of a classifier graph for pre-tokenized texts, scored in length-sorted batches, in
 * input order: row-major [texts, width] per output.
 */
export async function classifierOutputs(
  clf: OrtClassifier,
  encoded: readonly number[][],
  padId: number,
  maxLength: number,
  names: readonly ClassifierOutput[],
  batchSize = 32,
  params?: Params,
): Promise<Record<string, Float32Array>> {
  const width = (n: ClassifierOutput) => (n === 'pooled' ? clf.config.hidden : clf.numLabels);
  const out = Object.fromEntries(names.map((n) => [n, new Float32Array(encoded.length * width(n))]));
  for (const idx of lengthSortedBatches(
    encoded.map((e) => e.length),
    batchSize,
  )) {
    const res = await clf.outputs(
      padBatch(
        idx.map((i) => encoded[i]!),
        padId,
        { maxLength },
      ),
      names,
      params,
    );
    for (const n of names) {
      const w = width(n);
      idx.forEach((i, r) => out[n]!.set(res[n]!.subarray(r * w, (r + 1) * w), i * w));
    }
  }
  return out;
}

/** Class probabilities of pre-tokenized texts, scored in length-sorted batches, in input order. */
export async function predictEncoded(
  clf: OrtClassifier,
  encoded: readonly number[][],
  padId: number,
  maxLength: number,
  batchSize: number,
  params?: Params,
): Promise<Float32Array> {
  return (await classifierOutputs(clf, encoded, padId, maxLength, ['probs'], batchSize, params)).probs!;
}

/** The frozen encoder of a Hugging Face checkpoint as an ONNX model (outputs last_hidden_state, cls, mean_pooled). */
export function encoderGraph(checkpointDir: string): Buffer {
  const { config, weights } = loadEncoderCheckpoint(checkpointDir);
  return buildInferGraph({ config, weights, pooling: 'mean', numLabels: 0 });
}
