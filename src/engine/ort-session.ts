/**
 * ONNX Runtime sessions as every graph of the project opens them (threads, optimisation level,
 * execution provider), and the feeds of a tokenized batch.
 */
import os from 'node:os';
import * as ort from 'onnxruntime-node';
import type { EncodedBatch } from '../features/tokenize';
import type { EncoderConfig } from './checkpoint';

export interface SessionOptions {
  /** Intra-op threads; default: every core. */
  threads?: number;
  executionProviders?: string[];
  /** Only errors in ONNX Runtime's log (skl2onnx graphs declare label shapes ORT warns about on every run). */
  quiet?: boolean;
}

function sessionOptions(o: SessionOptions = {}): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: o.threads ?? os.availableParallelism(),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    ...(o.quiet ? { logSeverityLevel: 3 as const } : {}),
    executionProviders: (o.executionProviders ?? ['cpu']) as ort.InferenceSession.SessionOptions['executionProviders'],
  };
}

/**
 * Creates a session, explaining a missing GPU execution provider: onnxruntime-node ships the CPU
 * provider; its CUDA provider is downloaded by its install script only when asked for.
 */
export async function createSession(model: Buffer | string, o: SessionOptions = {}): Promise<ort.InferenceSession> {
  try {
    return typeof model === 'string'
      ? await ort.InferenceSession.create(model, sessionOptions(o))
      : await ort.InferenceSession.create(model, sessionOptions(o));
  } catch (err) {
    const ep = (o.executionProviders ?? []).find((p) => p !== 'cpu');
    if (!ep) throw err;
    throw new Error(
      `ONNX Runtime could not start the "${ep}" execution provider (${(err as Error).message.split('\n')[0]}). ` +
        'On a GPU host with CUDA 12 and cuDNN 9, install it with `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild ' +
        'onnxruntime-node` (it downloads the provider), or train on the CPU (--execution-provider cpu).',
    );
  }
}

/** Feeds for a tokenized batch: int64 ids, mask and (when the model has them) token types. */
export function batchFeeds(batch: EncodedBatch, config: EncoderConfig): Record<string, ort.Tensor> {
  const dims = [batch.batchSize, batch.seqLen];
  const big = (a: Int32Array) =>
    new ort.Tensor(
      'int64',
      BigInt64Array.from(a, (x) => BigInt(x)),
      dims,
    );
  const feeds: Record<string, ort.Tensor> = {
    input_ids: big(batch.inputIds),
    attention_mask: big(batch.attentionMask),
  };
  if (config.typeVocab > 0) feeds.token_type_ids = big(batch.tokenTypeIds);
  return feeds;
}
