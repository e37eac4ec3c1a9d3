/**
 * A tuning study, end to end: Optuna (through the bridge) proposes, the objective trains, MLflow
 * records. One parent run per study, one nested child run per trial (params, per-epoch validation
 * metrics, `optuna.state` tag, the model for completed trials). Resumable: the study and its parent
 * run live on in their stores, finished trials are never repeated, and a trial whose driver died is
 * failed and retried with the same parameters.
 */
import { closeRun, openRun, type ActiveRun, type MlflowClient } from '../mlflow/index';
import { reportHtml } from '../plots/html';
import { studySections } from './figures';
import type { Objective, TrialOutcome } from './objectives';
import {
  finishedCount,
  OptunaStudy,
  type PrunerName,
  type SamplerName,
  type StudySummary,
  type TrialRecord,
} from './optuna';
import type { SearchParam, TrialParams } from './space';

export interface TuneOptions {
  task: string;
  study: string;
  storage: string;
  python: string;
  /** Finished trials (complete + pruned) the study should reach, counting earlier runs of it. */
  trials: number;
  /** Stop asking for new trials after this many seconds (the running one finishes). */
  timeoutSeconds?: number;
  sampler?: { name: SamplerName; seed?: number };
  pruner?: { name: PrunerName; startupTrials?: number; warmupSteps?: number };
  heartbeat?: { interval: number; grace: number };
  /** Enqueue the model kind's default configuration as the first trial (default true). */
  enqueueDefaults?: boolean;
  /** Stop after this many failed trials in a row in this process (default 3). */
  maxConsecutiveFailures?: number;
  source?: string;
  onEvent?: (e: TuneEvent) => void;
}

export type TuneEvent =
  | { type: 'open'; study: string; parentRunId: string; resumed: boolean; finished: number; target: number }
  | { type: 'stale'; trials: number[] }
  | { type: 'trial-start'; number: number; params: TrialParams; retryOf: number | null }
  | { type: 'epoch'; number: number; step: number; value: number }
  | { type: 'trial-end'; trial: TrialRecord; summary: StudySummary }
  | { type: 'waiting'; running: number };

export interface TuneResult {
  study: string;
  parentRunId: string;
  summary: StudySummary;
  /** The best trial's MLflow run (promote it with `make promote RUN=...`). */
  bestRunId?: string;
  bestTestAccuracy?: number;
  importances: Record<string, number>;
}

export const STATE_TAG = 'optuna.state';
const RUN_ATTR = 'mlflow_run_id';
const PARENT_ATTR = 'mlflow_parent_run_id';

/** A space as MLflow params (one per parameter, e.g. `space.learning_rate = float[0.001, 0.1] log`). */
export function spaceParams(space: readonly SearchParam[]): Record<string, string> {
  return Object.fromEntries(
    space.map((p) => [
      `space.${p.name}`,
      p.type === 'categorical'
        ? `{${p.choices.join(', ')}}`
        : `${p.type}[${p.low}, ${p.high}]${p.log ? ' log' : ''}${p.step ? ` step ${p.step}` : ''}`,
    ]),
  );
}

/** A storage URL without its password, fit for a tag. */
export const redactStorage = (url: string): string => url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');

