/**
 * A pretrained encoder as a model folder carries it (config, tokenizer files, the encoder as ONNX), and
 * the embeddings it gives: L2-normalised mean-pooled vectors, in length-sorted batches (less padding).
 * Shared by every part that reads a second, frozen view of a text: the frozen-encoder and hybrid kinds
 * and the `mahalanobis+knn` scope rule.
 */
import fs from 'node:fs';
import path from 'node:path';
import { lengthSortedBatches, padBatch, type TextTokenizer } from '../features/tokenize';
import { encoderGraph, OrtEncoder } from './encoder-onnx';
import { TOKENIZER_FILES } from './hf-classifier';

export interface EmbedOptions {
  maxLength: number;
  batchSize: number;
  onProgress?: (done: number, total: number) => void;
}

/** L2-normalised mean-pooled embeddings, in the order of `texts`. */
export async function embedTexts(
  tok: TextTokenizer,
  enc: OrtEncoder,
  texts: readonly string[],
  o: EmbedOptions,
): Promise<Float32Array[]> {
  const encoded = texts.map((t) => tok.encode(t, o.maxLength));
  const out = new Array<Float32Array>(texts.length);
  let done = 0;
  for (const idx of lengthSortedBatches(
    encoded.map((e) => e.length),
    o.batchSize,
  )) {
    const res = await enc.run(
      padBatch(
        idx.map((i) => encoded[i]!),
        tok.padId,
        { maxLength: o.maxLength },
      ),
    );
    idx.forEach((i, r) => {
      const v = res.meanPooled.slice(r * res.hidden, (r + 1) * res.hidden);
      const norm = Math.hypot(...v) || 1;
      for (let j = 0; j < v.length; j++) v[j]! /= norm;
      out[i] = v;
    });
    done += idx.length;
    o.onProgress?.(done, texts.length);
  }
  return out;
}

export const ENCODER_FILES = ['config.json', ...TOKENIZER_FILES, 'model.safetensors'];

/**
 * The pretrained encoder of a model folder: the checkpoint's config and tokenizer files and the encoder
 * as ONNX (model.onnx), the graph both runtimes run.
 */
export function writeEncoderFolder(checkpointDir: string, encDir: string): void {
  fs.mkdirSync(encDir, { recursive: true });
  for (const f of ENCODER_FILES.filter((f) => f !== 'model.safetensors'))
    if (fs.existsSync(path.join(checkpointDir, f))) fs.copyFileSync(path.join(checkpointDir, f), path.join(encDir, f));
  fs.writeFileSync(path.join(encDir, 'model.onnx'), encoderGraph(checkpointDir));
}

/** The encoder of a model folder; folders logged before it shipped as ONNX hold its safetensors weights. */
export const loadEncoderFolder = (encDir: string): Promise<OrtEncoder> =>
  fs.existsSync(path.join(encDir, 'model.onnx'))
    ? OrtEncoder.fromOnnx(path.join(encDir, 'model.onnx'), encDir)
    : OrtEncoder.fromCheckpoint(encDir);
