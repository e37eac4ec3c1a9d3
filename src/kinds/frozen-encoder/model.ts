/**
 * The frozen-encoder model kind (flavor ts_frozen_encoder): pretrained encoder embeddings (mean
 * pooled, as sentence-transformers does) + multinomial logistic regression. The encoder runs on ONNX
 * Runtime; texts are embedded in length-sorted batches (less padding). Training is in ./train.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LabelMap } from '../../data/labels';
import { lengthSortedBatches, padBatch, TextTokenizer } from '../../features/tokenize';
import { encoderGraph, OrtEncoder } from '../../engine/encoder-onnx';
import { TOKENIZER_FILES } from '../../engine/hf-classifier';
import {
  logRegFromJson,
  logRegToJson,
  predictLogits,
  softmaxRows,
  type LogRegJson,
  type LogRegState,
} from '../../estimators/logreg';
import type { SparseVector } from '../../estimators/tfidf';
import type { TextPredictor } from '../types';

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

export const dense = (v: Float32Array): SparseVector => ({ indices: Int32Array.from(v, (_, i) => i), values: v });

export interface FrozenEncoderModel {
  kind: 'frozen-encoder-logreg';
  labelMap: LabelMap;
  logreg: LogRegState;
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

/**
 * A self-contained model folder: under encoder/ the checkpoint's config and tokenizer files and the
 * encoder as ONNX (model.onnx, the graph both runtimes run: onnxruntime-node here, onnxruntime in
 * the python_function flavor), then the head and the label map.
 */
export function saveFrozenModel(
  model: FrozenEncoderModel,
  checkpointDir: string,
  maxLength: number,
  dir: string,
): void {
  writeEncoderFolder(checkpointDir, path.join(dir, 'encoder'));
  fs.writeFileSync(
    path.join(dir, 'head.json'),
    JSON.stringify({ kind: model.kind, maxLength, pooling: 'mean', logreg: logRegToJson(model.logreg) }),
  );
  fs.writeFileSync(path.join(dir, 'label_map.json'), `${JSON.stringify(model.labelMap, null, 2)}\n`);
}

export const FROZEN_FLAVOR = 'ts_frozen_encoder';

/** Loads a folder written by saveFrozenModel as a predictor (one ONNX Runtime session, released by `release`). */
export async function loadFrozenPredictor(dir: string): Promise<TextPredictor> {
  const head = JSON.parse(fs.readFileSync(path.join(dir, 'head.json'), 'utf8')) as {
    maxLength: number;
    logreg: LogRegJson;
  };
  const labelMap = JSON.parse(fs.readFileSync(path.join(dir, 'label_map.json'), 'utf8')) as LabelMap;
  const tokenizer = await TextTokenizer.fromDir(path.join(dir, 'encoder'));
  const encoder = await loadEncoderFolder(path.join(dir, 'encoder'));
  const logreg = logRegFromJson(head.logreg);
  const predictRaw = async (texts: readonly string[]) => {
    const embedded = await embedTexts(tokenizer, encoder, texts, { maxLength: head.maxLength, batchSize: 32 });
    const dim = encoder.config.hidden;
    const data = new Float32Array(texts.length * dim);
    embedded.forEach((v, i) => data.set(v, i * dim));
    // The head reads the L2-normalised embedding: the features the Mahalanobis score measures.
    return { logits: predictLogits(logreg, embedded.map(dense)), features: { data, dim } };
  };
  return {
    input: 'text',
    kind: 'frozen-encoder-logreg',
    flavor: FROZEN_FLAVOR,
    labels: labelMap.labels,
    predictProba: async (texts) => softmaxRows((await predictRaw(texts)).logits, labelMap.labels.length),
    predictRaw,
    release: () => encoder.release(),
  };
}
