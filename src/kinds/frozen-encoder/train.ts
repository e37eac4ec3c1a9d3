/**
 * One tracked frozen-encoder experiment (shared by `make baseline-frozen`, notebooks/03_experiments and
 * retraining): embed every split once, fit the logistic-regression head, evaluate, log the model.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PreparedData } from '../../data/prepare';
import type { AnyTaskSpec, Example } from '../../data/tasks';
import { evaluateProbs, type Evaluation } from '../../evaluate/metrics';
import { evaluationHtml, evaluationJson } from '../../evaluate/report';
import { logHeldOutScores, logTrainingInputs } from '../log-evaluation';
import { fitAndSaveScope, scoreForTask } from '../scope/fit';
import { addPythonFlavor } from '../pyfunc';
import { TextTokenizer } from '../../features/tokenize';
import type { ActiveRun } from '../../mlflow';
import { OrtEncoder } from '../../engine/encoder-onnx';
import { predictProba, type LogRegOptions } from '../../estimators/logreg';
import { checkpointOf, classifierSignature, type TextTrainRequest, loggedNumber } from '../types';
import { FROZEN_HEAD, FROZEN_LOGREG, trainFrozenHead } from './recipe';

export { trainFrozenHead } from './recipe';
import { embedTexts } from '../../engine/encoder-folder';
import { dense, FROZEN_FLAVOR, loadFrozenPredictor, saveFrozenModel, type FrozenEncoderModel } from './model';

export function evaluateFrozenHead(
  m: FrozenEncoderModel,
  embeddings: Float32Array[],
  examples: readonly Example[],
  positiveLabel?: string,
): Evaluation {
  return evaluateProbs(predictProba(m.logreg, embeddings.map(dense)), examples, m.labelMap, positiveLabel);
}

export interface FrozenRunOptions {
  tokenizer: TextTokenizer;
  encoder: OrtEncoder;
  checkpointName: string;
  /** Folder of the checkpoint, copied into the logged model so it can be served on its own. */
  checkpointDir: string;
  maxLength: number;
  epochs: number;
  /** Head training options (default FROZEN_LOGREG; `epochs` above wins). */
  head?: LogRegOptions;
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

export interface FrozenEmbeddings {
  train: Float32Array[];
  validation: Float32Array[];
  test: Float32Array[];
  seconds: number;
}

/** Embeds the three splits once (the slow part; a tuning study reuses the result across trials). */
export async function embedSplits(
  data: PreparedData,
  o: Pick<FrozenRunOptions, 'tokenizer' | 'encoder' | 'maxLength' | 'onProgress'>,
): Promise<FrozenEmbeddings> {
  const t0 = Date.now();
  const embed = (split: string, xs: readonly Example[]) =>
    embedTexts(
      o.tokenizer,
      o.encoder,
      xs.map((e) => e.text),
      { maxLength: o.maxLength, batchSize: 32, onProgress: (d, t) => o.onProgress?.(split, d, t) },
    );
  const train = await embed('train', data.train);
  const validation = await embed('validation', data.validation);
  const test = await embed('test', data.test);
  return { train, validation, test, seconds: (Date.now() - t0) / 1000 };
}

/** The params a frozen-encoder run logs (and `make retrain` reads back). */
export function frozenParams(
  task: string,
  checkpointName: string,
  maxLength: number,
  head: LogRegOptions,
  trainDigest?: string,
): Record<string, string | number | boolean> {
  return {
    model: 'frozen-encoder-logreg',
    task,
    checkpoint: checkpointName,
    max_length: maxLength,
    pooling: FROZEN_HEAD.pooling,
    epochs: head.epochs,
    learning_rate: head.learningRate,
    l2: head.l2,
    batch_size: head.batchSize,
    seed: head.seed,
    runtime: 'onnxruntime-node',
    ...(trainDigest ? { 'data.digest.train': trainDigest.slice(0, 32) } : {}),
  };
}

