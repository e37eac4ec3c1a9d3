/**
 * Training of the tabular kind: k-fold comparison of the candidates (make compare), the refit of
 * each on the whole training pool, its ONNX graph checked against the library's own probabilities,
 * and its probabilities calibrated (one temperature fitted on the out-of-fold predictions, the only rows the
 * refitted model has not seen besides test). The MLflow record is ./runs.ts, the report ./comparison-report.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type FeatureRow } from '../../data/feature-table';
import type { LabelMap } from '../../data/labels';
import type { TabularTaskSpec } from '../../data/tabular-tasks';
import {
  brierScore,
  expectedCalibrationError,
  logitsOfProbs,
  softmaxWithTemperature,
} from '../../evaluate/calibration';
import { evaluate, type Evaluation } from '../../evaluate/metrics';
import { applyFeatureTransform, fitFeatureTransform, TASK_DERIVED_FEATURES } from '../../features/tabular';
import { runLearners, type LearnerCandidate } from './learners';
import { comparisonTable, stratifiedFolds, summarise, type CandidateSummary } from './compare';
import type { RecordPredictor, TabularData } from '../types';
import { loadTabularPredictor, saveTabularModel } from './model';
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
