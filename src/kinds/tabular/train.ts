/**
 * Training of the tabular kind: k-fold comparison of the candidates (make compare), the refit of
 * each on the whole training pool, its ONNX graph checked against the library's own probabilities,
 * its probabilities calibrated (one temperature fitted on the out-of-fold predictions, the only rows the
 * refitted model has not seen besides test), and the MLflow record: a parent run with the comparison
 * table, one child run per candidate with its model. A retraining challenger refits the promoted
 * candidate's recipe on the new feature table.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../config';
import { digestRows, featureTableInputs, type FeatureRow } from '../../data/feature-table';
import type { LabelMap } from '../../data/labels';
import type { TabularTaskSpec } from '../../data/tabular-tasks';
import {
  brierScore,
  expectedCalibrationError,
  logitsOfProbs,
  softmaxWithTemperature,
} from '../../evaluate/calibration';
import { evaluate, evaluationMetrics, type Evaluation } from '../../evaluate/metrics';
import { evaluationJson } from '../../evaluate/report';
import { applyFeatureTransform, fitFeatureTransform, TASK_DERIVED_FEATURES } from '../../features/tabular';
import type { ActiveRun, MlflowClient } from '../../mlflow';
import { withRun } from '../../mlflow/run-context';
import { reportHtml, type Figure } from '../../plots/html';
import { runLearners, type LearnerCandidate } from './learners';
import { comparisonTable, stratifiedFolds, summarise, type CandidateSummary } from './compare';
import type { RecordPredictor, TabularData, TabularTrainRequest } from '../types';
import { loadTabularPredictor, saveTabularModel, TABULAR_FILES, tabularFlavor, tabularSignature } from './model';
import { addPythonFlavor } from '../pyfunc';
import { fitScope, writeScope } from '../scope/rule';
import { SCOPE_CHOICE } from '../scope/choice';

export interface CompareOptions {
  spec: TabularTaskSpec;
  data: TabularData;
  candidates: readonly LearnerCandidate[];
  folds: number;
  seed: number;
  python: string;
  /** Where the model folders of the candidates are kept (a temp dir by default). */
  workDir?: string;
  onProgress?: (line: string) => void;
}

export interface CandidateOutcome {
  summary: CandidateSummary;
  /** Test split, scored by ONNX Runtime through the served predictor. */
  test: Evaluation;
  /** Largest |p(ONNX Runtime) - p(training library)| over the test split (before calibration). */
  parityMaxAbsDiff: number;
  /** Temperature scaling: T, and ECE / Brier before and after on the out-of-fold predictions and on test. */
  calibration: {
    temperature: number;
    oof: CalibrationMeasures;
    test: CalibrationMeasures;
  };
  fullFitSeconds: number;
  /** LightGBM: thresholds moved to float32 before export, and the largest change to a prediction that made (0). */
  thresholdsMoved?: number;
  roundingMaxChange?: number;
  modelDir: string;
}

export interface CalibrationMeasures {
  eceBefore: number;
  eceAfter: number;
  brierBefore: number;
  brierAfter: number;
}

/** ECE and Brier score of binary probabilities [n, 2] before and after temperature `t`. Pure. */
export function calibrationMeasures(probs: Float32Array, y: readonly number[], t: number): CalibrationMeasures {
  const after = softmaxWithTemperature(logitsOfProbs(probs), 2, t);
  return {
    eceBefore: expectedCalibrationError(probs, y, 2),
    eceAfter: expectedCalibrationError(after, y, 2),
    brierBefore: brierScore(probs, y, 2),
    brierAfter: brierScore(after, y, 2),
  };
}

/** A learner's p(positive) per row as probabilities [n, 2] in label-map order. */
export function binaryProbs(positive: readonly number[], pos: number): Float32Array {
  const out = new Float32Array(positive.length * 2);
  positive.forEach((p, i) => {
    out[2 * i + pos] = p;
    out[2 * i + (1 - pos)] = 1 - p;
  });
  return out;
}

export interface Comparison {
  outcomes: CandidateOutcome[];
  best: CandidateOutcome;
  table: { columns: string[]; rows: string[][] };
  versions: Record<string, string>;
  nPool: number;
  nTest: number;
}

