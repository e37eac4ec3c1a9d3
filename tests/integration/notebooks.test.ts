import { execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { request } from 'undici';
import { executeNotebook } from '../helpers/cli';
import { copyProject } from '../helpers/project-copy';
import { startServeProcess } from '../helpers/serve-process';
import { loggedModelFiles } from '../helpers/servable';
import { loadConfig } from '../../src/config';
import { MlflowClient } from '../../src/mlflow';

// `make notebooks` in small-data mode: the three notebooks run headless with the project's
// TypeScript kernel against the real server, and their runs land in MLflow.
const cfg = loadConfig();
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'notebooks-'));
afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

type Output = { output_type: string; text?: string | string[]; ename?: string };
async function run(nb: string): Promise<Output[]> {
  // 03 runs in a copy of the project that has one more candidate (the new-candidate test below).
  const inCopy = nb === '03_experiments.ipynb';
  const file = await executeNotebook(path.join(inCopy ? copy : cfg.root, 'notebooks', nb), out, {
    ...process.env,
    ...(inCopy ? { CONVO_MLOPS_ROOT: copy, VENV: cfg.venv } : {}),
    NB_SMALL: '1',
    NB_WORK_DIR: path.join(out, 'trained'),
    MLFLOW_TRACKING_URI: inject('mlflowUri'),
    OPTUNA_STORAGE: `sqlite:///${path.join(out, 'optuna.db')}`,
  });
  const executed = JSON.parse(fs.readFileSync(file, 'utf8'));
  return executed.cells.flatMap((c: { outputs?: unknown[] }) => c.outputs ?? []);
}
// Two kernels at a time: a tslab kernel type-checks every cell on one core, and the notebooks do not share
// state (each logs its own runs), so on 2 cores the six finish in about half the time. Every test awaits its
// own notebook, started in order as a slot frees.
const NOTEBOOKS = [
  '01_eda.ipynb',
  '02_cleaning.ipynb',
  '03_experiments.ipynb',
  '04_tuning.ipynb',
  '05_tabular.ipynb',
  '06_open_set.ipynb',
];
const started = new Map<string, Promise<Output[]>>();
const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'new-candidate-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGTERM');
  fs.rmSync(copy, { recursive: true, force: true });
});
const inCopy = (script: string, args: string[]) =>
  promisify(execFile)(path.join(copy, 'node_modules/.bin/ts-node'), [path.join(copy, 'scripts', script), ...args], {
    cwd: copy,
    env: { ...process.env, MLFLOW_TRACKING_URI: inject('mlflowUri'), VENV: cfg.venv },
    maxBuffer: 16 * 1024 * 1024,
  }).then((r) => r.stdout);

/**
 * A new model idea, written where a data scientist writes it: word 1-3 grams as a candidate in 03's recipe
 * cell, and a cell that trains it. `make promote` exports it; no file under src/ is edited by hand.
 */
async function addTrigramCandidate(): Promise<void> {
  copyProject(copy, { files: ['package.json', 'tsconfig.json'], pretrained: true });
  const nbFile = path.join(copy, 'notebooks/03_experiments.ipynb');
  const nb = JSON.parse(fs.readFileSync(nbFile, 'utf8'));
  const cell = nb.cells.find((c: { id: string }) => c.id === 'exp-r4');
  const source = (cell.source as string[]).join('');
  cell.source = source.replace(
    "    'tfidf-bigram': { ...DEFAULT_BASELINE, logreg },",
    "    'tfidf-bigram': { ...DEFAULT_BASELINE, logreg },\n    'tfidf-trigram': { ...DEFAULT_BASELINE, tfidf: { ...DEFAULT_BASELINE.tfidf, ngramRange: [1, 3] }, logreg },",
  );
  expect(cell.source).not.toBe(source);
  const after = nb.cells.findIndex((c: { id: string }) => c.id === 'exp-tfidf-unigram');
  expect(after).toBeGreaterThan(0);
  nb.cells.splice(after + 1, 0, {
    cell_type: 'code',
    id: 'exp-tfidf-trigram',
    metadata: {},
    execution_count: null,
    outputs: [],
    source: ["await tfidfCandidate('tfidf-trigram');"],
  });
  fs.writeFileSync(nbFile, JSON.stringify(nb, null, 1));
  expect(await inCopy('promote.ts', ['export'])).toMatch(/wrote +src\/kinds\/tfidf-logreg\/recipe\.ts/);
  expect(fs.readFileSync(path.join(copy, 'src/kinds/tfidf-logreg/recipe.ts'), 'utf8')).toContain("'tfidf-trigram'");
}
let copyReady: Promise<void>;

