/**
 * The scheduled retrain: new labelled data from data/incoming/ -> (skip if the data digest is
 * unchanged) -> drift gate against the training reference -> train a challenger with the promoted
 * recipe of the task's production config -> score challenger and champion through their registered
 * artifacts on the same held-out set ->
 * promote only if the validation criteria pass. Every decision is logged to MLflow with its reason.
 * Steps are pure functions plus one orchestrator whose side effects are the registry and files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { digestExamples } from '../data/digest';
import { ingestFile, refuseRows, writeQuarantine } from '../data/ingest';
import { encodeLabels, type LabelMap } from '../data/labels';
import type { AnyTaskSpec, Example } from '../data/tasks';
import { evaluate, evaluationMetrics, type Evaluation } from '../evaluate/metrics';
import type { ActiveRun, MlflowClient, ModelVersion } from '../mlflow';
import { driftReport, type DriftPolicy, type DriftReport } from '../monitor/drift';
import { argmaxRows } from '../estimators/logreg';
import { kindById, loadModel, textPredictor, type TrainPaths } from '../kinds';
import { trainKind } from '../kinds/training';
import type { ProductionConfig } from '../production/config';
import type { ModelCache } from '../production/model-cache';
import { moveChampion } from '../production/champion-move';
import { leakReason, type HeldOutTexts } from '../data/leakage';

export interface GatePolicy {
  /** The challenger must reach at least this test macro-F1... */
  minMacroF1: number;
  /** ...and be no worse than the champion by more than this. */
  tolerance: number;
}

export const DEFAULT_GATE: GatePolicy = { minMacroF1: 0.6, tolerance: 0.005 };

export interface GateDecision {
  promote: boolean;
  reason: string;
}

/** The champion/challenger gate (pure). */
export function gate(challenger: number, champion: number | undefined, p: GatePolicy): GateDecision {
  if (challenger < p.minMacroF1)
    return {
      promote: false,
      reason: `challenger macro-F1 ${challenger.toFixed(4)} is below the minimum ${p.minMacroF1}`,
    };
  if (champion !== undefined && challenger < champion - p.tolerance) {
    return {
      promote: false,
      reason:
        `challenger macro-F1 ${challenger.toFixed(4)} is worse than the champion's ${champion.toFixed(4)} by ` +
        `more than ${p.tolerance}`,
    };
  }
  return {
    promote: true,
    reason:
      champion === undefined
        ? `no champion yet; challenger macro-F1 ${challenger.toFixed(4)} meets the minimum`
        : `challenger macro-F1 ${challenger.toFixed(4)} vs champion ${champion.toFixed(4)} (tolerance ${p.tolerance})`,
  };
}

/** The production slice must hold at least this many in-scope rows before the gate reads it. */
export const MIN_SLICE_ROWS = 30;

/**
 * The production gate (pure): on rows of real traffic a person labelled (the production slice), the challenger's
 * accuracy may be below the champion's by at most the tolerance. A home test split alone cannot see a challenger
 * that got better at its own split and worse at what customers write.
 */
export function productionGate(
  challenger: number,
  champion: number | undefined,
  rows: number,
  p: GatePolicy,
): GateDecision {
  if (champion === undefined) return { promote: true, reason: `production slice: no champion to compare with` };
  const what = `on the production slice (${rows} reviewed rows of real traffic)`;
  if (challenger < champion - p.tolerance)
    return {
      promote: false,
      reason:
        `challenger accuracy ${challenger.toFixed(4)} is worse than the champion's ${champion.toFixed(4)} ${what} ` +
        `by more than ${p.tolerance}`,
    };
  return {
    promote: true,
    reason: `challenger accuracy ${challenger.toFixed(4)} vs champion ${champion.toFixed(4)} ${what}`,
  };
}