/** The rows cross-validated and refitted on (train + validation), and the held-out test rows. */
export function poolAndTest(rows: readonly FeatureRow[]): { pool: FeatureRow[]; test: FeatureRow[] } {
  return { pool: rows.filter((r) => r.split !== 'test'), test: rows.filter((r) => r.split === 'test') };
}

/**
 * Cross-validates every candidate and refits each on the whole pool. The transform is fitted once on
 * the pool: it only standardises numbers and one-hots declared categories (no target encoding), so the
 * folds share nothing but column means and scales.
 */
export async function compareTabular(o: CompareOptions): Promise<Comparison> {
  const { pool, test } = poolAndTest(o.data.rows);
  if (pool.length === 0 || test.length === 0)
    throw new Error(`${o.spec.name}: the feature table has no train or test rows`);
  const derived = TASK_DERIVED_FEATURES[o.spec.name] ?? [];
  const transform = fitFeatureTransform(
    pool.map((r) => r.features),
    o.spec.columns,
    derived,
  );
  const y = pool.map((r) => (r.label === o.spec.positiveLabel ? 1 : 0));
  const folds = stratifiedFolds(
    pool.map((r) => r.label),
    o.folds,
    o.seed,
  );
  const workDir = o.workDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'compare-'));
  const result = await runLearners(
    {
      xTrain: applyFeatureTransform(
        transform,
        pool.map((r) => r.features),
      ),
      nFeatures: transform.outputs.length,
      yTrain: y,
      folds,
      score: [
        {
          name: 'test',
          x: applyFeatureTransform(
            transform,
            test.map((r) => r.features),
          ),
        },
      ],
      candidates: [...o.candidates],
      seed: o.seed,
    },
    { python: o.python, workDir: path.join(workDir, 'bridge'), onProgress: o.onProgress },
  );
  const outcomes: CandidateOutcome[] = [];
  const pos = o.data.labelMap.label2id[o.spec.positiveLabel]!;
  const poolIds = pool.map((r) => o.data.labelMap.label2id[r.label]!);
  const testIds = test.map((r) => o.data.labelMap.label2id[r.label]!);
  for (const c of result.candidates) {
    const modelDir = path.join(workDir, c.name, 'model');
    saveTabularModel(modelDir, c.onnx!, {
      transform,
      labelMap: o.data.labelMap,
      positiveLabel: o.spec.positiveLabel,
      estimator: c.estimator,
      idColumn: o.spec.idColumn,
    });
    // The ONNX graph against the library, before calibration.
    const raw = await loadTabularPredictor(modelDir);
    let uncalibrated: Float32Array;
    try {
      uncalibrated = await raw.predictProba(test.map((r) => r.features));
    } finally {
      await raw.release();
    }
    const library = c.scores!.test!;
    const parityMaxAbsDiff = Math.max(...test.map((_, i) => Math.abs(uncalibrated[2 * i + pos]! - library[i]!)));
    // Every pool row's out-of-fold probability comes from a model that did not see it: the validation
    // predictions temperature scaling needs, as the refit saw the whole pool.
    const oof = binaryProbs(c.oof_proba, pos);
    const scope = fitScope({
      labels: o.data.labelMap.labels,
      validation: { raw: { logits: Float32Array.from(logitsOfProbs(oof)) }, y: poolIds },
      score: 'none',
      recall: SCOPE_CHOICE.recall,
      fallbackLabel: SCOPE_CHOICE.fallbackLabel,
      calibrationSplit: `out-of-fold (${o.folds}-fold cross-validation on train + validation)`,
    });
    writeScope(modelDir, scope);
    const predictor = await loadTabularPredictor(modelDir);
    try {
      const probs = await predictor.predictProba(test.map((r) => r.features));
      outcomes.push({
        summary: summarise(c, y, folds),
        test: evaluateRows(predictor, probs, test, o.data.labelMap),
        parityMaxAbsDiff,
        calibration: {
          temperature: scope.temperature,
          // fitScope measured these on the out-of-fold rows it was fitted on.
          oof: {
            eceBefore: scope.calibration.ece_before,
            eceAfter: scope.calibration.ece_after,
            brierBefore: scope.calibration.brier_before,
            brierAfter: scope.calibration.brier_after,
          },
          test: calibrationMeasures(uncalibrated, testIds, scope.temperature),
        },
        fullFitSeconds: c.full_fit_seconds ?? NaN,
        ...(c.thresholds_moved !== undefined
          ? { thresholdsMoved: c.thresholds_moved, roundingMaxChange: c.rounding_max_change ?? NaN }
          : {}),
        modelDir,
      });
    } finally {
      await predictor.release();
    }
  }
  const best = [...outcomes].sort((a, b) => b.summary.mean.roc_auc - a.summary.mean.roc_auc)[0]!;
  return {
    outcomes,
    best,
    table: comparisonTable(outcomes.map((x) => x.summary)),
    versions: result.versions,
    nPool: pool.length,
    nTest: test.length,
  };
}

