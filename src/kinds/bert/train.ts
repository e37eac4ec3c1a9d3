/**
 * One tracked BERT fine-tuning experiment (shared by `make finetune`, notebooks/03_experiments and
 * retraining): fine-tune, then export the best weights as a Hugging Face folder and as ONNX graphs
 * (fp32, and int8 dynamic quantization whose accuracy loss on the test set is measured), evaluate,
 * and log params, per-step and per-epoch metrics, reports and the servable model (flavor ts_bert).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PreparedData } from '../../data/prepare';
import type { AnyTaskSpec } from '../../data/tasks';
import { evaluateProbs, type Evaluation } from '../../evaluate/metrics';
import { evaluationHtml, evaluationJson, type TrainingCurves } from '../../evaluate/report';
import { splitDataset } from '../../data/tracking';
import { logHeldOutScores, logTrainingInputs } from '../log-evaluation';
import { fitAndSaveScope, scoreForTask } from '../scope/fit';
import { addPythonFlavor } from '../pyfunc';
import { TextTokenizer } from '../../features/tokenize';
import type { ActiveRun } from '../../mlflow';
import { POOLINGS, type Pooling } from '../../engine/bert-graph';
import { OrtClassifier, predictEncoded } from '../../engine/encoder-onnx';
import type { SessionOptions } from '../../engine/ort-session';
import { finishCheckpoints } from '../../train/checkpoints';
import type { FineTuneConfig } from '../../train/config';
import { DEFAULT_FINETUNE } from '../../train/recipe';
import {
  fineTune,
  type FineTuneInputs,
  type FineTuneEvent,
  type FineTuneResult,
  type MetricEntry,
} from '../../train/finetune';
import { checkpointOf, classifierSignature, type TextTrainRequest, loggedNumber } from '../types';
import { BERT_FLAVOR, loadBertPredictor, saveBertModel } from './model';

/** Largest accuracy drop (points) at which the int8 graph is the one served. */
export const INT8_MAX_LOSS_POINTS = 0.5;

export interface BertRunOptions {
  tokenizer: TextTokenizer;
  checkpointDir: string;
  checkpointName: string;
  /** Checkpoints and best weights; a matching checkpoint here is resumed. */
  workDir: string;
  config: FineTuneConfig;
  session?: SessionOptions;
  /** Also export and measure an int8 graph (default true). */
  quantize?: boolean;
  onEvent?: (e: FineTuneEvent) => void;
  /** After each epoch's validation (a tuning trial's pruner); throwing stops the run. */
  onEpochEnd?: FineTuneInputs['onEpochEnd'];
}

export interface BertRunResult extends FineTuneResult {
  test: Evaluation;
  testInt8?: Evaluation;
  /** The ONNX file the logged model serves. */
  served: 'model.onnx' | 'model.int8.onnx';
  inferenceExamplesPerSecond: number;
  modelDir: string;
}

export function fineTuneParams(
  task: string,
  checkpoint: string,
  c: FineTuneConfig,
  trainDigest?: string,
): Record<string, string | number | boolean> {
  return {
    model: 'bert-finetune',
    task,
    checkpoint,
    runtime: 'onnxruntime-node',
    max_length: c.maxLength,
    batch_size: c.batchSize,
    epochs: c.epochs,
    learning_rate: c.learningRate,
    weight_decay: c.weightDecay,
    warmup_ratio: c.warmupRatio,
    max_grad_norm: c.maxGradNorm,
    pooling: c.pooling,
    class_weights: c.classWeights,
    freeze_embeddings: c.freezeEmbeddings,
    freeze_layers: c.freezeLayers,
    patience: c.patience,
    seed: c.seed,
    group_by_length: c.groupByLength ?? false,
    ...(c.dropout?.hidden !== undefined ? { dropout_hidden: c.dropout.hidden } : {}),
    ...(c.dropout?.attention !== undefined ? { dropout_attention: c.dropout.attention } : {}),
    ...(c.dropout?.classifier !== undefined ? { dropout_classifier: c.dropout.classifier } : {}),
    ...(trainDigest ? { 'data.digest.train': trainDigest.slice(0, 32) } : {}),
  };
}

