/**
 * `withRun`: the one way notebooks and scripts open an MLflow run. It sets MLflow's system tags
 * (source, git commit, user, run name, note), marks the run FINISHED or FAILED (recording the
 * error), and always delivers what was logged, or keeps it in the journal if the server is down.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import type { LogResult, MlflowClient, DatasetInput } from './client';
import type { MlmodelOptions } from './mlmodel';
import { isTransient } from './errors';
import type { Run } from './schemas';
import { exportsOf } from '../export/notebooks';
import { exportsDigest, exportsTags } from '../export/provenance';

export interface RunOptions {
  experiment: string;
  /** Markdown description of the experiment, set when it is created (default: `experimentNote`). */
  experimentNote?: string;
  runName?: string;
  tags?: Record<string, string>;
  /** Markdown shown as the run's description in the UI. */
  note?: string;
  /** Notebook or script path recorded as the run's source (default: the running script). */
  source?: string;
  /** Open as a child of this run (nested runs in the UI). */
  parentRunId?: string;
  /** Continue this run (after a crash) instead of creating a new one. */
  resumeRunId?: string;
}

/** A run bound to its client, so calls need no run id. */
export class ActiveRun {
  constructor(
    readonly client: MlflowClient,
    readonly run: Run,
  ) {}

  get runId(): string {
    return this.run.info.run_id;
  }
  get experimentId(): string {
    return this.run.info.experiment_id;
  }

  logMetric = (key: string, value: number, step = 0): Promise<LogResult> =>
    this.client.logMetric(this.runId, key, value, step);
  logMetrics = (values: Record<string, number>, step = 0): Promise<LogResult> =>
    this.client.logMetrics(this.runId, values, step);
  logParams = (params: Record<string, string | number | boolean>): Promise<LogResult> =>
    this.client.logParams(this.runId, params);
  setTags = (tags: Record<string, string>): Promise<LogResult> => this.client.setTags(this.runId, tags);
  logInputs = (inputs: DatasetInput[]): Promise<void> => this.client.logInputs(this.runId, inputs);
  logArtifact = (file: string, artifactPath = ''): Promise<string> =>
    this.client.logArtifact(this.runId, file, artifactPath);
  logArtifacts = (dir: string, artifactPath = ''): Promise<string[]> =>
    this.client.logArtifacts(this.runId, dir, artifactPath);
  logText = (content: string, artifactFile: string): Promise<string> =>
    this.client.logText(this.runId, content, artifactFile);
  /** Logs `dir` as an MLflow 3 logged model of this run; returns its model id. */
  logModel = (
    dir: string,
    opts: Omit<MlmodelOptions, 'runId' | 'modelUuid'> & { modelType?: string; tags?: Record<string, string> },
  ): Promise<string> => this.client.logModel(this.runId, dir, opts);
  /** A logged model's scores on one dataset, logged once and linked to both (the UI's Models tab). */
  logEvaluation = (
    modelId: string,
    metrics: Record<string, number>,
    dataset?: { name: string; digest: string },
  ): Promise<LogResult> => this.client.logMetrics(this.runId, metrics, 0, Date.now(), { modelId, dataset });
}

function gitCommit(cwd: string): string | undefined {
  try {
    return (
      execFileSync('git', ['rev-parse', 'HEAD'], {
        cwd,
        stdio: ['ignore', 'pipe', 'ignore'],
        encoding: 'utf8',
      }).trim() || undefined
    );
  } catch {
    return undefined;
  }
}

/** The digest of what the notebooks under `cwd` export (the code a run used); none outside a project. */
function exportedCode(cwd: string): Record<string, string> {
  try {
    return exportsTags(exportsDigest(exportsOf(cwd)));
  } catch {
    return {};
  }
}

/** MLflow's reserved tags for a run started from `source`, and the digest of the exported notebook code. */
export function systemTags(opts: RunOptions, cwd = process.cwd()): Record<string, string> {
  const source =
    opts.source ??
    process.env.MLFLOW_SOURCE_NAME ??
    (process.argv[1] ? path.relative(cwd, process.argv[1]) : 'unknown');
  const commit = gitCommit(cwd);
  return {
    ...exportedCode(cwd),
    'mlflow.source.name': source,
    'mlflow.source.type': source.endsWith('.ipynb') ? 'NOTEBOOK' : 'LOCAL',
    'mlflow.user': process.env.MLFLOW_USER ?? os.userInfo().username,
    ...(commit ? { 'mlflow.source.git.commit': commit } : {}),
    ...(opts.runName ? { 'mlflow.runName': opts.runName } : {}),
    ...(opts.note ? { 'mlflow.note.content': opts.note } : {}),
    ...(opts.parentRunId ? { 'mlflow.parentRunId': opts.parentRunId } : {}),
  };
}

