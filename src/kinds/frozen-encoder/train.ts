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
import { addPythonFlavor } from '../pyfunc';
import { TextTokenizer } from '../../features/tokenize';
import type { ActiveRun } from '../../mlflow';
import { OrtEncoder } from '../../engine/encoder-onnx';
import { DEFAULT_LOGREG, predictProba } from '../../estimators/logreg';
import { checkpointOf, classifierSignature, type TextTrainRequest } from '../types';
import { FROZEN_HEAD, trainFrozenHead } from './recipe';

export { trainFrozenHead } from './recipe';
import { dense, embedTexts, FROZEN_FLAVOR, saveFrozenModel, type FrozenEncoderModel } from './model';

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
export async function runFrozenEncoder(
  spec: AnyTaskSpec,
  data: PreparedData,
  o: FrozenRunOptions,
  run?: ActiveRun,
): Promise<FrozenRunResult> {
  const head = { ...DEFAULT_LOGREG, epochs: o.epochs, learningRate: FROZEN_HEAD.learningRate, l2: FROZEN_HEAD.l2 };
  await run?.logParams({
    model: 'frozen-encoder-logreg',
    task: spec.name,
    checkpoint: o.checkpointName,
    max_length: o.maxLength,
    pooling: FROZEN_HEAD.pooling,
    epochs: head.epochs,
    learning_rate: head.learningRate,
    runtime: 'onnxruntime-node',
    ...(data.trainDigest ? { 'data.digest.train': data.trainDigest.slice(0, 32) } : {}),
  });
  const t0 = Date.now();
  const embed = (split: string, xs: readonly Example[]) =>
    embedTexts(
      o.tokenizer,
      o.encoder,
      xs.map((e) => e.text),
      { maxLength: o.maxLength, batchSize: 32, onProgress: (d, t) => o.onProgress?.(split, d, t) },
    );
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
    await logTrainingInputs(run, spec.name, data);
    await run.logMetrics({
      embed_seconds: embedSeconds,
      embed_texts_per_second: texts / embedSeconds,
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
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  return { model, validation, test, embedSeconds, trainSeconds, texts };
}

/** A retraining challenger: the promoted run's checkpoint, max length and head epochs on new data. */
export async function trainFromParams(req: TextTrainRequest): Promise<FrozenRunResult> {
  const { name, dir } = checkpointOf(req);
  const encoder = await OrtEncoder.fromCheckpoint(dir);
  try {
    const o = {
      tokenizer: await TextTokenizer.fromDir(dir),
      encoder,
      checkpointName: name,
      checkpointDir: dir,
      maxLength: Number(req.hyper.max_length ?? FROZEN_HEAD.maxLength),
      epochs: Number(req.hyper.epochs ?? FROZEN_HEAD.epochs),
    };
    return await runFrozenEncoder(req.spec, req.data, o, req.run);
  } finally {
    await encoder.release();
  }
}