/** Reads every CSV/JSONL file in `dir` as labelled examples {text, label}, quarantining bad rows. */
export function ingestIncoming(
  dir: string,
  labelMap: LabelMap,
  quarantineDir: string,
  /** Rows that must stay out of training (the test split): repeats are quarantined. */
  heldOut?: HeldOutTexts,
): { examples: Example[]; files: string[]; bad: number } {
  if (!fs.existsSync(dir)) return { examples: [], files: [], bad: 0 };
  const schema = z.object({
    text: z.string().trim().min(1, 'text is empty'),
    label: z.enum(labelMap.labels as [string, ...string[]], {
      message: `label must be one of: ${labelMap.labels.join(', ')}`,
    }),
  });
  const examples: Example[] = [];
  const files = fs
    .readdirSync(dir)
    .filter((f) => /\.(csv|jsonl)$/i.test(f))
    .sort();
  let bad = 0;
  for (const f of files) {
    const file = path.join(dir, f);
    const read = ingestFile(file, { schema, maxBadShare: 0.2, textFields: ['text'] });
    const res = heldOut ? refuseRows(file, read, (r) => leakReason(r.text, heldOut)) : read;
    res.rows.forEach((r, i) =>
      examples.push({ id: `incoming/${f}#${res.rowNumbers[i]}`, text: r.text, label: r.label }),
    );
    if (res.bad.length) writeQuarantine(path.join(quarantineDir, `${f}.quarantine.jsonl`), res.bad);
    bad += res.bad.length;
  }
  return { examples, files, bad };
}

export interface RetrainInputs {
  spec: AnyTaskSpec;
  production: ProductionConfig;
  /** The training reference and held-out set the champion was judged on. */
  train: Example[];
  validation: Example[];
  test: Example[];
  incoming: Example[];
  /** Reviewed rows of real traffic (the production slice, in-scope rows only): scored, never trained on. */
  productionSlice?: Example[];
  /** Digest of the data the last retrain (or the promotion) trained on. */
  lastDigest: string | null;
}

export interface RetrainOptions {
  force?: boolean;
  drift?: DriftPolicy;
  gate?: GatePolicy;
  /** Champion and challenger are both scored from their registered, downloaded artifacts. */
  cache: ModelCache;
  /** Where fine-tuning challengers find checkpoints and keep resumable state. */
  challenger: TrainPaths;
}

export interface RetrainOutcome {
  decision: 'skipped_no_new_data' | 'skipped_no_drift' | 'promoted' | 'registered_not_promoted';
  reason: string;
  digest: string;
  drift?: DriftReport;
  challengerVersion?: string;
  championVersion?: string;
  challengerF1?: number;
  championF1?: number;
  alert: boolean;
}

/**
 * Scores a registry version the way serving would: its registered artifact, downloaded through the
 * model cache and loaded by its kind's loader (so an int8 champion is compared with the challenger's
 * served graph, not with an fp32 model still in memory), on the held-out rows `test`.
 */
export async function evaluateRegistered(
  cache: ModelCache,
  mv: ModelVersion,
  test: readonly Example[],
  labelMap: LabelMap,
  positive?: string,
): Promise<Evaluation> {
  const predictor = await loadModel(await cache.fetch(mv));
  try {
    if (predictor.labels.join('\n') !== labelMap.labels.join('\n'))
      throw new Error(
        `${mv.name} version ${mv.version} predicts labels [${predictor.labels.join(', ')}], the task has ` +
          `[${labelMap.labels.join(', ')}]`,
      );
    const probs = await textPredictor(predictor).predictProba(test.map((e) => e.text));
    const preds = argmaxRows(probs, predictor.labels.length);
    const yTrue = encodeLabels(
      test.map((e) => e.label),
      labelMap,
    );
    return evaluate(
      yTrue,
      preds,
      predictor.labels,
      probs,
      positive !== undefined ? predictor.labels.indexOf(positive) : 1,
    );
  } finally {
    await predictor.release();
  }
}

/**
 * What a retrain needs from a task's data, whatever its kind (texts or feature records): the digest of
 * the new training set, the drift of the incoming rows, a challenger trained with the promoted recipe,
 * and a registered version scored on the held-out rows.
 */