const stateTag = (s: TrialRecord['state']): string => s.toUpperCase();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runStudy(client: MlflowClient, objective: Objective, o: TuneOptions): Promise<TuneResult> {
  const space = objective.tuning.space;
  const {
    study,
    summary: opened,
    failedStale,
  } = await OptunaStudy.open({
    python: o.python,
    storage: o.storage,
    study: o.study,
    space,
    sampler: o.sampler,
    pruner: o.pruner,
    heartbeat: o.heartbeat,
    studyAttrs: { task: o.task, model: objective.model },
  });
  try {
    const attrs = opened.user_attrs;
    if (attrs.task !== o.task || attrs.model !== objective.model)
      throw new Error(
        `study ${o.study} tunes ${String(attrs.model)} on ${String(attrs.task)}, ` +
          `not ${objective.model} on ${o.task}: choose another STUDY name`,
      );
    if (o.enqueueDefaults ?? true) await study.enqueue(objective.tuning.defaults);
    const { parent, resumed } = await openParent(client, study, opened, o, space, objective);
    await closeOrphans(client, study);
    o.onEvent?.({
      type: 'open',
      study: o.study,
      parentRunId: parent.runId,
      resumed,
      finished: finishedCount(opened),
      target: o.trials,
    });
    if (failedStale.length) o.onEvent?.({ type: 'stale', trials: failedStale });
    const started = Date.now();
    let failuresInARow = 0;
    for (;;) {
      if (o.timeoutSeconds !== undefined && (Date.now() - started) / 1000 >= o.timeoutSeconds) break;
      const stale = await study.failStale();
      if (stale.length) {
        o.onEvent?.({ type: 'stale', trials: stale });
        await closeOrphans(client, study);
      }
      const s = await study.summary();
      const finished = finishedCount(s);
      if (finished >= o.trials) break;
      // Other drivers' running trials count toward the budget; wait for them rather than overshoot.
      if (finished + s.counts.running >= o.trials && s.counts.waiting === 0) {
        o.onEvent?.({ type: 'waiting', running: s.counts.running });
        await sleep(2000);
        continue;
      }
      const record = await runTrial(client, study, objective, parent, o);
      failuresInARow = record.state === 'fail' ? failuresInARow + 1 : 0;
      const after = await study.summary();
      await logProgress(parent, after);
      o.onEvent?.({ type: 'trial-end', trial: record, summary: after });
      if (failuresInARow >= (o.maxConsecutiveFailures ?? 3))
        throw new Error(`${failuresInARow} trials in a row failed; see the FAILED child runs of ${parent.runId}`);
    }
    const summary = await study.summary();
    const importances = await study.importances();
    const best = summary.best ? summary.trials.find((t) => t.number === summary.best!.number) : undefined;
    const bestRunId = best ? String(best.user_attrs[RUN_ATTR] ?? '') || undefined : undefined;
    const bestTestAccuracy = best ? Number(best.user_attrs.test_accuracy ?? NaN) : undefined;
    await logProgress(parent, summary);
    if (Object.keys(importances).length)
      await parent.logMetrics(Object.fromEntries(Object.entries(importances).map(([k, v]) => [`importance.${k}`, v])));
    await parent.logText(JSON.stringify({ importances, ...summary }, null, 2), 'study/trials.json');
    await parent.logText(
      reportHtml(`Study ${o.study}: ${objective.model} on ${o.task}`, studySections(summary, space, importances)),
      'study/report.html',
    );
    await closeRun(client, parent);
    return {
      study: o.study,
      parentRunId: parent.runId,
      summary,
      bestRunId,
      bestTestAccuracy: Number.isFinite(bestTestAccuracy) ? bestTestAccuracy : undefined,
      importances,
    };
  } finally {
    study.close();
  }
}

/** The study's parent run: the one recorded in the study, resumed, or a new one. */
async function openParent(
  client: MlflowClient,
  study: OptunaStudy,
  opened: StudySummary,
  o: TuneOptions,
  space: readonly SearchParam[],
  objective: Objective,
): Promise<{ parent: ActiveRun; resumed: boolean }> {
  const tags = {
    'optuna.sampler': o.sampler?.name ?? 'tpe',
    'optuna.pruner': o.pruner?.name ?? 'median',
    ...(o.pruner?.warmupSteps !== undefined ? { 'optuna.pruner.warmup_steps': String(o.pruner.warmupSteps) } : {}),
    ...(o.pruner?.startupTrials !== undefined
      ? { 'optuna.pruner.startup_trials': String(o.pruner.startupTrials) }
      : {}),
    'optuna.budget_trials': String(o.trials),
    ...(o.timeoutSeconds !== undefined ? { 'optuna.timeout_s': String(o.timeoutSeconds) } : {}),
  };
  const recorded = opened.user_attrs[PARENT_ATTR];
  if (typeof recorded === 'string') {
    const parent = await openRun(client, { experiment: o.task, resumeRunId: recorded });
    await parent.setTags(tags);
    return { parent, resumed: true };
  }
  const mine = await openRun(client, {
    experiment: o.task,
    runName: `tune-${o.study}`,
    source: o.source,
    tags: {
      stage: 'tuning',
      'optuna.study_name': o.study,
      'optuna.storage': redactStorage(o.storage),
      ...tags,
    },
    note:
      `Optuna study **${o.study}**: ${objective.model} on ${o.task}. Each child run is one trial ` +
      `(tag \`${STATE_TAG}\`: COMPLETE, PRUNED or FAIL); compare them in the UI, then ` +
      '`make promote RUN=<best child run id>`.',
  });
  await mine.logParams({ task: o.task, model: objective.model, ...spaceParams(space) });
  // Two drivers starting one study at once: the first recorded parent wins, the other steps aside.
  const winner = await study.setStudyAttrIfAbsent(PARENT_ATTR, mine.runId);
  if (winner === mine.runId) return { parent: mine, resumed: false };
  await client.deleteRun(mine.runId);
  return { parent: await openRun(client, { experiment: o.task, resumeRunId: winner }), resumed: true };
}

