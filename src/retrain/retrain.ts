/**
 * The scheduled retrain: new labelled data from data/incoming/ -> (skip if the data digest is
 * unchanged) -> drift gate against the training reference -> train a challenger with the promoted
 * code and config/production.json -> evaluate challenger and champion on the same held-out set ->
 * promote only if the validation criteria pass. Every decision is logged to MLflow with its reason.
 * Steps are pure functions plus one orchestrator whose side effects are the registry and files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { digestExamples } from '../data/digest';
import { ingestFile, writeQuarantine } from '../data/ingest';
import { encodeLabels, type LabelMap } from '../data/labels';
import type { Example, TaskSpec } from '../data/tasks';
import { evaluate, evaluationMetrics, type Evaluation } from '../evaluate/metrics';
import type { ActiveRun, MlflowClient } from '../mlflow';
import { driftReport, type DriftPolicy, type DriftReport } from '../monitor/drift';
import type { ProductionConfig } from '../promote/register';
import { argmaxRows } from '../models/logreg';
import { cachedModelVersion } from '../serve/champion';
import { loadPredictor } from '../serve/predictor';
import { trainChallenger, type ChallengerPaths } from './challenger';

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
  if (challenger < p.minMacroF1) return { promote: false, reason: `challenger macro-F1 ${challenger.toFixed(4)} is below the minimum ${p.minMacroF1}` };
  if (champion !== undefined && challenger < champion - p.tolerance) {
    return { promote: false, reason: `challenger macro-F1 ${challenger.toFixed(4)} is worse than the champion's ${champion.toFixed(4)} by more than ${p.tolerance}` };
  }
  return { promote: true, reason: champion === undefined ? `no champion yet; challenger macro-F1 ${challenger.toFixed(4)} meets the minimum` : `challenger macro-F1 ${challenger.toFixed(4)} vs champion ${champion.toFixed(4)} (tolerance ${p.tolerance})` };
}

/** Reads every CSV/JSONL file in `dir` as labelled examples {text, label}, quarantining bad rows. */
export function ingestIncoming(dir: string, labelMap: LabelMap, quarantineDir: string): { examples: Example[]; files: string[]; bad: number } {
  if (!fs.existsSync(dir)) return { examples: [], files: [], bad: 0 };
  const schema = z.object({
    text: z.string().trim().min(1, 'text is empty'),
    label: z.enum(labelMap.labels as [string, ...string[]], { message: `label must be one of: ${labelMap.labels.join(', ')}` }),
  });
  const examples: Example[] = [];
  const files = fs.readdirSync(dir).filter((f) => /\.(csv|jsonl)$/i.test(f)).sort();
  let bad = 0;
  for (const f of files) {
    const res = ingestFile(path.join(dir, f), { schema, maxBadShare: 0.2, textFields: ['text'] });
    res.rows.forEach((r, i) => examples.push({ id: `incoming/${f}#${res.rowNumbers[i]}`, text: r.text, label: r.label }));
    if (res.bad.length) writeQuarantine(path.join(quarantineDir, `${f}.quarantine.jsonl`), res.bad);
    bad += res.bad.length;
  }
  return { examples, files, bad };
}

/** Exclusive lock file holding our pid; a lock whose process is gone is taken over. */
export function acquireLock(file: string): () => void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx');
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      return () => fs.rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
      let alive = false;
      try {
        process.kill(pid, 0);
        alive = true;
      } catch {
        alive = false;
      }
      if (alive) throw new Error(`another retrain is running (pid ${pid}, lock ${file}); not starting a second one`);
      fs.rmSync(file, { force: true }); // stale lock from a crashed run
    }
  }
  throw new Error(`could not take the lock ${file}`);
}

export interface RetrainInputs {
  spec: TaskSpec<any>;
  production: ProductionConfig;
  /** The training reference and held-out set the champion was judged on. */
  train: Example[];
  validation: Example[];
  test: Example[];
  incoming: Example[];
  /** Digest of the data the last retrain (or the promotion) trained on. */
  lastDigest: string | null;
}