/** The inverse of `fineTuneParams`: a run's logged params back to a fine-tuning config (retraining). */
export function fineTuneConfigFromParams(params: Record<string, string>): FineTuneConfig {
  const D = DEFAULT_FINETUNE;
  const num = (k: string, d: number) => loggedNumber(params, k, d);
  const bool = (k: string, d: boolean) => (params[k] === undefined ? d : params[k] === 'true');
  const pooling = POOLINGS.includes(params.pooling as Pooling) ? (params.pooling as Pooling) : D.pooling;
  const dropout = {
    hidden: params.dropout_hidden,
    attention: params.dropout_attention,
    classifier: params.dropout_classifier,
  };
  return {
    ...D,
    maxLength: num('max_length', D.maxLength),
    batchSize: num('batch_size', D.batchSize),
    epochs: num('epochs', D.epochs),
    learningRate: num('learning_rate', D.learningRate),
    weightDecay: num('weight_decay', D.weightDecay),
    warmupRatio: num('warmup_ratio', D.warmupRatio),
    maxGradNorm: num('max_grad_norm', D.maxGradNorm),
    pooling,
    classWeights: bool('class_weights', D.classWeights),
    freezeEmbeddings: bool('freeze_embeddings', D.freezeEmbeddings),
    freezeLayers: num('freeze_layers', D.freezeLayers),
    patience: num('patience', D.patience),
    groupByLength: bool('group_by_length', D.groupByLength ?? false),
    seed: num('seed', D.seed),
    ...(Object.values(dropout).some((v) => v !== undefined)
      ? {
          dropout: Object.fromEntries(
            Object.entries(dropout)
              .filter(([, v]) => v !== undefined)
              .map(([k, v]) => [k, Number(v)]),
          ),
        }
      : {}),
  };
}

/** Loss per optimizer step, and per epoch the train loss against the validation loss and macro-F1. */
function bertCurves(state: FineTuneResult['state']): TrainingCurves {
  const epochs = state.history.map((h) => h.epoch);
  const withLoss = state.history.filter((h) => h.valLoss !== undefined && Number.isFinite(h.trainLoss));
  return {
    loss: { x: state.lossCurve.map(([s]) => s), y: state.lossCurve.map(([, l]) => l), per: 'step' },
    epochs: {
      title: 'Per epoch: train vs validation',
      yTitle: 'loss / score',
      series: {
        'train loss (epoch mean)': { x: withLoss.map((h) => h.epoch), y: withLoss.map((h) => h.trainLoss) },
        'validation loss': { x: withLoss.map((h) => h.epoch), y: withLoss.map((h) => h.valLoss!) },
        'validation macro-F1': { x: epochs, y: state.history.map((h) => h.valMacroF1) },
      },
    },
  };
}

/**
 * The step-metrics sink of a fine-tuning run. A resumed run re-trains the steps after its last
 * checkpoint; those already delivered before the crash (live flushes) are dropped here, found as
 * the run's highest logged train_loss step, so every step is in MLflow exactly once.
 */
function stepMetricsSink(run: ActiveRun): (entries: MetricEntry[]) => Promise<void> {
  let deliveredThrough: Promise<number> | undefined;
  return async (entries) => {
    deliveredThrough ??= run.client
      .getMetricHistory(run.runId, 'train_loss')
      .then((h) => h.reduce((m, p) => Math.max(m, p.step), -1))
      .catch(() => -1);
    const after = await deliveredThrough;
    const timestamp = Date.now();
    const metrics = entries
      .filter((e) => e.step > after)
      .flatMap((e) => Object.entries(e.values).map(([key, value]) => ({ key, value, step: e.step, timestamp })));
    if (metrics.length) await run.client.logBatch(run.runId, { metrics });
  };
}