beforeAll(() => {
  copyReady = addTrigramCandidate();
  let next = 0;
  const slot = async (): Promise<void> => {
    while (next < NOTEBOOKS.length) {
      const nb = NOTEBOOKS[next++]!;
      const p = nb === '03_experiments.ipynb' ? copyReady.then(() => run(nb)) : run(nb);
      started.set(nb, p);
      await p.catch(() => {}); // its own test reports the failure
    }
  };
  void Promise.all([slot(), slot()]);
});
async function execute(nb: string): Promise<Output[]> {
  while (!started.has(nb)) await new Promise((r) => setTimeout(r, 200));
  return started.get(nb)!;
}
const text = (outputs: Output[]) =>
  outputs
    .filter((o) => o.output_type === 'stream')
    .map((o) => (Array.isArray(o.text) ? o.text.join('') : o.text))
    .join('');

describe('notebooks run headless against MLflow (small-data mode)', () => {
  it('01_eda profiles each task and logs the profile', async () => {
    const outputs = await execute('01_eda.ipynb');
    expect(outputs.some((o) => o.output_type === 'error')).toBe(false);
    expect(text(outputs)).toMatch(/conversation-churn: 3333 rows read, 697 quarantined/);
    // The tabular section: quarantined rows by number, computed conclusions.
    expect(text(outputs)).toMatch(/telco-churn: 7043 rows read, 11 quarantined \(rows 489, 754, /);
    expect(text(outputs)).toMatch(/strongest single signal: Contract \(Month-to-month: \d+\.\d%, Two year: \d\.\d%\)/);
    const client = new MlflowClient({
      trackingUri: inject('mlflowUri'),
      journalDir: path.join(out, 'j'),
      log: () => {},
    });
    const exp = (await client.getExperimentByName('conversation-churn-data'))!;
    const [eda] = await client
      .searchRuns({ experimentIds: [exp.experiment_id], filter: "attributes.run_name = 'eda'" })
      .then((r) => r.runs);
    expect(eda?.data.tags).toContainEqual({ key: 'mlflow.source.name', value: 'notebooks/01_eda.ipynb' });
    expect((await client.listArtifacts(eda!.info.run_id, 'eda')).map((f) => f.path)).toEqual(['eda/profile.html']);
    await client.close();
  });

  it('02_cleaning runs its rules and tokenizer examples', async () => {
    const outputs = await execute('02_cleaning.ipynb');
    expect(outputs.some((o) => o.output_type === 'error')).toBe(false);
    expect(text(outputs)).toContain('Reach me at [EMAIL] or [PHONE]; card [CARD], order 12345');
  });

  it('03_experiments logs a parent run with nested children and chooses one', async () => {
    const outputs = await execute('03_experiments.ipynb');
    expect(outputs.some((o) => o.output_type === 'error')).toBe(false);
    const chosen = /chosen: (\S+) \(([0-9a-f]{32})\)/.exec(text(outputs));
    expect(chosen).not.toBeNull();
    const client = new MlflowClient({
      trackingUri: inject('mlflowUri'),
      journalDir: path.join(out, 'j'),
      log: () => {},
    });
    const run = await client.getRun(chosen![2]!);
    const tags = Object.fromEntries(run.data.tags.map((t) => [t.key, t.value]));
    expect(tags.chosen).toBe('true');
    const parent = await client.getRun(tags['mlflow.parentRunId']!);
    expect(parent.info.run_name).toMatch(/^compare-/);
    const siblings = await client.searchAllRuns({
      experimentIds: [run.info.experiment_id],
      filter: `tags.mlflow.parentRunId = '${parent.info.run_id}'`,
    });
    expect(siblings.map((r) => r.info.run_name).sort()).toEqual([
      'bert-finetune',
      'frozen-encoder',
      'tfidf-bigram',
      'tfidf-bigram-unweighted',
      'tfidf-trigram', // the candidate this test's copy of the notebook adds
      'tfidf-unigram',
    ]);
    for (const s of siblings) {
      expect(s.data.metrics.map((m) => m.key)).toEqual(expect.arrayContaining(['val_macro_f1', 'test_accuracy']));
      expect(await loggedModelFiles(client, s.info.run_id)).toContain('MLmodel');
    }
    await client.close();
  });

  it('a new candidate travels from a notebook cell to the served model: promote -> run -> register -> retrain -> serve', async () => {
    // 03 ran in the copy, with the trigram candidate the copy's notebook added and `make promote` exported.
    const outputs = await execute('03_experiments.ipynb');
    expect(outputs.some((o) => o.output_type === 'error')).toBe(false);
    const task = 'support-category';
    const client = new MlflowClient({
      trackingUri: inject('mlflowUri'),
      journalDir: path.join(copy, 'j'),
      log: () => {},
    });
    const exp = (await client.getExperimentByName(task))!;
    const [trigram] = await client.searchAllRuns({
      experimentIds: [exp.experiment_id],
      filter: "attributes.run_name = 'tfidf-trigram'",
      orderBy: ['attributes.start_time DESC'],
    });
    expect(trigram!.data.params).toContainEqual({ key: 'ngram_range', value: '1-3' });

    // Promote that run (its exported-code digest matches the copy's notebooks), then retrain it.
    const config = path.join(copy, 'production', `${task}.json`);
    const state = path.join(copy, 'state');
    await inCopy('promote.ts', [
      'register',
      '--run',
      trigram!.info.run_id,
      '--alias',
      'champion',
      '--config',
      config,
      '--state-dir',
      state,
    ]);
    const processed = path.join(copy, 'processed');
    await inCopy('prepare-data.ts', [
      '--task',
      task,
      '--max-per-split',
      '300',
      '--processed-dir',
      processed,
      '--no-mlflow',
    ]);
    const retrained = await inCopy('retrain.ts', [
      'run',
      '--config',
      config,
      '--processed-dir',
      processed,
      '--incoming',
      path.join(copy, 'none'),
      '--state-dir',
      state,
      '--cache-dir',
      path.join(copy, 'cache'),
      '--force',
      '--min-f1',
      '0',
      '--tolerance',
      '1',
    ]);
    expect(retrained).toMatch(/decision: promoted/);
    const champion = (await client.getModelVersionByAlias(task, 'champion'))!;
    // Trained by the promoted module with the new candidate's recipe.
    expect((await client.getRun(champion.run_id!)).data.params).toContainEqual({ key: 'ngram_range', value: '1-3' });

    // Served.
    const token = 'test-serving-token-0123';
    const { url, server } = await startServeProcess(
      ['--task', task, '--cache-dir', path.join(copy, 'cache'), '--log-dir', path.join(copy, 'serving')],
      { ...process.env, MLFLOW_TRACKING_URI: inject('mlflowUri'), SERVE_TOKENS: token },
    );
    children.push(server);
    const version = await request(`${url}/version`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await version.body.json()) as { model: { run_id: string } }).model.run_id).toBe(champion.run_id);
    await client.close();
  });

  it('04_tuning runs an Optuna study whose trials are nested MLflow runs, plots it and chooses a trial', async () => {
    const outputs = await execute('04_tuning.ipynb');
    expect(outputs.some((o) => o.output_type === 'error')).toBe(false);
    const printed = text(outputs);
    expect(printed).toMatch(/trial #0 complete: 0\.\d+/);
    const chosen = /chosen: trial-(\d+) \(([0-9a-f]{32})\)/.exec(printed);
    expect(chosen).not.toBeNull();
    // Four study figures (history, intermediate values, parallel coordinates, importances) and the trials table.
    const html = outputs.filter((o) => o.output_type === 'display_data').map((o) => JSON.stringify(o));
    for (const title of [
      'Optimisation history',
      'Intermediate values',
      'Parallel coordinates',
      'Parameter importances',
    ])
      expect(html.some((h) => h.includes(title))).toBe(true);
    const client = new MlflowClient({
      trackingUri: inject('mlflowUri'),
      journalDir: path.join(out, 'j4'),
      log: () => {},
    });
    const run = await client.getRun(chosen![2]!);
    const tags = Object.fromEntries(run.data.tags.map((t) => [t.key, t.value]));
    expect(tags['optuna.state']).toBe('COMPLETE');
    expect(tags['optuna.trial_number']).toBe(chosen![1]);
    expect(tags['mlflow.source.name']).toBe('notebooks/04_tuning.ipynb');
    const parent = await client.getRun(tags['mlflow.parentRunId']!);
    expect(parent.data.tags).toContainEqual({ key: 'optuna.best_run_id', value: run.info.run_id });
    await client.close();
  });

  it('05_tabular compares the tabular learners in MLflow, with ONNX parity', async () => {
    const outputs = await execute('05_tabular.ipynb');
    expect(outputs.some((o) => o.output_type === 'error')).toBe(false);
    const printed = text(outputs);
    for (const name of ['logistic_regression', 'random_forest', 'lightgbm']) {
      const diff = new RegExp(`${name}: test AUC 0\\.\\d+, ONNX vs library max \\|diff\\| (\\S+), run`).exec(printed);
      expect(Number(diff?.[1])).toBeLessThan(1e-5);
    }
    const parent = /parent run ([0-9a-f]{32})/.exec(printed)![1]!;
    const client = new MlflowClient({
      trackingUri: inject('mlflowUri'),
      journalDir: path.join(out, 'j5'),
      log: () => {},
    });
    const run = await client.getRun(parent);
    expect(run.data.tags).toContainEqual({ key: 'mlflow.source.name', value: 'notebooks/05_tabular.ipynb' });
    expect(run.data.metrics.find((m) => m.key === 'best_cv_roc_auc_mean')!.value).toBeGreaterThan(0.75);
    await client.close();
  });
  it('06_open_set calibrates, compares out-of-scope scores on held-out intents and logs the comparison', async () => {
    const outputs = await execute('06_open_set.ipynb');
    expect(outputs.filter((o) => o.output_type === 'error')).toEqual([]);
    const printed = text(outputs);
    const ece = /test ECE \(15 bins\): (\S+) before, (\S+) after temperature scaling/.exec(printed);
    expect(Number(ece?.[2])).toBeGreaterThanOrEqual(0);
    const chosen = /open-set: chosen (\S+) on validation, test AUROC (\S+)/.exec(printed);
    expect(['msp', 'energy', 'mahalanobis', 'mahalanobis+knn']).toContain(chosen?.[1]);
    expect(Number(chosen?.[2])).toBeGreaterThan(0.6); // unknown intents are told apart better than chance
    // Reliability diagram, a histogram per score, the tables: rendered as HTML outputs.
    const html = outputs.filter((o) => o.output_type === 'display_data').length;
    expect(html).toBeGreaterThanOrEqual(6);
    const runId = /logged to MLflow: run ([0-9a-f]{32})/.exec(printed)![1]!;
    const client = new MlflowClient({
      trackingUri: inject('mlflowUri'),
      journalDir: path.join(out, 'j6'),
      log: () => {},
    });
    const run = await client.getRun(runId);
    const metric = (k: string) => run.data.metrics.find((m) => m.key === k)?.value;
    const scores = ['msp', 'energy', 'mahalanobis', 'mahalanobis_knn'].map((s) => `test_auroc_${s}`);
    for (const k of [...scores, 'test_ece_calibrated']) expect(metric(k), k).toBeTypeOf('number');
    expect(metric('auroc')).toBeCloseTo(Number(chosen![2]), 3);
    expect(run.data.tags).toContainEqual({ key: 'open.chosen_score', value: chosen![1] });
    expect(run.data.tags).toContainEqual({ key: 'mlflow.source.name', value: 'notebooks/06_open_set.ipynb' });
    await client.close();
  });
});