export interface RetrainData {
  task: string;
  production: ProductionConfig;
  /** Digest of the training set the challenger would train on (reference + incoming). */
  digest: string;
  incomingRows: number;
  lastDigest: string | null;
  drift(policy?: DriftPolicy): DriftReport | undefined;
  trainChallenger(run: ActiveRun, paths: TrainPaths): Promise<void>;
  evaluate(cache: ModelCache, mv: ModelVersion): Promise<Evaluation>;
  /** The same scoring on the production slice, when it holds enough rows; its size. */
  evaluateProduction?: { rows: number; evaluate(cache: ModelCache, mv: ModelVersion): Promise<Evaluation> };
}

/** The retrain data of a text task. */
export function textRetrainData(inp: RetrainInputs): RetrainData {
  const trainSet = [...inp.train, ...inp.incoming];
  const digest = digestExamples(trainSet);
  const labelMap = inp.production.labelMap;
  return {
    task: inp.spec.name,
    production: inp.production,
    digest,
    incomingRows: inp.incoming.length,
    lastDigest: inp.lastDigest,
    drift: (policy) =>
      inp.incoming.length > 0
        ? driftReport(
            {
              reference: { texts: inp.train.map((e) => e.text), labels: inp.train.map((e) => e.label) },
              current: { texts: inp.incoming.map((e) => e.text), labels: inp.incoming.map((e) => e.label) },
            },
            policy,
          )
        : undefined,
    trainChallenger: async (run, paths) => {
      await trainKind(kindById(inp.production.kind).id, {
        input: 'text',
        spec: inp.spec,
        data: { train: trainSet, validation: inp.validation, test: inp.test, labelMap, trainDigest: digest },
        hyper: inp.production.hyperparameters,
        run,
        paths,
      });
    },
    evaluate: (cache, mv) => evaluateRegistered(cache, mv, inp.test, labelMap, inp.spec.positiveLabel),
    ...(inp.productionSlice && inp.productionSlice.length >= MIN_SLICE_ROWS
      ? {
          evaluateProduction: {
            rows: inp.productionSlice.length,
            evaluate: (cache: ModelCache, mv: ModelVersion) =>
              evaluateRegistered(cache, mv, inp.productionSlice!, labelMap, inp.spec.positiveLabel),
          },
        }
      : {}),
  };
}

/** One retrain of a text task, logged into `run`. */
export function retrain(
  client: MlflowClient,
  run: ActiveRun,
  inp: RetrainInputs,
  opts: RetrainOptions,
): Promise<RetrainOutcome> {
  return retrainWith(client, run, textRetrainData(inp), opts);
}

