/**
 * The frozen-encoder model kind (flavor ts_frozen_encoder): pretrained encoder embeddings (mean
 * pooled, as sentence-transformers does) + multinomial logistic regression. The encoder runs on ONNX
 * Runtime; texts are embedded in length-sorted batches (less padding). Training is in ./train.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LabelMap } from '../../data/labels';
import { TextTokenizer } from '../../features/tokenize';
import { embedTexts, loadEncoderFolder, writeEncoderFolder } from '../../engine/encoder-folder';
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

export const dense = (v: Float32Array): SparseVector => ({ indices: Int32Array.from(v, (_, i) => i), values: v });

export interface FrozenEncoderModel {
  kind: 'frozen-encoder-logreg';
  labelMap: LabelMap;
  logreg: LogRegState;
}

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
