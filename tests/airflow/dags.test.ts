import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { MlflowClient, type ModelVersion } from '../../src/mlflow';
import { acquireLock, productionLockFile } from '../../src/production/lock';
import { copyProject } from '../helpers/project-copy';

// make airflow-test: every DAG in scripts/airflow/ run by real Airflow (`airflow dags test`, its own venv,
// SQLite metadata in a temp AIRFLOW_HOME) against the integration setup's MLflow server. The DAGs' tasks
// work in a copy of the project: make prepare, promote and retrain write data/processed/,
// config/production/ and mlflow/.retrain/ under the project root.
const cfg = loadConfig();
const airflow = path.resolve(cfg.root, process.env.AIRFLOW_VENV ?? '.cache/airflow-venv', 'bin', 'airflow');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'airflow-test-'));
const copy = path.join(tmp, 'project');
const task = 'support-category';
const SMALL_DATA = 300; // rows per split: the whole file runs in a few minutes
let client: MlflowClient;
let env: NodeJS.ProcessEnv;

/** The project copied (tests/helpers/project-copy.ts), with make's npm-ci stamp: node_modules is linked, installed. */
function copyForAirflow(): void {
  copyProject(copy, { files: ['Makefile', 'package.json', 'package-lock.json', '.npmrc', 'tsconfig.json'] });
  // Newer than the copied lockfile, so make does not run npm ci in the copy.
  fs.mkdirSync(path.join(copy, '.cache', 'stamps'), { recursive: true });
  fs.writeFileSync(path.join(copy, '.cache', 'stamps', 'node'), '');
}

function exec(
  args: string[],
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(airflow, args, { cwd: tmp, env: { ...env, ...extraEnv } });
    let stdout = '';
    let output = '';
    child.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), (output += d.toString())));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, output }));
  });
}

interface DagRun {
  code: number;
  output: string;
  /** Task id (with [map index] for mapped tasks) -> final state, as Airflow's database has it. */
  states: Record<string, string>;
  /** How many times a task was started: 1 unless it was retried. */
  attempts(taskId: string): number;
  /** The end of the run's log, for assertion messages. */
  tail: string;
}