export async function runFineTune(
  spec: AnyTaskSpec,
  data: PreparedData,
  o: BertRunOptions,
  run?: ActiveRun,
): Promise<BertRunResult> {
  await run?.logParams(fineTuneParams(spec.name, o.checkpointName, o.config, data.trainDigest));
  const result = await fineTune({
    checkpointDir: o.checkpointDir,
    tokenizer: o.tokenizer,
    train: data.train,
    validation: data.validation,
    labelMap: data.labelMap,
    dataDigest: data.trainDigest,
    workDir: o.workDir,
    config: o.config,
    session: o.session,
    positiveLabel: spec.positiveLabel,
    logMetrics: run ? stepMetricsSink(run) : undefined,
    onEvent: o.onEvent,
    onEpochEnd: o.onEpochEnd,
  });
  const modelDir = path.join(o.workDir, 'model');
  fs.rmSync(modelDir, { recursive: true, force: true });
  const files = saveBertModel(
    modelDir,
    o.checkpointDir,
    result.encoderConfig,
    result.params,
    { pooling: o.config.pooling, maxLength: o.config.maxLength, labelMap: data.labelMap },
    o.quantize ?? true,
  );

  const testIds = data.test.map((e) => o.tokenizer.encode(e.text, o.config.maxLength));
  const k = data.labelMap.labels.length;
  const evalFile = async (file: string) => {
    const clf = await OrtClassifier.create(file, result.encoderConfig, k, o.session);
    try {
      const t0 = Date.now();
      const probs = await predictEncoded(clf, testIds, o.tokenizer.padId, o.config.maxLength, 32);
      return {
        ev: evaluateProbs(probs, data.test, data.labelMap, spec.positiveLabel),
        seconds: (Date.now() - t0) / 1000,
      };
    } finally {
      await clf.release();
    }
  };
  const fp32 = await evalFile(files.fp32);
  const int8 = files.int8 ? await evalFile(files.int8) : undefined;
  const int8Loss = int8 ? (fp32.ev.accuracy - int8.ev.accuracy) * 100 : undefined;
  const served = int8 && int8Loss! <= INT8_MAX_LOSS_POINTS ? 'model.int8.onnx' : 'model.onnx';
  const inferenceExamplesPerSecond = data.test.length / (served === 'model.int8.onnx' ? int8! : fp32).seconds;

  if (run) {
    // Run-level scalars, logged once without a step; the held-out scores go with the logged model below.
    await logTrainingInputs(run, spec.name, data);
    await run.logMetrics({
      ...(int8 ? { int8_accuracy_loss_points: int8Loss! } : {}),
      best_epoch: result.state.bestEpoch + 1,
      train_seconds: result.state.trainSeconds,
      train_examples_per_second: result.state.examples / Math.max(1e-9, result.state.trainSeconds),
      test_examples_per_second_fp32: data.test.length / fp32.seconds,
      ...(int8 ? { test_examples_per_second_int8: data.test.length / int8.seconds } : {}),
    });
    await run.setTags({
      'model.served_graph': served,
      ...(result.resumedFromStep !== undefined ? { 'train.resumed_from_step': String(result.resumedFromStep) } : {}),
    });
    await run.logText(evaluationJson(fp32.ev), 'eval/evaluation_test.json');
    await run.logText(
      evaluationHtml(`${spec.name}: fine-tuned ${o.checkpointName} (test, fp32)`, fp32.ev, bertCurves(result.state)),
      'eval/evaluation_test.html',
    );
    if (int8) await run.logText(evaluationJson(int8.ev), 'eval/evaluation_test_int8.json');
    await run.logText(JSON.stringify(result.state.history, null, 2), 'eval/epochs.json');
    const staging = fs.mkdtempSync(path.join(os.tmpdir(), 'bert-model-'));
    try {
      fs.cpSync(modelDir, staging, { recursive: true });
      await fitAndSaveScope(
        staging,
        { kind: 'bert-finetune', load: (d) => loadBertPredictor(d, { onnx: served }) },
        data,
        run,
        {
          score: scoreForTask(spec),
          neighbourCheckpoint: o.checkpointDir,
        },
      );
      const modelId = await run.logModel(staging, {
        artifactPath: 'model',
        modelType: 'bert-finetune',
        flavors: {
          [BERT_FLAVOR]: {
            hf: 'hf',
            onnx: served,
            onnx_fp32: 'model.onnx',
            ...(files.int8 ? { onnx_int8: 'model.int8.onnx' } : {}),
            label_map: 'label_map.json',
            runtime: 'onnxruntime-node',
            pooling: o.config.pooling,
            max_length: o.config.maxLength,
          },
          python_function: addPythonFlavor(staging, {
            kind: 'bert-finetune',
            hf: 'hf',
            onnx: served,
            max_length: o.config.maxLength,
            label_map: 'label_map.json',
          }),
        },
        signature: classifierSignature(data.labelMap.labels),
        inputExample: data.test.slice(0, 2).map((e) => ({ text: e.text })),
      });
      await logHeldOutScores(run, modelId, spec.name, data, { validation: result.validation, test: fp32.ev });
      if (int8)
        await run.logEvaluation(
          modelId,
          { test_accuracy_int8: int8.ev.accuracy, test_macro_f1_int8: int8.ev.macro.f1 },
          splitDataset(spec.name, 'test', data.test),
        );
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
    }
  }
  finishCheckpoints(o.workDir, result.state);
  return { ...result, test: fp32.ev, testInt8: int8?.ev, served, inferenceExamplesPerSecond, modelDir };
}

/** A retraining challenger: the promoted run's fine-tuning recipe (its params) on new data. */
export async function trainFromParams(req: TextTrainRequest): Promise<BertRunResult> {
  const { name, dir } = checkpointOf(req);
  const o = {
    tokenizer: await TextTokenizer.fromDir(dir),
    checkpointDir: dir,
    checkpointName: name,
    workDir: req.paths.workDir,
    config: fineTuneConfigFromParams(req.hyper),
  };
  return runFineTune(req.spec, req.data, o, req.run);
}
