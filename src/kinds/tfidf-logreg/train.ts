/**
 * One tracked baseline experiment: train on a prepared task, evaluate on validation and test, and
 * (given a run) log params, per-epoch loss, metrics, evaluation report and the model with its MLmodel.
 * Shared by `make baseline` and notebooks/03_experiments.ipynb.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { classWeights, encodeLabels } from '../../data/labels';
import type { PreparedData } from '../../data/prepare';
import type { AnyTaskSpec } from '../../data/tasks';
import type { Evaluation } from '../../evaluate/metrics';
import { evaluationHtml, evaluationJson } from '../../evaluate/report';
import { logHeldOutScores, logTrainingInputs } from '../log-evaluation';
import { fitAndSaveScope, scoreForTask } from '../scope/fit';
import { addPythonFlavor } from '../pyfunc';
import type { ActiveRun } from '../../mlflow';
import { classifierSignature, type TextTrainRequest, loggedNumber } from '../types';
import {
  DEFAULT_BASELINE,
  evaluateBaseline,
  loadTfidfPredictor,
  saveBaseline,
  TFIDF_FLAVOR,
  trainBaseline,
  type BaselineConfig,
  type BaselineModel,
} from './model';

export interface BaselineRunResult {
  model: BaselineModel;
  validation: Evaluation;
  test: Evaluation;
  curve: { x: number[]; y: number[] };
  trainSeconds: number;
}

export function baselineParams(
  task: string,
  config: BaselineConfig,
  trainDigest?: string,
): Record<string, string | number | boolean> {
  return {
    model: 'tfidf-logreg',
    task,
    ngram_range: config.tfidf.ngramRange.join('-'),
    min_df: config.tfidf.minDf,
    sublinear_tf: config.tfidf.sublinearTf,
    epochs: config.logreg.epochs,
    batch_size: config.logreg.batchSize,
    learning_rate: config.logreg.learningRate,
    l2: config.logreg.l2,
    seed: config.logreg.seed,
    class_weights: config.useClassWeights,
    ...(trainDigest ? { 'data.digest.train': trainDigest.slice(0, 32) } : {}),
  };
}

export async function runBaseline(
  spec: AnyTaskSpec,
  data: PreparedData,
  config: BaselineConfig,
  run?: ActiveRun,
  opts: { progress?: boolean } = {},
): Promise<BaselineRunResult> {
  await run?.logParams(baselineParams(spec.name, config, data.trainDigest));
  const weights = classWeights(
    encodeLabels(
      data.train.map((e) => e.label),
      data.labelMap,
    ),
    data.labelMap.labels.length,
  );
  const showBar = opts.progress ?? process.stderr.isTTY;
  const bar = showBar
    ? new SingleBar(
        { format: `  ${spec.name} [{bar}] epoch {value}/{total} loss {loss}`, stream: process.stderr },
        Presets.shades_classic,
      )
    : undefined;
  bar?.start(config.logreg.epochs, 0, { loss: '-' });
  const curve = { x: [] as number[], y: [] as number[] };
  const valCurve = { x: [] as number[], y: [] as number[] };
  const t0 = Date.now();
  const model = trainBaseline(
    data.train,
    data.labelMap,
    weights,
    config,
    (e) => {
      curve.x.push(e.epoch);
      curve.y.push(e.loss);
      if (e.valLoss !== undefined) {
        valCurve.x.push(e.epoch);
        valCurve.y.push(e.valLoss);
      }
      bar?.update(e.epoch, { loss: e.loss.toFixed(4) });
    },
    run ? data.validation : undefined,
  );
  bar?.stop();
  const trainSeconds = (Date.now() - t0) / 1000;
  const validation = evaluateBaseline(model, data.validation, spec.positiveLabel);
  const test = evaluateBaseline(model, data.test, spec.positiveLabel);
  if (run) await logBaselineRun(run, spec, data, { model, validation, test, curve, valCurve, trainSeconds });
  return { model, validation, test, curve, trainSeconds };
}

/** Logs a trained baseline to `run`: datasets, loss curves, the evaluation report, the model and its scores. */
export async function logBaselineRun(
  run: ActiveRun,
  spec: AnyTaskSpec,
  data: PreparedData,
  r: BaselineRunResult & { valCurve: { x: number[]; y: number[] } },
): Promise<string> {
  const { model, validation, test, curve, valCurve, trainSeconds } = r;
  await logTrainingInputs(run, spec.name, data);
  const series = (key: string, c: typeof curve) =>
    c.y.map((value, i) => ({ key, value, step: c.x[i]!, timestamp: Date.now() }));
  await run.client.logBatch(run.runId, {
    metrics: [...series('train_loss', curve), ...series('epoch/val_loss', valCurve)],
  });
  await run.logMetrics({ train_seconds: trainSeconds, num_features: model.tfidf.vocabulary.length });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'baseline-'));
  try {
    fs.writeFileSync(path.join(tmp, 'evaluation_test.json'), evaluationJson(test));
    fs.writeFileSync(
      path.join(tmp, 'evaluation_test.html'),
      evaluationHtml(`${spec.name}: TF-IDF + logistic regression (test)`, test, {
        epochs: {
          title: 'Loss per epoch: train vs validation',
          yTitle: 'cross-entropy',
          series: { 'train loss': curve, 'validation loss': valCurve },
        },
      }),
    );
    await run.logArtifact(path.join(tmp, 'evaluation_test.json'), 'eval');
    await run.logArtifact(path.join(tmp, 'evaluation_test.html'), 'eval');
    const modelDir = path.join(tmp, 'model');
    saveBaseline(model, modelDir);
    await fitAndSaveScope(modelDir, { kind: 'tfidf-logreg', load: loadTfidfPredictor }, data, run, {
      score: scoreForTask(spec),
    });
    const modelId = await run.logModel(modelDir, {
      artifactPath: 'model',
      modelType: 'tfidf-logreg',
      flavors: {
        [TFIDF_FLAVOR]: {
          loader_module: 'src/kinds/tfidf-logreg/model',
          loader: 'loadTfidfPredictor',
          model_file: 'model.json',
          label_map: 'label_map.json',
        },
        python_function: addPythonFlavor(modelDir, {
          kind: 'tfidf-logreg',
          model_file: 'model.json',
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

/** The inverse of `baselineParams`: a run's logged params back to a training config. */
export function baselineConfigFromParams(params: Record<string, string>): BaselineConfig {
  const num = (k: string, d: number) => loggedNumber(params, k, d);
  const [lo, hi] = (params.ngram_range ?? '1-2').split('-').map(Number);
  return {
    tfidf: {
      ...DEFAULT_BASELINE.tfidf,
      ngramRange: [lo ?? 1, hi ?? lo ?? 2],
      minDf: num('min_df', DEFAULT_BASELINE.tfidf.minDf),
      sublinearTf: params.sublinear_tf !== 'false',
    },
    logreg: {
      ...DEFAULT_BASELINE.logreg,
      epochs: num('epochs', DEFAULT_BASELINE.logreg.epochs),
      batchSize: num('batch_size', DEFAULT_BASELINE.logreg.batchSize),
      learningRate: num('learning_rate', DEFAULT_BASELINE.logreg.learningRate),
      l2: num('l2', DEFAULT_BASELINE.logreg.l2),
      seed: num('seed', DEFAULT_BASELINE.logreg.seed),
    },
    useClassWeights: params.class_weights !== 'false',
  };
}

/** A retraining challenger: the promoted run's recipe (its params) on new data. */
export function trainFromParams(req: TextTrainRequest): Promise<BaselineRunResult> {
  return runBaseline(req.spec, req.data, baselineConfigFromParams(req.hyper), req.run, { progress: false });
}
