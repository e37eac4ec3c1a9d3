import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { MlflowClient, type Run } from '../../src/mlflow';
import { TFIDF_TUNING } from '../../src/tune/spaces';
import { runScript, TS_NODE } from '../helpers/cli';
import { studySummary } from '../helpers/tune';
import { readProductionConfig } from '../../src/production/config';
import { baselineConfigFromParams } from '../../src/kinds/tfidf-logreg/train';
import { loggedModelOf } from '../helpers/servable';

// make tune for real: Optuna in the venv, the study in SQLite under a temporary folder, trials as
// nested runs on the suite's MLflow server. TF-IDF on a small support-category subset keeps trials short.
const cfg = loadConfig();
const TASK = 'support-category';
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tune-'));
const storage = `sqlite:///${path.join(out, 'optuna.db')}`;
const env = { ...process.env, MLFLOW_TRACKING_URI: inject('mlflowUri') };
const client = new MlflowClient({
  trackingUri: inject('mlflowUri'),
  journalDir: path.join(out, 'journal'),
  log: () => {},
});
const tuneArgs = (study: string, trials: number, extra: string[] = [], model = 'tfidf') => [
  '--task',
  TASK,
  '--model',
  model,
  '--trials',
  String(trials),
  '--study',
  study,
  '--storage',
  storage,
  '--processed-dir',
  out,
  '--max-train',
  '600',
  '--max-eval',
  '150',
  ...extra,
];
const startTune = (args: string[]): ChildProcess =>
  spawn(TS_NODE, [path.join(cfg.root, 'scripts', 'tune.ts'), ...args], { cwd: cfg.root, env, stdio: 'pipe' });
const finished = (p: ChildProcess) =>
  new Promise<number>((resolve) => p.on('exit', (code, signal) => resolve(code ?? (signal ? 137 : 1))));

const readStudy = (study: string) => studySummary(storage, study);

async function studyRuns(study: string): Promise<{ parents: Run[]; children: Run[] }> {
  const exp = (await client.getExperimentByName(TASK))!;
  const runs = await client.searchAllRuns({
    experimentIds: [exp.experiment_id],
    filter: `tags.\`optuna.study_name\` = '${study}'`,
  });
  const tag = (r: Run, k: string) => r.data.tags?.find((t) => t.key === k)?.value;
  return {
    parents: runs.filter((r) => tag(r, 'mlflow.parentRunId') === undefined),
    children: runs.filter((r) => tag(r, 'mlflow.parentRunId') !== undefined),
  };
}
const tagOf = (r: Run, k: string) => r.data.tags?.find((t) => t.key === k)?.value;

beforeAll(async () => {
  await runScript('prepare-data.ts', ['--task', TASK, '--max-per-split', '3000', '--processed-dir', out], env);
}, 120_000);
afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