function evaluateRows(
  predictor: RecordPredictor,
  probs: Float32Array,
  rows: readonly FeatureRow[],
  labelMap: LabelMap,
): Evaluation {
  const k = predictor.labels.length;
  const yTrue = rows.map((r) => labelMap.label2id[r.label]!);
  const yPred = rows.map((_, i) => (probs[i * k + 1]! > probs[i * k]! ? 1 : 0));
  return evaluate(yTrue, yPred, labelMap.labels, probs, labelMap.label2id[predictor.positiveLabel]);
}

/** Mean AUC with its sd as error bars, one bar per candidate: the picture of the comparison. */
export function comparisonFigure(outcomes: readonly CandidateOutcome[]): Figure {
  const sorted = [...outcomes].sort((a, b) => b.summary.mean.roc_auc - a.summary.mean.roc_auc);
  return {
    data: [
      {
        type: 'bar',
        x: sorted.map((o) => o.summary.name),
        y: sorted.map((o) => o.summary.mean.roc_auc),
        error_y: { type: 'data', array: sorted.map((o) => o.summary.sd.roc_auc), visible: true },
        text: sorted.map((o) => o.summary.mean.roc_auc.toFixed(4)),
        textposition: 'outside',
        name: 'cross-validated ROC AUC',
      },
    ],
    layout: {
      title: { text: 'Cross-validated ROC AUC (mean ± sd over folds)' },
      yaxis: { title: { text: 'ROC AUC' }, range: [0.5, 1] },
      xaxis: { title: { text: 'model' } },
      margin: { t: 50, b: 60 },
    },
  };
}

export function comparisonHtml(spec: TabularTaskSpec, c: Comparison, folds: number): string {
  return reportHtml(`Model comparison: ${spec.name}`, [
    {
      heading: `${folds}-fold cross-validation on ${c.nPool} customers (train + validation)`,
      text:
        `Positive class "${spec.positiveLabel}", threshold 0.5 for F1, recall, precision and accuracy. ` +
        `Best: ${c.best.summary.name}.`,
      table: c.table,
    },
    { heading: 'ROC AUC by model', figure: comparisonFigure(c.outcomes) },
    {
      heading: `Held-out test split (${c.nTest} customers), scored by ONNX Runtime`,
      table: {
        columns: [
          'model',
          'test AUC',
          'test F1 (positive)',
          'test accuracy',
          'temperature',
          'test ECE before → after',
          'max |ONNX - library|',
          'refit (s)',
        ],
        rows: c.outcomes.map((o) => [
          o.summary.name,
          o.test.rocAuc ?? NaN,
          o.test.perClass.find((p) => p.label === spec.positiveLabel)?.f1 ?? NaN,
          o.test.accuracy,
          o.calibration.temperature,
          `${o.calibration.test.eceBefore.toFixed(4)} → ${o.calibration.test.eceAfter.toFixed(4)}`,
          o.parityMaxAbsDiff.toExponential(2),
          o.fullFitSeconds,
        ]),
      },
    },
    {
      heading: 'Libraries',
      table: { columns: ['package', 'version'], rows: Object.entries(c.versions) },
    },
  ]);
}

/** Params of a candidate's child run: the kind, the learner and its hyper-parameters (the recipe retrain reuses). */
export function candidateParams(
  spec: TabularTaskSpec,
  cand: Pick<CandidateSummary, 'estimator' | 'params' | 'name'>,
  extra: { folds: number; seed: number; digest: string },
): Record<string, string | number | boolean> {
  return {
    model: 'tabular-onnx',
    task: spec.name,
    candidate: cand.name,
    estimator: cand.estimator,
    ...Object.fromEntries(Object.entries(cand.params).map(([k, v]) => [`hp.${k}`, v])),
    cv_folds: extra.folds,
    seed: extra.seed,
    derived_features: (TASK_DERIVED_FEATURES[spec.name] ?? []).join(','),
    'data.digest.train': extra.digest,
  };
}