export interface RetrainOptions {
  force?: boolean;
  drift?: DriftPolicy;
  gate?: GatePolicy;
  modelCacheDir: string;
  /** Where fine-tuning challengers find checkpoints and keep resumable state. */
  challenger: ChallengerPaths;
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

async function evaluateVersion(client: MlflowClient, name: string, version: string, test: Example[], labelMap: LabelMap, cacheDir: string, positive?: string): Promise<Evaluation> {
  const predictor = await loadPredictor(await cachedModelVersion(client, name, version, cacheDir));
  const probs = await predictor.predictProba(test.map((e) => e.text));
  const preds = argmaxRows(probs, predictor.labels.length);
  const yTrue = encodeLabels(test.map((e) => e.label), labelMap);
  return evaluate(yTrue, preds, predictor.labels, probs, positive !== undefined ? predictor.labels.indexOf(positive) : 1);
}

/** One retrain, logged into `run`. */
export async function retrain(client: MlflowClient, run: ActiveRun, inp: RetrainInputs, opts: RetrainOptions): Promise<RetrainOutcome> {
  const name = inp.production.model.name;
  const trainSet = [...inp.train, ...inp.incoming];
  const digest = digestExamples(trainSet);
  await run.logParams({ task: inp.spec.name, incoming_rows: inp.incoming.length, data_digest: digest.slice(0, 32), force: Boolean(opts.force) });
  const decide = async (o: RetrainOutcome): Promise<RetrainOutcome> => {
    await run.setTags({ 'retrain.decision': o.decision, 'retrain.reason': o.reason.slice(0, 7900), 'retrain.alert': String(o.alert) });
    return o;
  };
  if (!opts.force && inp.lastDigest && digest.startsWith(inp.lastDigest.slice(0, 32))) {
    return decide({ decision: 'skipped_no_new_data', reason: 'training data digest unchanged since the last training', digest, alert: false });
  }
  const drift = inp.incoming.length > 0
    ? driftReport({ reference: { texts: inp.train.map((e) => e.text), labels: inp.train.map((e) => e.label) }, current: { texts: inp.incoming.map((e) => e.text), labels: inp.incoming.map((e) => e.label) } }, opts.drift)
    : undefined;
  if (drift) {
    await run.logMetrics(Object.fromEntries(drift.features.flatMap((f) => [[`drift/${f.feature}/statistic`, f.statistic], ...(f.pValue !== undefined ? [[`drift/${f.feature}/p_value`, f.pValue]] : []), ...(f.psi !== undefined ? [[`drift/${f.feature}/psi`, f.psi]] : [])])));
    await run.logMetrics({ 'drift/drifted_share': drift.driftedShare });
    await run.logText(`${JSON.stringify(drift, null, 2)}\n`, 'drift/drift_report.json');
    await run.setTags({ 'drift.level': drift.level, 'drift.action': drift.action });
  }
  if (!opts.force && (!drift || drift.action === 'none')) {
    return decide({ decision: 'skipped_no_drift', reason: drift ? `drift ${drift.level}: ${drift.reason}; policy says no action` : 'no incoming data', digest, drift, alert: false });
  }

  // Train the challenger with the promoted code path and the production hyper-parameters.
  const labelMap = inp.production.labelMap;
  const result = await trainChallenger(inp.spec, { train: trainSet, validation: inp.validation, test: inp.test, labelMap, trainDigest: digest }, inp.production.hyperparameters, run, opts.challenger);
  const challengerF1 = result.test.macro.f1;
  const source = `${run.run.info.artifact_uri.replace(/\/+$/, '')}/model`;
  const challenger = await client.createModelVersion({ name, source, runId: run.runId, tags: { 'retrain.digest': digest.slice(0, 32), 'drift.level': drift?.level ?? 'forced' } });

  const champion = await client.getModelVersionByAlias(name, 'champion');
  let championF1: number | undefined;
  if (champion) {
    const ev = await evaluateVersion(client, name, champion.version, inp.test, labelMap, opts.modelCacheDir, inp.spec.positiveLabel);
    championF1 = ev.macro.f1;
    await run.logMetrics(evaluationMetrics(ev, 'champion_test_'));
  }
  await run.logMetrics({ challenger_test_macro_f1: challengerF1 });
  const g = gate(challengerF1, championF1, opts.gate ?? DEFAULT_GATE);
  const alert = drift?.action === 'retrain_and_alert';
  if (!g.promote) {
    await client.setAlias(name, 'challenger', challenger.version);
    await client.setModelVersionTag(name, challenger.version, 'validation_status', 'rejected');
    return decide({ decision: 'registered_not_promoted', reason: g.reason, digest, drift, challengerVersion: challenger.version, championVersion: champion?.version, challengerF1, championF1, alert });
  }
  if (champion) await client.setAlias(name, 'previous-champion', champion.version); // for make rollback
  await client.setAlias(name, 'champion', challenger.version);
  await client.setModelVersionTag(name, challenger.version, 'validation_status', 'approved');
  return decide({ decision: 'promoted', reason: `${g.reason}${alert ? '; drift is large: the model needs new experimentation' : ''}`, digest, drift, challengerVersion: challenger.version, championVersion: champion?.version, challengerF1, championF1, alert });
}

/** make rollback: @champion goes back to @previous-champion (and the two swap, so rollback is undoable). */
export async function rollback(client: MlflowClient, name: string): Promise<{ from: string; to: string }> {
  const prev = await client.getModelVersionByAlias(name, 'previous-champion');
  const cur = await client.getModelVersionByAlias(name, 'champion');
  if (!prev) throw new Error(`models:/${name}@previous-champion is not set: there is nothing to roll back to`);
  await client.setAlias(name, 'champion', prev.version);
  if (cur) await client.setAlias(name, 'previous-champion', cur.version);
  return { from: cur?.version ?? 'none', to: prev.version };
}