describe('make tune (Optuna + MLflow)', () => {
  it('runs a study: default first, trials as nested runs with per-epoch metrics, state tags and models, the best marked', async () => {
    const stdout = await runScript('tune.ts', tuneArgs('study-a', 6), env);
    expect(stdout).toMatch(/study study-a: \d complete, \d pruned, 0 failed/);
    expect(stdout).toMatch(/promote it: make promote RUN=[0-9a-f]{32}/);

    const summary = await readStudy('study-a');
    expect(summary.counts.complete + summary.counts.pruned).toBe(6);
    // Trial 0 is today's default configuration, so the study measures what it has to beat.
    expect(summary.trials[0]!.params).toEqual(TFIDF_TUNING.defaults);

    const { parents, children } = await studyRuns('study-a');
    expect(parents).toHaveLength(1);
    const parent = parents[0]!;
    expect(parent.info.status).toBe('FINISHED');
    expect(children).toHaveLength(6);
    expect(new Set(children.map((r) => tagOf(r, 'optuna.trial_number')))).toEqual(
      new Set(['0', '1', '2', '3', '4', '5']),
    );
    for (const child of children) {
      expect(tagOf(child, 'mlflow.parentRunId')).toBe(parent.info.run_id);
      const n = Number(tagOf(child, 'optuna.trial_number'));
      const trial = summary.trials.find((t) => t.number === n)!;
      expect(tagOf(child, 'optuna.state')).toBe(trial.state.toUpperCase());
      // The trial's params are logged as the kind's own params (what make retrain reads back).
      const params = Object.fromEntries((child.data.params ?? []).map((p) => [p.key, p.value]));
      expect(params.ngram_range).toBe(`1-${trial.params.ngram_max}`);
      expect(Number(params.learning_rate)).toBeCloseTo(Number(trial.params.learning_rate), 12);
      const history = await client.getMetricHistory(child.info.run_id, 'epoch/val_macro_f1');
      const steps = history.map((m) => Number(m.step)).sort((a, b) => a - b);
      expect(steps).toEqual(
        Object.keys(trial.intermediate)
          .map(Number)
          .sort((a, b) => a - b),
      );
      if (trial.state === 'complete') {
        expect(steps.at(-1)).toBe(trial.params.epochs);
        expect(await loggedModelOf(client, child.info.run_id)).toBeDefined();
      } else {
        expect(steps.at(-1)!).toBeLessThan(Number(trial.params.epochs));
      }
    }
    const best = summary.trials.filter((t) => t.state === 'complete').sort((a, b) => b.value! - a.value!)[0]!;
    expect(tagOf(parent, 'optuna.best_trial')).toBe(String(best.number));
    expect(tagOf(parent, 'optuna.best_run_id')).toBe(best.user_attrs.mlflow_run_id);
    const parentParams = Object.fromEntries((parent.data.params ?? []).map((p) => [p.key, p.value]));
    expect(parentParams['space.learning_rate']).toBe('float[0.005, 0.2] log');
    expect(tagOf(parent, 'optuna.sampler')).toBe('tpe');
    expect((await client.listArtifacts(parent.info.run_id, 'study')).map((f) => f.path).sort()).toEqual([
      'study/report.html',
      'study/trials.json',
    ]);

    // The best trial promotes like any run, and its production config trains retrain's challenger with the
    // tuned configuration (retrain reads these hyper-parameters back through baselineConfigFromParams).
    const configFile = path.join(out, 'production', `${TASK}.json`);
    await runScript(
      'promote.ts',
      [
        'register',
        '--run',
        best.user_attrs.mlflow_run_id as string,
        '--config',
        configFile,
        '--state-dir',
        path.join(out, 'state'),
      ],
      env,
    );
    const production = readProductionConfig(configFile);
    expect(production.model.runId).toBe(best.user_attrs.mlflow_run_id);
    expect(baselineConfigFromParams(production.hyperparameters)).toEqual(TFIDF_TUNING.config(best.params));
  }, 300_000);

  it('resumes after SIGKILL during trial 3: the requested trials finish, none repeated, no duplicate child runs', async () => {
    const study = 'study-killed';
    // More data than the other studies, so trial 3 lasts seconds after its first epoch.
    const args = [...tuneArgs(study, 6), '--max-train', '3000'];
    const first = startTune(args);
    const exit = finished(first);
    // Wait until trial 3 (number 2) has reported an epoch (the pruner has no say before 5 trials), then kill.
    let killedTrialRun: Run | undefined;
    for (let i = 0; i < 1200 && !killedTrialRun; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const { children } = await studyRuns(study).catch(() => ({ children: [] as Run[] }));
      const running = children.find((r) => tagOf(r, 'optuna.trial_number') === '2' && r.info.status === 'RUNNING');
      if (running && (await client.getMetricHistory(running.info.run_id, 'epoch/val_macro_f1')).length > 0)
        killedTrialRun = running;
    }
    expect(killedTrialRun).toBeDefined();
    first.kill('SIGKILL');
    expect(await exit).toBe(137);

    const stdout = await runScript('tune.ts', args, env);
    expect(stdout).toMatch(/resumed \(2 finished\)/);
    expect(stdout).toMatch(/trials 2 lost their driver/);

    const summary = await readStudy(study);
    expect(summary.counts.complete + summary.counts.pruned).toBe(6);
    expect(summary.counts.fail).toBe(1);
    const killed = summary.trials.find((t) => t.number === 2)!;
    expect(killed.state).toBe('fail');
    const retry = summary.trials.find((t) => t.retry_of === 2)!;
    expect(retry.params).toEqual(killed.params);
    expect(['complete', 'pruned']).toContain(retry.state);

    const { parents, children } = await studyRuns(study);
    expect(parents).toHaveLength(1);
    const numbers = children.map((r) => tagOf(r, 'optuna.trial_number'));
    expect(numbers).toHaveLength(new Set(numbers).size);
    expect(children).toHaveLength(summary.trials.length);
    const killedRun = children.find((r) => tagOf(r, 'optuna.trial_number') === '2')!;
    expect(killedRun.info.run_id).toBe(killedTrialRun!.info.run_id);
    expect(killedRun.info.status).toBe('KILLED');
    expect(tagOf(killedRun, 'optuna.state')).toBe('FAIL');
  }, 300_000);

  it('two drivers share one study: both contribute trials, one parent run, no clashes', async () => {
    const study = 'study-shared';
    const a = startTune(tuneArgs(study, 8));
    await new Promise((r) => setTimeout(r, 1500));
    const b = startTune(tuneArgs(study, 8));
    const [ca, cb] = await Promise.all([finished(a), finished(b)]);
    expect([ca, cb]).toEqual([0, 0]);

    const summary = await readStudy(study);
    const done = summary.trials.filter((t) => t.state === 'complete' || t.state === 'pruned');
    expect(done.length).toBeGreaterThanOrEqual(8);
    expect(done.length).toBeLessThanOrEqual(9); // at most one trial in flight when the other reached the budget
    const owners = new Set(done.map((t) => t.user_attrs['convo.owner']));
    expect(owners.size).toBe(2);

    const { parents, children } = await studyRuns(study);
    expect(parents).toHaveLength(1);
    const numbers = children.map((r) => tagOf(r, 'optuna.trial_number'));
    expect(numbers).toHaveLength(new Set(numbers).size);
    expect(children).toHaveLength(summary.trials.length);
  }, 300_000);

  it('tunes BERT fine-tuning on a data-fraction budget and retrains the best configuration on all data', async () => {
    const study = 'study-bert';
    const stdout = await runScript(
      'tune.ts',
      tuneArgs(
        study,
        1,
        [
          '--max-train',
          '48',
          '--max-eval',
          '24',
          '--data-fraction',
          '0.5',
          '--retrain-best',
          '--work-dir',
          path.join(out, 'bert-work'),
        ],
        'bert',
      ),
      env,
    );
    expect(stdout).toMatch(/retrained on all data: test accuracy \d+\.\d+%/);
    const retrainedId = /promote it: make promote RUN=([0-9a-f]{32})/.exec(stdout)![1]!;

    const summary = await readStudy(study);
    const { parents, children } = await studyRuns(study);
    expect(parents).toHaveLength(1);
    const trials = children.filter((r) => tagOf(r, 'optuna.trial_number') !== undefined);
    expect(trials).toHaveLength(1); // trial 0, the default recipe: the BERT space's sampling is the tfidf studies' code
    for (const t of trials) {
      expect(tagOf(t, 'optuna.state')).toBe('COMPLETE');
      const params = Object.fromEntries((t.data.params ?? []).map((p) => [p.key, p.value]));
      expect(params.data_fraction).toBe('0.5');
      expect(params['data.digest.train']).toBeUndefined();
      expect(params.model).toBe('bert-finetune');
      // Every epoch's validation reached both MLflow and the pruner (early stopping may end before `epochs`).
      const reported = Object.keys(
        summary.trials.find((x) => x.number === Number(tagOf(t, 'optuna.trial_number')))!.intermediate,
      );
      expect(reported.length).toBeGreaterThan(0);
      expect(reported.length).toBeLessThanOrEqual(Number(params.epochs));
      expect((await client.getMetricHistory(t.info.run_id, 'epoch/val_macro_f1')).length).toBe(reported.length);
      expect(await loggedModelOf(client, t.info.run_id)).toBeDefined();
    }
    const trial0 = trials.find((r) => tagOf(r, 'optuna.trial_number') === '0')!;
    expect(trial0.data.params).toContainEqual({ key: 'learning_rate', value: '0.0001' });
    // The retrained run is a child of the study, trained on all 48 texts, with a servable model.
    const retrained = children.find((r) => r.info.run_id === retrainedId)!;
    expect(tagOf(retrained, 'optuna.retrained_from')).toBe('0');
    expect(tagOf(retrained, 'mlflow.parentRunId')).toBe(parents[0]!.info.run_id);
    expect(await loggedModelOf(client, retrainedId)).toBeDefined();
    expect(fs.existsSync(path.join(out, 'bert-work', 'trial-0'))).toBe(false);
  }, 600_000);
});
