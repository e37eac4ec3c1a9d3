/**
 * The MLflow record of a tabular comparison: a parent run with the comparison table and figure, one child
 * run per candidate with its model; and the retraining challenger, which refits the promoted candidate's
 * recipe (its logged params) on the new feature table.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../config';
import { digestRows, featureTableInputs } from '../../data/feature-table';
import type { TabularTaskSpec } from '../../data/tabular-tasks';
import { evaluationMetrics, type Evaluation } from '../../evaluate/metrics';
import { evaluationJson } from '../../evaluate/report';
import { TASK_DERIVED_FEATURES } from '../../features/tabular';
import type { ActiveRun, MlflowClient } from '../../mlflow';
import { withRun } from '../../mlflow/run-context';
import { type LearnerCandidate } from './learners';
import { type CandidateSummary } from './compare';
import type { TabularData, TabularTrainRequest } from '../types';
import { TABULAR_FILES, tabularFlavor, tabularSignature } from './model';
import { addPythonFlavor } from '../pyfunc';

import { compareTabular, type CandidateOutcome, type Comparison, type CompareOptions } from './train';
import { comparisonHtml } from './comparison-report';

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