/** The candidate a run's params describe (the inverse of `candidateParams`). */
export function candidateFromParams(params: Record<string, string>): LearnerCandidate {
  const estimator = params.estimator as LearnerCandidate['estimator'];
  if (!['logistic_regression', 'random_forest', 'lightgbm'].includes(estimator))
    throw new Error(`the run's estimator param is "${params.estimator ?? '(none)'}", not a tabular learner`);
  const hp: LearnerCandidate['params'] = {};
  for (const [k, v] of Object.entries(params)) {
    if (!k.startsWith('hp.')) continue;
    hp[k.slice(3)] =
      v === 'true' ? true : v === 'false' ? false : Number.isFinite(Number(v)) && v.trim() !== '' ? Number(v) : v;
  }
  return { name: params.candidate ?? estimator, estimator, params: hp };
}

export async function logCandidate(
  run: ActiveRun,
  spec: TabularTaskSpec,
  data: TabularData,
  o: CandidateOutcome,
  extra: { folds: number; seed: number; tableFile: string; root: string },
): Promise<void> {
  await run.logParams(candidateParams(spec, o.summary, { ...extra, digest: data.digest }));
  const cv: Record<string, number> = {};
  for (const [m, v] of Object.entries(o.summary.mean)) cv[`cv_${m}_mean`] = v;
  for (const [m, v] of Object.entries(o.summary.sd)) cv[`cv_${m}_sd`] = v;
  const cal = o.calibration;
  await run.logMetrics({
    ...cv,
    temperature: cal.temperature,
    cv_oof_ece_uncalibrated: cal.oof.eceBefore,
    cv_oof_ece_calibrated: cal.oof.eceAfter,
    cv_oof_brier_uncalibrated: cal.oof.brierBefore,
    cv_oof_brier_calibrated: cal.oof.brierAfter,
    test_ece_uncalibrated: cal.test.eceBefore,
    test_ece_calibrated: cal.test.eceAfter,
    test_brier_uncalibrated: cal.test.brierBefore,
    test_brier_calibrated: cal.test.brierAfter,
    onnx_parity_max_abs_diff: o.parityMaxAbsDiff,
    refit_seconds: o.fullFitSeconds,
    ...(o.thresholdsMoved !== undefined
      ? { onnx_thresholds_moved: o.thresholdsMoved, onnx_rounding_max_change: o.roundingMaxChange ?? NaN }
      : {}),
  });
  // Per-fold values as steps, so the UI's chart shows the spread across folds.
  await run.client.logBatch(run.runId, {
    metrics: o.summary.folds.map((f, i) => ({ key: 'fold_roc_auc', value: f.roc_auc, step: i, timestamp: Date.now() })),
  });
  const inputs = featureTableInputs(spec, data, extra.tableFile, extra.root);
  await run.logInputs(inputs);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'candidate-'));
  try {
    fs.writeFileSync(path.join(tmp, 'evaluation_test.json'), evaluationJson(o.test));
    await run.logArtifact(path.join(tmp, 'evaluation_test.json'), 'eval');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const transform = JSON.parse(fs.readFileSync(path.join(o.modelDir, 'feature_transform.json'), 'utf8'));
  const example = data.rows.slice(0, 2).map((r) => ({ ...r.features }));
  const modelId = await run.logModel(o.modelDir, {
    artifactPath: 'model',
    modelType: `tabular-onnx/${o.summary.estimator}`,
    flavors: {
      ts_tabular_onnx: tabularFlavor(o.summary.estimator),
      python_function: addPythonFlavor(o.modelDir, {
        kind: 'tabular-onnx',
        onnx: TABULAR_FILES.onnx,
        transform: TABULAR_FILES.transform,
        label_map: TABULAR_FILES.labelMap,
      }),
    },
    signature: tabularSignature(transform, data.labelMap.labels),
    inputExample: example,
  });
  // Held-out scores once, linked to the model and the test split they were measured on.
  const testSet = inputs.find((i) => i.context === 'test')?.dataset;
  await run.logEvaluation(
    modelId,
    {
      ...evaluationMetrics(o.test, 'test_'),
      test_f1_positive: o.test.perClass.find((p) => p.label === spec.positiveLabel)?.f1 ?? NaN,
    },
    testSet ? { name: testSet.name, digest: testSet.digest } : undefined,
  );
}

