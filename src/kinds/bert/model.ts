/**
 * The fine-tuned BERT model kind (flavor ts_bert): its folder holds hf/ (Hugging Face files),
 * model.onnx (fp32), optionally model.int8.onnx, and label_map.json. Saving and loading only:
 * training lives in ./train.ts, so serving never loads the fine-tuning engine.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TextTokenizer } from '../../features/tokenize';
import { buildInferGraph, shapedWeights, type Pooling } from '../../engine/bert-graph';
import type { EncoderConfig } from '../../engine/checkpoint';
import { classifierOutputs, OrtClassifier } from '../../engine/encoder-onnx';
import { readClassifierMeta, saveHfClassifier, type ClassifierMeta } from '../../engine/hf-classifier';
import type { SessionOptions } from '../../engine/ort-session';
import type { Params } from '../../engine/train-step';
import { softmaxRows } from '../../estimators/logreg';
import type { RawOutputs, TextPredictor } from '../types';

/**
 * Writes a servable model folder from the trained weights: hf/ (Hugging Face files), model.onnx
 * (fp32) and, when asked, model.int8.onnx, plus label_map.json.
 */
export function saveBertModel(
  dir: string,
  baseCheckpointDir: string,
  config: EncoderConfig,
  params: Params,
  meta: ClassifierMeta,
  quantize: boolean,
): { fp32: string; int8?: string } {
  const numLabels = meta.labelMap.labels.length;
  saveHfClassifier(path.join(dir, 'hf'), baseCheckpointDir, config, params, meta);
  const weights = shapedWeights(config, params, numLabels);
  const build = (q?: 'int8') => buildInferGraph({ config, weights, pooling: meta.pooling, numLabels, quantize: q });
  fs.writeFileSync(path.join(dir, 'model.onnx'), build());
  if (quantize) fs.writeFileSync(path.join(dir, 'model.int8.onnx'), build('int8'));
  fs.writeFileSync(path.join(dir, 'label_map.json'), `${JSON.stringify(meta.labelMap, null, 2)}\n`);
  return { fp32: path.join(dir, 'model.onnx'), int8: quantize ? path.join(dir, 'model.int8.onnx') : undefined };
}

/** Loads a folder written by saveBertModel as a text -> probabilities function. */
export async function loadBertModel(
  dir: string,
  onnxFile = 'model.onnx',
  session?: SessionOptions,
): Promise<{
  labels: string[];
  maxLength: number;
  pooling: Pooling;
  predictProba: (texts: readonly string[]) => Promise<Float32Array>;
  predictRaw: (texts: readonly string[]) => Promise<RawOutputs>;
  release: () => Promise<void>;
}> {
  const hf = path.join(dir, 'hf');
  const { config, meta } = readClassifierMeta(hf);
  const tokenizer = await TextTokenizer.fromDir(hf);
  const clf = await OrtClassifier.create(path.join(dir, onnxFile), config, meta.labelMap.labels.length, session);
  // Graphs saved before the pooled output existed give logits only (no Mahalanobis score for them).
  const withPooled = clf.hasOutput('pooled');
  const predictRaw = async (texts: readonly string[]): Promise<RawOutputs> => {
    const out = await classifierOutputs(
      clf,
      texts.map((t) => tokenizer.encode(t, meta.maxLength)),
      tokenizer.padId,
      meta.maxLength,
      withPooled ? ['logits', 'pooled'] : ['logits'],
    );
    return { logits: out.logits!, ...(withPooled ? { features: { data: out.pooled!, dim: config.hidden } } : {}) };
  };
  return {
    labels: meta.labelMap.labels,
    maxLength: meta.maxLength,
    pooling: meta.pooling,
    predictProba: async (texts) => softmaxRows((await predictRaw(texts)).logits, meta.labelMap.labels.length),
    predictRaw,
    release: () => clf.release(),
  };
}

export const BERT_FLAVOR = 'ts_bert';

/**
 * The ts_bert flavor's predictor: the ONNX graph the run chose (int8 when its measured accuracy loss
 * was small enough).
 */
export async function loadBertPredictor(dir: string, flavorConfig: Record<string, unknown>): Promise<TextPredictor> {
  const m = await loadBertModel(dir, typeof flavorConfig.onnx === 'string' ? flavorConfig.onnx : 'model.onnx');
  return {
    input: 'text',
    kind: 'bert-finetune',
    flavor: BERT_FLAVOR,
    labels: m.labels,
    predictProba: m.predictProba,
    predictRaw: m.predictRaw,
    release: m.release,
  };
}