/** One tracked frozen-encoder experiment (shared by `make baseline-frozen` and notebooks/03_experiments). */
export async function runFrozenEncoder(
  spec: AnyTaskSpec,
  data: PreparedData,
  o: FrozenRunOptions,
  run?: ActiveRun,
): Promise<FrozenRunResult> {
  const head = { ...(o.head ?? FROZEN_LOGREG), epochs: o.epochs };
  await run?.logParams(frozenParams(spec.name, o.checkpointName, o.maxLength, head, data.trainDigest));
  const emb = await embedSplits(data, o);
  const t1 = Date.now();
  const model = await trainFrozenHead(emb.train, data.train, data.labelMap, undefined, head);
  const trainSeconds = (Date.now() - t1) / 1000;
  const validation = evaluateFrozenHead(model, emb.validation, data.validation, spec.positiveLabel);
  const test = evaluateFrozenHead(model, emb.test, data.test, spec.positiveLabel);
  const texts = emb.train.length + emb.validation.length + emb.test.length;
  const result = { model, validation, test, embedSeconds: emb.seconds, trainSeconds, texts };
  if (run) await logFrozenRun(run, spec, data, result, o);
  return result;
}

/** Logs a trained frozen-encoder model to `run`: datasets, timings, the report, the model and its scores. */
export async function logFrozenRun(
  run: ActiveRun,
  spec: AnyTaskSpec,
  data: PreparedData,
  r: FrozenRunResult,
  o: Pick<FrozenRunOptions, 'checkpointDir' | 'maxLength'>,
): Promise<string> {
  const { model, validation, test, embedSeconds, trainSeconds, texts } = r;
  await logTrainingInputs(run, spec.name, data);
  await run.logMetrics({
    ...(embedSeconds > 0 ? { embed_seconds: embedSeconds, embed_texts_per_second: texts / embedSeconds } : {}),
    train_seconds: trainSeconds,
  });
  await run.logText(evaluationJson(test), 'eval/evaluation_test.json');
  await run.logText(
    evaluationHtml(`${spec.name}: frozen encoder + logistic regression (test)`, test),
    'eval/evaluation_test.html',
  );
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'frozen-model-'));
  try {
    saveFrozenModel(model, o.checkpointDir, o.maxLength, tmp);
    await fitAndSaveScope(tmp, { kind: 'frozen-encoder-logreg', load: loadFrozenPredictor }, data, run, {
      score: scoreForTask(spec),
    });
    const modelId = await run.logModel(tmp, {
      artifactPath: 'model',
      modelType: 'frozen-encoder-logreg',
      flavors: {
        [FROZEN_FLAVOR]: {
          encoder: 'encoder',
          head: 'head.json',
          label_map: 'label_map.json',
          runtime: 'onnxruntime-node',
          pooling: 'mean',
          max_length: o.maxLength,
        },
        python_function: addPythonFlavor(tmp, {
          kind: 'frozen-encoder-logreg',
          encoder: 'encoder',
          onnx: 'encoder/model.onnx',
          head: 'head.json',
          max_length: o.maxLength,
          label_map: 'label_map.json',
        }),
      },
      signature: classifierSignature(data.labelMap.labels),
      inputExample: data.test.slice(0, 2).map((e) => ({ text: e.text })),
    });
    await logHeldOutScores(run, modelId, spec.name, data, { validation, test });
    return modelId;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** The inverse of `frozenParams` for the head: a run's logged params back to training options. */
export function frozenHeadFromParams(params: Record<string, string>): LogRegOptions {
  const num = (k: string, d: number) => loggedNumber(params, k, d);
  return {
    ...FROZEN_LOGREG,
    epochs: num('epochs', FROZEN_LOGREG.epochs),
    learningRate: num('learning_rate', FROZEN_LOGREG.learningRate),
    l2: num('l2', FROZEN_LOGREG.l2),
    batchSize: num('batch_size', FROZEN_LOGREG.batchSize),
    seed: num('seed', FROZEN_LOGREG.seed),
  };
}

/** A retraining challenger: the promoted run's checkpoint, max length and head options on new data. */
export async function trainFromParams(req: TextTrainRequest): Promise<FrozenRunResult> {
  const { name, dir } = checkpointOf(req);
  const encoder = await OrtEncoder.fromCheckpoint(dir);
  try {
    const head = frozenHeadFromParams(req.hyper);
    const o = {
      tokenizer: await TextTokenizer.fromDir(dir),
      encoder,
      checkpointName: name,
      checkpointDir: dir,
      maxLength: Number(req.hyper.max_length ?? FROZEN_HEAD.maxLength),
      epochs: head.epochs,
      head,
    };
    return await runFrozenEncoder(req.spec, req.data, o, req.run);
  } finally {
    await encoder.release();
  }
}
