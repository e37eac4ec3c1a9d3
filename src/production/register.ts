/**
 * Run -> registry: choose a finished run (by id, or best by a metric), register its model as a new
 * version of the task's registered model, tag it, point `@challenger` at it, and describe it in
 * the task's production config (config/production/<task>.json), which retraining and serving read.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LabelMap } from '../data/labels';
import { readModelFolder } from '../kinds';
import type { MlflowClient, ModelVersion, Run } from '../mlflow';
import type { ProductionConfig } from './config';
import { changedModules, EXPORTS_DIGEST_TAG, EXPORTS_MODULES_TAG, type ExportsDigest } from '../export/provenance';
import { moveChampion } from './champion-move';

export class PromotionError extends Error {
  override name = 'PromotionError';
}

const tagsOf = (run: Run) => Object.fromEntries(run.data.tags.map((t) => [t.key, t.value]));
const paramsOf = (run: Run) => Object.fromEntries(run.data.params.map((p) => [p.key, p.value]));
const metricOf = (run: Run, key: string) => run.data.metrics.find((m) => m.key === key)?.value;

/** Checks a run can be promoted; throws a PromotionError that says why not. */
export async function assertPromotable(
  client: MlflowClient,
  run: Run,
  opts: { metric?: string; artifactPath?: string } = {},
): Promise<void> {
  const id = run.info.run_id;
  if (run.info.status !== 'FINISHED')
    throw new PromotionError(`Run ${id} is ${run.info.status}; only FINISHED runs can be promoted.`);
  if (opts.metric && metricOf(run, opts.metric) === undefined)
    throw new PromotionError(`Run ${id} has no metric "${opts.metric}".`);
  if (!(await client.runModelSource(run, opts.artifactPath ?? 'model')))
    throw new PromotionError(`Run ${id} has no model (no logged model "${opts.artifactPath ?? 'model'}").`);
}

/** The run given by id, or the FINISHED run of the task's experiment with the highest `metric` that has a model. */
export async function chooseRun(
  client: MlflowClient,
  opts: { task: string; runId?: string; metric?: string },
): Promise<Run> {
  if (opts.runId) {
    const run = await client.getRun(opts.runId);
    await assertPromotable(client, run, { metric: opts.metric });
    return run;
  }
  if (!opts.metric) throw new PromotionError('Give RUN=<run id> or METRIC=<metric to maximise>.');
  const exp = await client.getExperimentByName(opts.task);
  if (!exp) throw new PromotionError(`No experiment named "${opts.task}" (experiments are named after tasks).`);
  const runs = await client.searchAllRuns({
    experimentIds: [exp.experiment_id],
    filter: "attributes.status = 'FINISHED'",
    orderBy: [`metrics.\`${opts.metric}\` DESC`],
  });
  for (const run of runs) {
    if (metricOf(run, opts.metric) === undefined) break; // runs without the metric sort last
    if (await client.runModelSource(run)) return run;
  }
  throw new PromotionError(`No FINISHED run in "${opts.task}" has both the metric "${opts.metric}" and a model.`);
}

export interface Registration {
  run: Run;
  version: ModelVersion;
  config: ProductionConfig;
}

/** Refuses a run whose exported notebook code differs from the notebooks in the working tree now. */
function assertSameExports(run: Run, tags: Record<string, string>, current: ExportsDigest): void {
  const id = run.info.run_id;
  const recorded = tags[EXPORTS_DIGEST_TAG];
  if (!recorded)
    throw new PromotionError(
      `Run ${id} does not record which notebook code it ran (no ${EXPORTS_DIGEST_TAG} tag), so it cannot be ` +
        'checked against the notebooks now. Re-run it, or register it anyway with FORCE=1.',
    );
  if (recorded === current.digest) return;
  let modules: Record<string, string> = {};
  try {
    modules = JSON.parse(tags[EXPORTS_MODULES_TAG] ?? '{}') as Record<string, string>;
  } catch {
    /* listed as all changed below */
  }
  const changed = changedModules(modules, current);
  throw new PromotionError(
    `Run ${id} was made with other notebook code than the working tree has now ` +
      `(changed since: ${changed.join(', ') || 'unknown modules'}). Its model would be registered next to code that ` +
      'did not produce it. Re-run the notebook (or script) and promote that run, or use FORCE=1 to register anyway.',
  );
}

