/**
 * Second baseline: frozen pretrained encoder embeddings (mean pooled, as sentence-transformers does)
 * + multinomial logistic regression. The encoder runs on ONNX Runtime; texts are embedded in
 * length-sorted batches (less padding), with a progress callback.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LabelMap } from '../data/labels';
import { encodeLabels } from '../data/labels';
import type { Example, TaskSpec } from '../data/tasks';
import { evaluateProbs, evaluationMetrics, type Evaluation } from '../evaluate/metrics';
import { evaluationHtml, evaluationJson } from '../evaluate/report';
import type { ActiveRun } from '../mlflow';
import type { PreparedData } from './baseline-run';
import { lengthSortedBatches, padBatch, TextTokenizer } from '../features/tokenize';
import { OrtEncoder } from '../model/encoder-onnx';
import { TOKENIZER_FILES } from '../model/hf-classifier';
import { DEFAULT_LOGREG, logRegFromJson, logRegToJson, predictProba, trainLogReg, type LogRegJson, type LogRegOptions, type LogRegState } from '../models/logreg';
import type { SparseVector } from '../models/tfidf';

export interface EmbedOptions {
  maxLength: number;
  batchSize: number;
  onProgress?: (done: number, total: number) => void;
}

/** L2-normalised mean-pooled embeddings, in the order of `texts`. */
export async function embedTexts(tok: TextTokenizer, enc: OrtEncoder, texts: readonly string[], o: EmbedOptions): Promise<Float32Array[]> {
  const encoded = texts.map((t) => tok.encode(t, o.maxLength));
  const out = new Array<Float32Array>(texts.length);
  let done = 0;
  for (const idx of lengthSortedBatches(encoded.map((e) => e.length), o.batchSize)) {
    const res = await enc.run(padBatch(idx.map((i) => encoded[i]!), tok.padId, { maxLength: o.maxLength }));
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

const dense = (v: Float32Array): SparseVector => ({ indices: Int32Array.from(v, (_, i) => i), values: v });

export interface FrozenEncoderModel {
  kind: 'frozen-encoder-logreg';
  labelMap: LabelMap;
  logreg: LogRegState;
}

export function trainFrozenHead(embeddings: Float32Array[], train: readonly Example[], labelMap: LabelMap, classWeights: number[] | undefined, opts: LogRegOptions = { ...DEFAULT_LOGREG, epochs: 40, learningRate: 0.01, l2: 0 }): FrozenEncoderModel {
  const ys = encodeLabels(train.map((e) => e.label), labelMap);
  const logreg = trainLogReg(embeddings.map(dense), ys, embeddings[0]!.length, labelMap.labels.length, { ...opts, classWeights });
  return { kind: 'frozen-encoder-logreg', labelMap, logreg };
}

export function evaluateFrozenHead(m: FrozenEncoderModel, embeddings: Float32Array[], examples: readonly Example[], positiveLabel?: string): Evaluation {
  return evaluateProbs(predictProba(m.logreg, embeddings.map(dense)), examples, m.labelMap, positiveLabel);
}

const ENCODER_FILES = ['config.json', ...TOKENIZER_FILES, 'model.safetensors'];

/** A self-contained model folder: the encoder's Hugging Face files under encoder/, the head and the label map. */
export function saveFrozenModel(model: FrozenEncoderModel, checkpointDir: string, maxLength: number, dir: string): void {
  fs.mkdirSync(path.join(dir, 'encoder'), { recursive: true });
  for (const f of ENCODER_FILES) if (fs.existsSync(path.join(checkpointDir, f))) fs.copyFileSync(path.join(checkpointDir, f), path.join(dir, 'encoder', f));
  fs.writeFileSync(path.join(dir, 'head.json'), JSON.stringify({ kind: model.kind, maxLength, pooling: 'mean', logreg: logRegToJson(model.logreg) }));
  fs.writeFileSync(path.join(dir, 'label_map.json'), `${JSON.stringify(model.labelMap, null, 2)}\n`);
}

/** Loads a folder written by saveFrozenModel as a text -> probabilities function. */
export async function loadFrozenModel(dir: string): Promise<{ labels: string[]; predictProba: (texts: readonly string[]) => Promise<Float32Array> }> {
  const head = JSON.parse(fs.readFileSync(path.join(dir, 'head.json'), 'utf8')) as { maxLength: number; logreg: LogRegJson };
  const labelMap = JSON.parse(fs.readFileSync(path.join(dir, 'label_map.json'), 'utf8')) as LabelMap;
  const tokenizer = await TextTokenizer.fromDir(path.join(dir, 'encoder'));
  const encoder = await OrtEncoder.fromCheckpoint(path.join(dir, 'encoder'));
  const logreg = logRegFromJson(head.logreg);
  return {
    labels: labelMap.labels,
    predictProba: async (texts) => predictProba(logreg, (await embedTexts(tokenizer, encoder, texts, { maxLength: head.maxLength, batchSize: 32 })).map(dense)),
  };
}

export interface FrozenRunOptions {
  tokenizer: TextTokenizer;
  encoder: OrtEncoder;
  checkpointName: string;
  /** Folder of the checkpoint, copied into the logged model so it can be served on its own. */
  checkpointDir: string;
  maxLength: number;
  epochs: number;
  onProgress?: (split: string, done: number, total: number) => void;
}

export interface FrozenRunResult {
  model: FrozenEncoderModel;
  validation: Evaluation;
  test: Evaluation;
  embedSeconds: number;
  trainSeconds: number;
  texts: number;
}

/** One tracked frozen-encoder experiment (shared by `make baseline-frozen` and notebooks/03_experiments). */
export async function runFrozenEncoder(spec: TaskSpec<any>, data: PreparedData, o: FrozenRunOptions, run?: ActiveRun): Promise<FrozenRunResult> {
  const head = { ...DEFAULT_LOGREG, epochs: o.epochs, learningRate: 0.01, l2: 0 };
  await run?.logParams({ model: 'frozen-encoder-logreg', task: spec.name, checkpoint: o.checkpointName, max_length: o.maxLength, pooling: 'mean', epochs: head.epochs, learning_rate: head.learningRate, runtime: 'onnxruntime-node', ...(data.trainDigest ? { 'data.digest.train': data.trainDigest.slice(0, 32) } : {}) });
  const t0 = Date.now();
  const embed = (split: string, xs: readonly Example[]) => embedTexts(o.tokenizer, o.encoder, xs.map((e) => e.text), { maxLength: o.maxLength, batchSize: 32, onProgress: (d, t) => o.onProgress?.(split, d, t) });
  const tr = await embed('train', data.train);
  const va = await embed('validation', data.validation);
  const te = await embed('test', data.test);
  const embedSeconds = (Date.now() - t0) / 1000;
  const t1 = Date.now();
  const model = trainFrozenHead(tr, data.train, data.labelMap, undefined, head);
  const trainSeconds = (Date.now() - t1) / 1000;
  const validation = evaluateFrozenHead(model, va, data.validation, spec.positiveLabel);
  const test = evaluateFrozenHead(model, te, data.test, spec.positiveLabel);
  const texts = tr.length + va.length + te.length;
  if (run) {
    await run.logMetrics({ ...evaluationMetrics(validation, 'val_'), ...evaluationMetrics(test, 'test_'), embed_seconds: embedSeconds, embed_texts_per_second: texts / embedSeconds, train_seconds: trainSeconds });
    await run.logText(evaluationJson(test), 'eval/evaluation_test.json');
    await run.logText(evaluationHtml(`${spec.name}: frozen encoder + logistic regression (test)`, test), 'eval/evaluation_test.html');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'frozen-model-'));
    try {
      saveFrozenModel(model, o.checkpointDir, o.maxLength, tmp);
      await run.client.logModel(run.runId, tmp, {
        artifactPath: 'model',
        flavors: { ts_frozen_encoder: { encoder: 'encoder', head: 'head.json', label_map: 'label_map.json', runtime: 'onnxruntime-node', pooling: 'mean', max_length: o.maxLength } },
        signature: { inputs: [{ name: 'text', type: 'string' }], outputs: [{ name: 'label', type: 'string' }, ...data.labelMap.labels.map((l) => ({ name: `p(${l})`, type: 'double' as const }))] },
        inputExample: data.test.slice(0, 2).map((e) => ({ text: e.text })),
      });
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  return { model, validation, test, embedSeconds, trainSeconds, texts };
}