/** One retrain of any task, logged into `run`. */
export async function retrainWith(
  client: MlflowClient,
  run: ActiveRun,
  inp: RetrainData,
  opts: RetrainOptions,
): Promise<RetrainOutcome> {
  const name = inp.production.model.name;
  const digest = inp.digest;
  await run.logParams({
    task: inp.task,
    incoming_rows: inp.incomingRows,
    data_digest: digest.slice(0, 32),
    force: Boolean(opts.force),
  });
  const decide = async (o: RetrainOutcome): Promise<RetrainOutcome> => {
    await run.setTags({
      'retrain.decision': o.decision,
      'retrain.reason': o.reason.slice(0, 7900),
      'retrain.alert': String(o.alert),
    });
    return o;
  };
  if (!opts.force && inp.lastDigest && digest.startsWith(inp.lastDigest.slice(0, 32))) {
    return decide({
      decision: 'skipped_no_new_data',
      reason: 'training data digest unchanged since the last training',
      digest,
      alert: false,
    });
  }
  const drift = inp.drift(opts.drift);
  if (drift) {
    await run.logMetrics(
      Object.fromEntries(
        drift.features.flatMap((f) => [
          [`drift/${f.feature}/statistic`, f.statistic],
          ...(f.pValue !== undefined ? [[`drift/${f.feature}/p_value`, f.pValue]] : []),
          ...(f.psi !== undefined ? [[`drift/${f.feature}/psi`, f.psi]] : []),
        ]),
      ),
    );
    await run.logMetrics({ 'drift/drifted_share': drift.driftedShare });
    await run.logText(`${JSON.stringify(drift, null, 2)}\n`, 'drift/drift_report.json');
    await run.setTags({ 'drift.level': drift.level, 'drift.action': drift.action });
  }
  if (!opts.force && (!drift || drift.action === 'none')) {
    return decide({
      decision: 'skipped_no_drift',
      reason: drift ? `drift ${drift.level}: ${drift.reason}; policy says no action` : 'no incoming data',
      digest,
      drift,
      alert: false,
    });
  }

  // Train the challenger with the promoted code path and the production hyper-parameters.
  const kind = kindById(inp.production.kind);
  await inp.trainChallenger(run, opts.challenger);
  const source = await client.runModelSource(await client.getRun(run.runId));
  if (!source) throw new Error(`retrain run ${run.runId} logged no model`);
  const challenger = await client.createModelVersion({
    name,
    source,
    runId: run.runId,
    tags: { 'retrain.digest': digest.slice(0, 32), 'drift.level': drift?.level ?? 'forced', kind: kind.id },
  });

  // The gate: both models scored the same way, through their registered artifacts, on the same rows.
  const score = (mv: ModelVersion) => inp.evaluate(opts.cache, mv);
  const challengerEval = await score(challenger);
  const challengerF1 = challengerEval.macro.f1;
  await run.logMetrics(evaluationMetrics(challengerEval, 'challenger_test_'));
  const champion = await client.getModelVersionByAlias(name, 'champion');
  let championF1: number | undefined;
  if (champion) {
    const ev = await score(champion);
    championF1 = ev.macro.f1;
    await run.logMetrics(evaluationMetrics(ev, 'champion_test_'));
    await run.setTags({ 'retrain.champion_run_id': champion.run_id ?? '' });
  }
  const home = gate(challengerF1, championF1, opts.gate ?? DEFAULT_GATE);
  // The production gate, when the slice has enough reviewed rows; either way the decision says which gates spoke.
  let production: GateDecision = {
    promote: true,
    reason: `production slice: fewer than ${MIN_SLICE_ROWS} reviewed rows, not gated on`,
  };
  if (inp.evaluateProduction) {
    const prod = inp.evaluateProduction;
    const challengerProd = await prod.evaluate(opts.cache, challenger);
    await run.logMetrics({
      ...evaluationMetrics(challengerProd, 'challenger_production_'),
      production_slice_rows: prod.rows,
    });
    const championProd = champion ? await prod.evaluate(opts.cache, champion) : undefined;
    if (championProd) await run.logMetrics(evaluationMetrics(championProd, 'champion_production_'));
    production = productionGate(challengerProd.accuracy, championProd?.accuracy, prod.rows, opts.gate ?? DEFAULT_GATE);
  }
  const g = { promote: home.promote && production.promote, reason: `${home.reason}; ${production.reason}` };
  const alert = drift?.action === 'retrain_and_alert';
  const scored = {
    digest,
    drift,
    challengerVersion: challenger.version,
    championVersion: champion?.version,
    challengerF1,
    championF1,
    alert,
  };
  if (!g.promote) {
    await client.setAlias(name, 'challenger', challenger.version);
    await client.setModelVersionTag(name, challenger.version, 'validation_status', 'rejected');
    return decide({ decision: 'registered_not_promoted', reason: g.reason, ...scored });
  }
  await moveChampion(client, name, challenger.version); // @previous-champion keeps the old one, for make rollback
  await client.setModelVersionTag(name, challenger.version, 'validation_status', 'approved');
  const note = alert ? '; drift is large: the model needs new experimentation' : '';
  return decide({ decision: 'promoted', reason: `${g.reason}${note}`, ...scored });
}