export interface LoggedComparison {
  comparison: Comparison;
  parentRunId: string;
  childRunIds: Record<string, string>;
}

/** make compare: the comparison, logged as a parent run (table, figure) with one child run per candidate. */
export async function compareAndLog(
  client: MlflowClient,
  o: CompareOptions & { tableFile: string; root: string; source?: string },
): Promise<LoggedComparison> {
  const childRunIds: Record<string, string> = {};
  let comparison: Comparison | undefined;
  const parentRunId = await withRun(
    client,
    {
      experiment: o.spec.name,
      runName: `compare-${o.folds}fold`,
      source: o.source,
      tags: { stage: 'compare', 'data.digest.train': o.data.digest },
      note:
        `${o.folds}-fold comparison of ${o.candidates.map((c) => c.name).join(', ')} ` +
        `on the ${o.spec.name} feature table.`,
    },
    async (parent) => {
      await parent.logParams({
        task: o.spec.name,
        cv_folds: o.folds,
        seed: o.seed,
        candidates: o.candidates.map((c) => c.name).join(','),
        'data.digest.train': o.data.digest,
      });
      await parent.logInputs(featureTableInputs(o.spec, o.data, o.tableFile, o.root));
      // The candidates' model folders are only needed until they are logged.
      const workDir = o.workDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'compare-'));
      let c: Comparison;
      try {
        c = await compareTabular({ ...o, workDir });
        comparison = c;
        for (const out of c.outcomes) {
          childRunIds[out.summary.name] = await withRun(
            client,
            {
              experiment: o.spec.name,
              runName: out.summary.name,
              parentRunId: parent.runId,
              source: o.source,
              tags: { stage: 'compare', 'data.digest.train': o.data.digest },
            },
            async (run) => {
              await logCandidate(run, o.spec, o.data, out, {
                folds: o.folds,
                seed: o.seed,
                tableFile: o.tableFile,
                root: o.root,
              });
              return run.runId;
            },
          );
        }
      } finally {
        if (!o.workDir) fs.rmSync(workDir, { recursive: true, force: true });
      }
      await parent.logMetrics({
        best_cv_roc_auc_mean: c.best.summary.mean.roc_auc,
        best_cv_roc_auc_sd: c.best.summary.sd.roc_auc,
        best_test_roc_auc: c.best.test.rocAuc ?? NaN,
      });
      await parent.setTags({
        'compare.best': c.best.summary.name,
        'compare.best_run_id': childRunIds[c.best.summary.name]!,
      });
      await parent.logText(comparisonHtml(o.spec, c, o.folds), 'compare/comparison.html');
      await parent.logText(
        JSON.stringify(
          {
            columns: c.table.columns,
            rows: c.table.rows,
            summaries: c.outcomes.map((x) => x.summary),
            versions: c.versions,
          },
          null,
          1,
        ),
        'compare/comparison.json',
      );
      return parent.runId;
    },
  );
  return { comparison: comparison!, parentRunId, childRunIds };
}

/** Checks that rows are the feature table they claim to be (its digest), before training on them. */
export function assertTableDigest(data: TabularData): void {
  const actual = digestRows(data.rows);
  if (actual !== data.digest)
    throw new Error(
      `feature rows have digest ${actual.slice(0, 12)}..., not the table's ${data.digest.slice(0, 12)}...`,
    );
}

/** A retraining challenger: the promoted candidate's recipe (estimator, hyper-parameters) on the new feature table. */
export async function trainFromParams(req: TabularTrainRequest): Promise<{ test: Evaluation }> {
  const { spec, data, tableFile } = req.tabular;
  assertTableDigest(data);
  const folds = Number(req.hyper.cv_folds ?? 5);
  const seed = Number(req.hyper.seed ?? 0);
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'retrain-tabular-'));
  try {
    const c = await compareTabular({
      spec,
      data,
      candidates: [candidateFromParams(req.hyper)],
      folds,
      seed,
      python: req.paths.python ?? loadConfig().python,
      workDir,
    });
    await logCandidate(req.run, spec, data, c.best, { folds, seed, tableFile, root: loadConfig().root });
    return { test: c.best.test };
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}