async function dagsTest(
  dagId: string,
  conf: Record<string, unknown> = {},
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<DagRun> {
  const t0 = Date.now();
  const { code, output } = await exec(['dags', 'test', dagId, '--conf', JSON.stringify(conf)], extraEnv);
  const runId = /run_id=(manual__\S+)/.exec(output)?.[1];
  if (!runId) throw new Error(`airflow dags test ${dagId} made no run (exit ${code}):\n${output.slice(-6000)}`);
  const listed = await exec(['tasks', 'states-for-dag-run', dagId, runId, '-o', 'json']);
  const rows = JSON.parse(listed.stdout.slice(listed.stdout.indexOf('['))) as {
    task_id: string;
    state: string;
    map_index?: string;
  }[];
  const states = Object.fromEntries(
    rows.map((r) => [r.map_index && r.map_index !== '-1' ? `${r.task_id}[${r.map_index}]` : r.task_id, r.state]),
  );
  process.stdout.write(
    `[airflow] dags test ${dagId} ${JSON.stringify(conf)}: ${((Date.now() - t0) / 1000).toFixed(1)} s, exit ${code}, ${JSON.stringify(states)}\n`,
  );
  const run: DagRun = {
    code,
    output,
    states,
    attempts: (taskId) => output.split(`[DAG TEST] starting task_id=${taskId} `).length - 1,
    tail: output.slice(-6000),
  };
  return run;
}

const alias = (name: string) => client.getModelVersionByAlias(task, name);
const tagOf = (tags: { key: string; value: string }[], key: string) => tags.find((t) => t.key === key)?.value;

/** A day of served predictions of the champion, as make serve logs them. */
function writeServed(dir: string, champion: ModelVersion, served: { text: string; label: string }[]): void {
  fs.mkdirSync(dir, { recursive: true });
  const now = new Date().toISOString();
  const lines = served.map((s) =>
    JSON.stringify({
      ts: now,
      route: '/predict',
      model: task,
      version: champion.version,
      text: s.text,
      label: s.label,
      probabilities: { [s.label]: 1 },
      latency_ms: 1,
    }),
  );
  fs.writeFileSync(path.join(dir, `predictions-${now.slice(0, 10)}.jsonl`), `${lines.join('\n')}\n`);
}

/** The prepared training split of the copy (what the champion was trained on). */
const trainSplit = () =>
  fs
    .readFileSync(path.join(copy, 'data', 'processed', task, 'train.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { text: string; label: string });

beforeAll(async () => {
  if (!fs.existsSync(airflow)) throw new Error(`${airflow} is missing: run make airflow-venv (make airflow-test does)`);
  copyForAirflow();
  env = { ...process.env };
  for (const k of ['MAKEFLAGS', 'MFLAGS', 'MAKELEVEL']) delete env[k]; // the DAGs' make is not a sub-make of ours
  Object.assign(env, {
    AIRFLOW_HOME: path.join(tmp, 'airflow'),
    AIRFLOW__CORE__DAGS_FOLDER: path.join(cfg.root, 'scripts', 'airflow'),
    AIRFLOW__CORE__LOAD_EXAMPLES: 'False',
    AIRFLOW__CORE__PARALLELISM: '2',
    // A task that fails for real is retried after 1 s here, not 300 s: a wrong retry shows as a count.
    AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY: '1',
    PYTHONDONTWRITEBYTECODE: '1', // no __pycache__ in scripts/airflow
    CONVO_MLOPS_DIR: copy,
    MLFLOW_TRACKING_URI: inject('mlflowUri'),
    VENV: cfg.venv,
  });
  const migrated = await exec(['db', 'migrate']);
  if (migrated.code !== 0) throw new Error(`airflow db migrate failed:\n${migrated.output.slice(-4000)}`);
  client = new MlflowClient({ trackingUri: inject('mlflowUri'), journalDir: path.join(tmp, 'journal'), log: () => {} });
}, 120_000);

afterAll(async () => {
  await client?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the Airflow DAGs, run by Airflow', () => {
  it('pipeline: data -> train -> evaluate -> register -> gate; the new version becomes @champion', async () => {
    const before = await alias('champion');
    const r = await dagsTest('convo_mlops_pipeline', { small_data: SMALL_DATA });
    expect(r.code, r.tail).toBe(0);
    expect(r.states, r.tail).toEqual({
      prepare: 'success',
      train: 'success',
      evaluate: 'success',
      register: 'success',
      promote: 'success',
    });
    // The training run, in MLflow, registered as @challenger...
    const trainingRun = /baseline: .*, run ([0-9a-f]{32})/.exec(r.output)?.[1];
    expect(trainingRun, r.tail).toBeDefined();
    const training = await client.getRun(trainingRun!);
    expect(training.info.status).toBe('FINISHED');
    expect(training.data.metrics.find((m) => m.key === 'test_macro_f1')?.value).toBeGreaterThan(0.6);
    const challenger = await alias('challenger');
    expect(challenger?.run_id).toBe(trainingRun);
    // ...and the gate's challenger of its recipe passed: @champion is the new version.
    const champion = await alias('champion');
    expect(champion).toBeDefined();
    expect(champion!.version).not.toBe(before?.version);
    expect(Number(champion!.version)).toBeGreaterThan(Number(challenger!.version));
    expect(tagOf(champion!.tags, 'validation_status')).toBe('approved');
    expect(tagOf((await client.getRun(champion!.run_id!)).data.tags, 'retrain.decision')).toBe('promoted');
  });

  it('pipeline with a gate the candidate fails: registered, @champion stays where it was', async () => {
    const before = await alias('champion');
    const r = await dagsTest('convo_mlops_pipeline', { small_data: SMALL_DATA, min_f1: 0.99 });
    expect(r.code, r.tail).toBe(0);
    expect(r.states, r.tail).toMatchObject({ register: 'success', promote: 'skipped' });
    expect(r.output).toMatch(
      /@champion unchanged: registered_not_promoted \(challenger macro-F1 [\d.]+ is below the minimum 0\.99\)/,
    );
    expect((await alias('champion'))?.version).toBe(before!.version);
    const rejected = await alias('challenger');
    expect(Number(rejected!.version)).toBeGreaterThan(Number(before!.version));
    expect(tagOf(rejected!.tags, 'validation_status')).toBe('rejected');
    expect(tagOf((await client.getRun(rejected!.run_id!)).data.tags, 'retrain.decision')).toBe(
      'registered_not_promoted',
    );
  });

  it('monitor: traffic like the training data -> no retrain, no alert', async () => {
    const before = (await alias('champion'))!;
    const served = path.join(tmp, 'serving-same');
    writeServed(served, before, trainSplit());
    const r = await dagsTest('convo_mlops_monitor', {}, { SERVING_LOG_DIR: served });
    expect(r.code, r.tail).toBe(0);
    expect(r.states, r.tail).toEqual({ monitor: 'success', decide: 'success', retrain: 'skipped', alert: 'skipped' });
    expect(r.output).toMatch(/drift none, action none/);
    expect((await alias('champion'))?.version).toBe(before.version);
  });

  // Longer texts full of words the model never saw, all predicted as one label: a large drift.
  const drifted = () =>
    trainSplit().map((e, i) => ({
      text: `${e.text}${' crypto wallet staking airdrop'.repeat(1 + (i % 5))}`,
      label: 'Card',
    }));

  it('monitor: drifted traffic -> retrain through the gate (new @champion) and a failed alert task', async () => {
    const before = (await alias('champion'))!;
    const served = path.join(tmp, 'serving-drift');
    writeServed(served, before, drifted());
    const r = await dagsTest('convo_mlops_monitor', {}, { SERVING_LOG_DIR: served });
    expect(r.code, r.tail).not.toBe(0); // the run is failed by its alert task
    expect(r.states, r.tail).toEqual({ monitor: 'success', decide: 'success', retrain: 'success', alert: 'failed' });
    expect(r.attempts('alert')).toBe(1);
    const champion = (await alias('champion'))!;
    expect(Number(champion.version)).toBeGreaterThan(Number(before.version));
    expect(tagOf((await client.getRun(champion.run_id!)).data.tags, 'retrain.decision')).toBe('promoted');
    const experiment = (await client.getExperimentByName(task))!;
    const [monitorRun] = (
      await client.searchRuns({
        experimentIds: [experiment.experiment_id],
        filter: "tags.stage = 'monitor'",
        orderBy: ['start_time DESC'],
        maxResults: 1,
      })
    ).runs;
    expect(tagOf(monitorRun!.data.tags, 'drift.action')).toBe('retrain_and_alert');
  });

  it('monitor while a retrain holds the production lock: retrain skipped at once, not retried', async () => {
    const before = (await alias('champion'))!;
    const served = path.join(tmp, 'serving-drift');
    const lock = acquireLock(productionLockFile(path.join(copy, 'mlflow', '.retrain'), task), 'retrain');
    try {
      const r = await dagsTest('convo_mlops_monitor', {}, { SERVING_LOG_DIR: served });
      expect(r.states, r.tail).toMatchObject({ monitor: 'success', retrain: 'skipped', alert: 'failed' });
      expect(r.attempts('retrain'), r.tail).toBe(1);
      expect(r.output).toMatch(/support-category\.lock is held \(retrain, pid \d+ on .*\): another retrain/);
      expect((await alias('champion'))?.version).toBe(before.version);
      expect(fs.existsSync(lock.file)).toBe(true); // still ours: nobody broke it
    } finally {
      lock.release();
    }
  });

  it('weekly retrain: one mapped task per promoted task; no new data leaves @champion alone', async () => {
    const before = (await alias('champion'))!;
    const r = await dagsTest('convo_mlops_weekly_retrain');
    expect(r.code, r.tail).toBe(0);
    expect(r.states, r.tail).toEqual({ promoted_tasks: 'success', 'retrain[0]': 'skipped' });
    expect(r.output).toMatch(/support-category: @champion unchanged: skipped_no_new_data/);
    expect((await alias('champion'))?.version).toBe(before.version);
  });
});
