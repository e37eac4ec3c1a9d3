import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MlflowClient, type Run } from '../../src/mlflow';
import { expectNativeTrainingRun, expectServable, loggedModelFiles } from '../helpers/servable';
import { onTeamStack } from '../helpers/team-stack-run';
import { runScript } from '../helpers/cli';

// The demo's steps, run as the Makefile runs them (ts-node scripts), in small-data mode,
// against the real server of the integration suite.
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-'));
const env = { ...process.env, MLFLOW_TRACKING_URI: inject('mlflowUri') };
const ts = (script: string, args: string[]) => runScript(script, args, env);

afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

describe('make prepare + make baseline (small data)', () => {
  it('prepares a task, trains the baseline, and both runs land in MLflow with data, metrics and model', async () => {
    const task = 'conversation-churn';
    const prep = await ts('prepare-data.ts', ['--task', task, '--max-per-split', '300', '--processed-dir', out]);
    expect(prep).toMatch(/conversation-churn: 3333 rows, 697 quarantined -> train 300, validation 264, test 300/);
    expect(
      fs
        .readFileSync(path.join(out, task, 'quarantine.jsonl'), 'utf8')
        .trim()
        .split('\n'),
    ).toHaveLength(697);

    const trained = await ts('train-baseline.ts', ['--task', task, '--epochs', '5', '--processed-dir', out]);
    expect(trained).toMatch(/conversation-churn baseline: test accuracy \d+\.\d+%/);

    const client = new MlflowClient({
      trackingUri: inject('mlflowUri'),
      journalDir: path.join(out, 'journal'),
      log: () => {},
    });
    // Data runs have their own experiment; training runs stay in the task's. Both open on the runs table.
    const dataExp = (await client.getExperimentByName(`${task}-data`))!;
    const exp = (await client.getExperimentByName(task))!;
    for (const e of [dataExp, exp]) {
      expect(e.tags).toContainEqual({ key: 'mlflow.experimentKind', value: 'custom_model_development' });
      expect(e.tags.find((t) => t.key === 'mlflow.note.content')?.value).toMatch(/make promote|make prepare/);
    }
    const runs = await client.searchAllRuns({
      experimentIds: [dataExp.experiment_id, exp.experiment_id],
      orderBy: ['attributes.start_time ASC'],
    });
    expect(runs.filter((r) => r.info.experiment_id === exp.experiment_id).map((r) => r.info.run_name)).not.toContain(
      'prepare-data',
    );
    const byName: Record<string, Run> = Object.fromEntries(runs.map((r) => [r.info.run_name ?? '', r]));
    const prepRun = byName['prepare-data']!;
    expect(prepRun.info.status).toBe('FINISHED');
    expect(prepRun.inputs.dataset_inputs.map((d) => d.dataset.name).sort()).toEqual([
      `${task}-test`,
      `${task}-train`,
      `${task}-validation`,
    ]);
    expect(prepRun.data.metrics.find((m) => m.key === 'rows_bad')?.value).toBe(697);
    expect((await client.listArtifacts(prepRun.info.run_id, 'data')).map((f) => f.path).sort()).toEqual([
      'data/data_report.html',
      'data/label_map.json',
      'data/manifest.json',
      'data/quarantine.jsonl',
    ]);

    const base = byName['baseline-tfidf-logreg']!;
    expect(base.info.status).toBe('FINISHED');
    const metrics = Object.fromEntries(base.data.metrics.map((m) => [m.key, m.value]));
    expect(metrics.test_macro_f1).toBeGreaterThan(0.5);
    expect(metrics.test_roc_auc).toBeGreaterThan(0.5);
    expect((await client.getMetricHistory(base.info.run_id, 'train_loss')).length).toBe(5);
    expect(await loggedModelFiles(client, base.info.run_id)).toEqual(
      expect.arrayContaining(['MLmodel', 'input_example.json', 'label_map.json', 'model.json']),
    );
    await expectNativeTrainingRun(client, base.info.run_id, task);
    await client.close();
  });
});

describe('make baseline-frozen (small data)', () => {
  // The frozen encoder's MLflow calls are the baseline's (above); on the stack only the encoder's work would differ.
  it.skipIf(onTeamStack)('embeds with the ONNX encoder, trains the head and logs the run', async () => {
    const task = 'support-category';
    await ts('prepare-data.ts', ['--task', task, '--max-per-split', '200', '--processed-dir', out, '--no-mlflow']);
    const stdout = await ts('train-frozen-encoder.ts', ['--task', task, '--epochs', '15', '--processed-dir', out]);
    const m = /support-category frozen encoder \+ LR: test accuracy (\d+\.\d+)%.*run ([0-9a-f]{32})/.exec(stdout);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(60); // 5 balanced-ish classes: chance is about 20%
    const client = new MlflowClient({
      trackingUri: inject('mlflowUri'),
      journalDir: path.join(out, 'journal2'),
      log: () => {},
    });
    const run = await client.getRun(m![2]!);
    expect(run.data.params).toContainEqual({ key: 'runtime', value: 'onnxruntime-node' });
    expect(run.data.metrics.map((x) => x.key)).toEqual(
      expect.arrayContaining(['test_macro_f1', 'embed_texts_per_second']),
    );
    // The logged model is self-contained and servable through its flavor.
    await expectServable(client, run.info.run_id, 'ts_frozen_encoder', path.join(out, 'frozen-dl'));
    await client.close();
  });
});