/** Child runs of trials that failed without their driver (killed): marked FAIL and KILLED. */
async function closeOrphans(client: MlflowClient, study: OptunaStudy): Promise<void> {
  const s = await study.summary();
  for (const t of s.trials) {
    const runId = t.user_attrs[RUN_ATTR];
    if (t.state !== 'fail' || typeof runId !== 'string') continue;
    const run = await client.getRun(runId);
    if (run.info.status !== 'RUNNING') continue;
    await client.setTags(runId, { [STATE_TAG]: 'FAIL', 'optuna.fail_reason': 'driver died (heartbeat stale)' });
    await client.endRun(runId, 'KILLED');
  }
}

async function runTrial(
  client: MlflowClient,
  study: OptunaStudy,
  objective: Objective,
  parent: ActiveRun,
  o: TuneOptions,
): Promise<TrialRecord> {
  const asked = await study.ask();
  o.onEvent?.({ type: 'trial-start', number: asked.number, params: asked.params, retryOf: asked.retryOf });
  const run = await openRun(client, {
    experiment: o.task,
    parentRunId: parent.runId,
    runName: `trial-${asked.number}`,
    source: o.source,
    tags: {
      stage: 'tuning-trial',
      'optuna.study_name': o.study,
      'optuna.trial_number': String(asked.number),
      [STATE_TAG]: 'RUNNING',
      ...(asked.retryOf !== null ? { 'optuna.retry_of': String(asked.retryOf) } : {}),
    },
  });
  await study.setTrialAttr(asked.number, RUN_ATTR, run.runId);
  try {
    await run.logParams(objective.runParams(asked.params));
    const outcome = await objective.train(asked.params, {
      number: asked.number,
      run,
      report: async (step, value) => {
        if (!objective.logsEpochMetrics) await run.logMetric('epoch/val_macro_f1', value, step);
        o.onEvent?.({ type: 'epoch', number: asked.number, step, value });
        return study.report(asked.number, step, value);
      },
    });
    const record = await settle(study, run, asked.number, outcome);
    await run.setTags({ [STATE_TAG]: stateTag(record.state) });
    await closeRun(client, run);
    return record;
  } catch (e) {
    const record = await study.tell(asked.number, 'fail');
    await run.setTags({ [STATE_TAG]: 'FAIL' }).catch(() => undefined);
    await closeRun(client, run, e);
    process.stderr.write(`trial ${asked.number} failed: ${e instanceof Error ? e.message : String(e)}\n`);
    return record;
  }
}

/** Tells Optuna how a trial ended (kept out of the try block: tslab's TypeScript narrows no unions there). */
async function settle(study: OptunaStudy, run: ActiveRun, trial: number, outcome: TrialOutcome): Promise<TrialRecord> {
  if (outcome.pruned === true) {
    const record = await study.tell(trial, 'pruned');
    await run.logMetrics({ pruned_at_epoch: outcome.step });
    return record;
  }
  await study.setTrialAttr(trial, 'test_accuracy', String(outcome.testAccuracy));
  return study.tell(trial, 'complete', outcome.value);
}

/** The parent run's live view: best value so far and trial counts, stepped by finished trials. */
async function logProgress(parent: ActiveRun, s: StudySummary): Promise<void> {
  const step = finishedCount(s);
  await parent.logMetrics(
    {
      n_complete: s.counts.complete,
      n_pruned: s.counts.pruned,
      n_failed: s.counts.fail,
      ...(s.best ? { best_value: s.best.value } : {}),
    },
    step,
  );
  if (s.best) {
    const best = s.trials.find((t) => t.number === s.best!.number);
    await parent.setTags({
      'optuna.best_trial': String(s.best.number),
      ...(typeof best?.user_attrs[RUN_ATTR] === 'string'
        ? { 'optuna.best_run_id': String(best.user_attrs[RUN_ATTR]) }
        : {}),
    });
  }
}