/** Suffix of the experiment that holds a task's data-stage runs (prepare, EDA), apart from its training runs. */
export const DATA_EXPERIMENT_SUFFIX = '-data';
export const dataExperiment = (task: string): string => `${task}${DATA_EXPERIMENT_SUFFIX}`;

/** The description an experiment gets when a run creates it (pure). */
export function experimentNote(name: string): string {
  if (name.endsWith(DATA_EXPERIMENT_SUFFIX)) {
    const task = name.slice(0, -DATA_EXPERIMENT_SUFFIX.length);
    return (
      `Data stage of **${task}**: \`make prepare\` (validation, quarantined rows, splits, dataset digests, data ` +
      `report) and the EDA notebook's profiles. Training runs are in the **${task}** experiment.`
    );
  }
  return (
    `Training and evaluation runs of **${name}** (notebooks and make targets). Each run lists its datasets and ` +
    `its logged model (Models tab); pick one and \`make promote RUN=<run id>\` registers it as @challenger. ` +
    `Data-stage runs are in **${dataExperiment(name)}**.`
  );
}

/** MLflow 3 opens experiments of this kind on the runs table (model training), not the GenAI overview. */
const EXPERIMENT_KIND = { key: 'mlflow.experimentKind', value: 'custom_model_development' };

/**
 * Opens a run (or resumes `opts.resumeRunId`) with the system tags; the experiment is created with
 * its description and kind if needed. Pair with `closeRun`; `withRun` does both around a function.
 * Notebooks use the pair when a run spans cells (a comparison whose candidates each have a cell).
 */
export async function openRun(client: MlflowClient, opts: RunOptions): Promise<ActiveRun> {
  if (opts.resumeRunId) return new ActiveRun(client, await client.resumeRun(opts.resumeRunId));
  const exp = await client.getOrCreateExperiment(opts.experiment, {
    [EXPERIMENT_KIND.key]: EXPERIMENT_KIND.value,
    'mlflow.note.content': opts.experimentNote ?? experimentNote(opts.experiment),
  });
  // Experiments made before this project set the kind (or by hand) open on the runs table too.
  if (!exp.tags.some((t) => t.key === EXPERIMENT_KIND.key))
    await client.setExperimentTag(exp.experiment_id, EXPERIMENT_KIND.key, EXPERIMENT_KIND.value);
  const run = await client.createRun({
    experimentId: exp.experiment_id,
    runName: opts.runName,
    tags: { ...systemTags(opts), ...opts.tags },
  });
  return new ActiveRun(client, run);
}

/**
 * Ends a run FINISHED, or FAILED with `failure` recorded as tags, and delivers what was logged (or
 * keeps it in the journal if the server is unreachable). Throws only for a server that answers with
 * an error.
 */
export async function closeRun(client: MlflowClient, run: ActiveRun, failure?: unknown): Promise<void> {
  if (failure !== undefined) {
    const e = failure instanceof Error ? failure : new Error(String(failure));
    await client
      .setTags(run.runId, {
        'error.type': e.name,
        'error.message': e.message.slice(0, 7900),
        ...(e.stack ? { 'error.stack': e.stack.slice(0, 7900) } : {}),
      })
      .catch(() => undefined);
  }
  await client.endRun(run.runId, failure !== undefined ? 'FAILED' : 'FINISHED');
  try {
    await client.flush(run.runId);
  } catch (err) {
    // An unreachable server is not a failure of the run: the data waits in the journal.
    if (!isTransient(err)) throw err;
    process.stderr.write(
      `[mlflow] run ${run.runId}: server still unreachable; its data is safe in ` +
        `${client.journal.file(run.runId)} (replay: make mlflow-replay)\n`,
    );
  }
}

/**
 * Runs `fn` inside an MLflow run. On success the run ends FINISHED; on an exception it ends FAILED
 * with the error recorded as tags, and the exception is rethrown. Logged data is flushed either way;
 * if the server is down it stays in the journal (mlflow/.journal/) and `make mlflow-replay` sends it.
 */
export async function withRun<T>(
  client: MlflowClient,
  opts: RunOptions,
  fn: (run: ActiveRun) => Promise<T>,
): Promise<T> {
  const active = await openRun(client, opts);
  // Plain variables, not a union narrowed across try/catch: tslab's TypeScript 5.0 does not narrow that.
  let failed = false;
  let failure: unknown;
  let value: T | undefined;
  try {
    value = await fn(active);
  } catch (err) {
    failed = true;
    failure = err;
  }
  try {
    await closeRun(client, active, failed ? (failure ?? new Error('undefined thrown')) : undefined);
  } catch (err) {
    // The run's own error, if any, comes first.
    throw failed ? failure : err;
  }
  if (failed) throw failure;
  return value as T;
}