/** Checks the run's model (a kind this project serves, with a label map), registers it and sets `alias`. */
export async function registerRun(
  client: MlflowClient,
  run: Run,
  opts: {
    task: string;
    alias?: string;
    gitCommit?: string;
    metric?: string;
    /** The notebooks' exports now: the run must have been made with the same (unless `force`). */
    currentExports?: ExportsDigest;
    force?: boolean;
  },
): Promise<Registration> {
  const alias = opts.alias ?? 'challenger';
  const tags = tagsOf(run);
  const params = paramsOf(run);
  if (opts.currentExports && !opts.force) assertSameExports(run, tags, opts.currentExports);
  const source = await client.runModelSource(run);
  if (!source) throw new PromotionError(`Run ${run.info.run_id} logged no model.`);
  // Read the model before registering it, so a model no kind can serve is never registered.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'promote-'));
  let kind: ReturnType<typeof readModelFolder>['kind'];
  let labelMap: LabelMap;
  try {
    const { dir } = await client.downloadModel(source, tmp);
    const labelMapFile = path.join(dir, 'label_map.json');
    if (!fs.existsSync(labelMapFile)) throw new PromotionError(`Run ${run.info.run_id}'s model has no label_map.json`);
    try {
      kind = readModelFolder(dir).kind;
    } catch (err) {
      throw new PromotionError(`Run ${run.info.run_id}'s model cannot be served: ${(err as Error).message}`);
    }
    labelMap = JSON.parse(fs.readFileSync(labelMapFile, 'utf8')) as LabelMap;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  await client.getOrCreateRegisteredModel(opts.task, {
    description: `Models for the "${opts.task}" task. @champion is served; @challenger awaits validation.`,
    tags: { task: opts.task },
  });
  const version = await client.createModelVersion({
    name: opts.task,
    source,
    runId: run.info.run_id,
    description: `From run ${run.info.run_name ?? run.info.run_id}${opts.metric ? `, best by ${opts.metric}` : ''}.`,
    tags: {
      kind: kind.id,
      'git.commit': opts.gitCommit ?? tags['mlflow.source.git.commit'] ?? 'unknown',
      'source.name': tags['mlflow.source.name'] ?? 'unknown',
      'exports.digest': tags[EXPORTS_DIGEST_TAG] ?? 'unknown',
      ...(opts.metric ? { 'promoted.by': opts.metric, 'promoted.value': String(metricOf(run, opts.metric)) } : {}),
    },
  });
  // @champion moves with its @previous-champion (make rollback's target); other aliases just point.
  if (alias === 'champion') await moveChampion(client, opts.task, version.version);
  else await client.setAlias(opts.task, alias, version.version);
  const config: ProductionConfig = {
    task: opts.task,
    kind: kind.id,
    model: {
      name: opts.task,
      version: version.version,
      alias,
      uri: `models:/${opts.task}@${alias}`,
      runId: run.info.run_id,
      source,
      flavor: kind.flavor,
    },
    hyperparameters: params,
    checkpoint: params.checkpoint ?? params.pretrained_model ?? null,
    maxLength: params.max_length ? Number(params.max_length) : null,
    labelMap,
    dataDigest: params['data.digest.train'] ?? tags['data.digest.train'] ?? null,
    metrics: Object.fromEntries(run.data.metrics.map((m) => [m.key, m.value])),
    provenance: {
      notebook: tags['mlflow.source.name'] ?? null,
      gitCommit: opts.gitCommit ?? tags['mlflow.source.git.commit'] ?? null,
      exportsDigest: tags[EXPORTS_DIGEST_TAG] ?? null,
      promotedAt: new Date().toISOString(),
    },
  };
  return { run, version, config };
}
