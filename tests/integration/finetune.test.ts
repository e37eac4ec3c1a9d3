import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { loadEncoderCheckpoint } from '../../src/engine/checkpoint';
import { readScope } from '../../src/kinds/scope/rule';
import { textPredictor } from '../../src/kinds/types';
import { MlflowClient, readMlmodel } from '../../src/mlflow';
import { expectNativeTrainingRun, expectServable, loggedModelFiles } from '../helpers/servable';
import { TrainStateSchema } from '../../src/train/checkpoints';
import { runScript } from '../helpers/cli';

// `make finetune` as the Makefile runs it, on the real pretrained checkpoint and a small subset of
// support-category, against the suite's real MLflow server. One run goes through; a second is
// SIGKILLed mid-epoch and resumed by the same command: both must end with the same numbers.
const cfg = loadConfig();
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'finetune-'));
const env = { ...process.env, MLFLOW_TRACKING_URI: inject('mlflowUri') };
const tsNode = path.join(cfg.root, 'node_modules/.bin/ts-node');
const script = (name: string) => path.join(cfg.root, 'scripts', name);
const task = 'support-category';
const args = (workDir: string) => [
  '--task',
  task,
  '--processed-dir',
  out,
  '--work-dir',
  workDir,
  '--epochs',
  '2',
  '--batch-size',
  '8',
  '--max-length',
  '32',
  '--lr',
  '1e-4',
  '--checkpoint-every',
  '3',
  '--seed',
  '7',
  '--patience',
  '0',
];
// Asynchronous, so the test worker stays responsive while training runs.
const run = async (a: string[]) =>
  (
    await promisify(execFile)(tsNode, [script('finetune.ts'), ...a], {
      cwd: cfg.root,
      env,
      encoding: 'utf8',
      maxBuffer: 16 * 1024 * 1024,
    })
  ).stdout;
const result = (stdout: string) => {
  const m = /test accuracy (\d+\.\d+)%, macro-F1 (\d\.\d+).*run ([0-9a-f]{32})/.exec(stdout);
  expect(m, stdout).not.toBeNull();
  return { accuracy: Number(m![1]), f1: Number(m![2]), runId: m![3]! };
};
const finalState = (workDir: string) =>
  TrainStateSchema.parse(JSON.parse(fs.readFileSync(path.join(workDir, 'final-state.json'), 'utf8')));

afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

describe('make finetune (real checkpoint, small data)', () => {
  const whole = path.join(out, 'whole');
  const killed = path.join(out, 'killed');
  let uninterrupted: ReturnType<typeof result>;

  it('fine-tunes, logs params, curves, evaluation and a servable model to MLflow', async () => {
    await runScript(
      'prepare-data.ts',
      ['--task', task, '--max-per-split', '48', '--processed-dir', out, '--no-mlflow'],
      env,
    );
    uninterrupted = result(await run(args(whole)));
    // A finished run keeps its final state, best weights and model, not its resumable checkpoints.
    expect(fs.readdirSync(whole).sort()).toEqual(['best.safetensors', 'final-state.json', 'model', 'run.json']);
    const client = new MlflowClient({
      trackingUri: inject('mlflowUri'),
      journalDir: path.join(out, 'journal'),
      log: () => {},
    });
    const r = await client.getRun(uninterrupted.runId);
    expect(r.info.status).toBe('FINISHED');
    const params = Object.fromEntries(r.data.params.map((p) => [p.key, p.value]));
    expect(params).toMatchObject({
      model: 'bert-finetune',
      checkpoint: 'all-MiniLM-L6-v2',
      learning_rate: '0.0001',
      batch_size: '8',
      pooling: 'mean',
      runtime: 'onnxruntime-node',
    });
    // 48 examples / 8 = 6 steps an epoch, 2 epochs: one train_loss point per step, one validation point per epoch.
    expect((await client.getMetricHistory(r.info.run_id, 'train_loss')).map((m) => m.step)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ]);
    expect((await client.getMetricHistory(r.info.run_id, 'epoch/val_macro_f1')).length).toBe(2);
    await expectNativeTrainingRun(client, r.info.run_id, task);
    const keys = r.data.metrics.map((m) => m.key);
    expect(keys).toEqual(
      expect.arrayContaining([
        'test_accuracy',
        'test_macro_f1',
        'test_accuracy_int8',
        'int8_accuracy_loss_points',
        'train_examples_per_second',
        'learning_rate',
        'grad_norm',
      ]),
    );
    const artifacts = await loggedModelFiles(client, r.info.run_id);
    expect(artifacts).toEqual(
      expect.arrayContaining([
        'MLmodel',
        'hf',
        'model.onnx',
        'model.int8.onnx',
        'label_map.json',
        'scope.json',
        'scope-encoder',
        'scope-neighbours.f32',
      ]),
    );
    const hf = (await loggedModelFiles(client, r.info.run_id, 'hf')).map((f) => path.basename(f));
    expect(hf).toEqual([
      'config.json',
      'model.safetensors',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'vocab.txt',
    ]);
    // The logged model serves through its flavor.
    const { dir, predictor } = await expectServable(client, r.info.run_id, 'ts_bert', path.join(out, 'dl'));
    // Its out-of-scope rule: Mahalanobis plus the nearest labelled text in the pretrained encoder's space,
    // whose bank holds every training and validation text.
    const scope = textPredictor(predictor).scope!;
    expect(scope.score).toBe('mahalanobis+knn');
    const saved = readScope(dir)!;
    const rows = (split: string) =>
      fs
        .readFileSync(path.join(out, task, `${split}.jsonl`), 'utf8')
        .trim()
        .split('\n').length;
    expect(saved.knn!.rows).toBe(rows('train') + rows('validation'));
    const verdicts = await scope.judge(['my card was charged twice', 'can you dim my screen']);
    expect(Array.from(verdicts.scores).every(Number.isFinite)).toBe(true);
    await predictor.release();
    // ...and in Python: the python_function flavor names the shipped loader and the served graph.
    const flavors = readMlmodel(dir).flavors as Record<string, Record<string, unknown>>;
    expect(flavors.python_function).toMatchObject({ loader_module: 'convo_pyfunc', code: 'code', data: 'pyfunc.json' });
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'pyfunc.json'), 'utf8'))).toMatchObject({
      kind: 'bert-finetune',
      onnx: flavors.ts_bert!.onnx,
    });
    const hfConfig = JSON.parse(fs.readFileSync(path.join(dir, 'hf', 'config.json'), 'utf8')) as {
      id2label: Record<string, string>;
      architectures: string[];
    };
    expect(Object.values(hfConfig.id2label)).toEqual(predictor.labels);
    expect(hfConfig.architectures).toEqual(['BertForSequenceClassification']);
    // The Hugging Face folder loads back as a checkpoint: encoder under bert.*, head under classifier.*.
    const { weights } = loadEncoderCheckpoint(path.join(dir, 'hf'));
    expect(weights.get('classifier.weight')!.shape).toEqual([predictor.labels.length, 384]);
    expect(weights.get('layers.5.ffn_out.weight')!.shape).toEqual([384, 1536]);
    await client.close();
  });

  it('a process killed mid-epoch resumes from its checkpoint and ends with the same metrics', async () => {
    // Start, wait for the first mid-epoch checkpoint (step 3 of 6), then SIGKILL: no chance to clean up.
    const child = spawn(tsNode, [script('finetune.ts'), ...args(killed)], { cwd: cfg.root, env, stdio: 'ignore' });
    const pointer = path.join(killed, 'latest.json');
    const deadline = Date.now() + 240_000;
    while (!fs.existsSync(pointer) && Date.now() < deadline && child.exitCode === null)
      await new Promise((r) => setTimeout(r, 25));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(fs.existsSync(pointer)).toBe(true);
    const atKill = JSON.parse(fs.readFileSync(pointer, 'utf8')) as { checkpoint: string };
    expect(atKill.checkpoint).toMatch(/^ckpt-\d+$/);
    const resumedAt = Number(atKill.checkpoint.slice(5));
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThan(12);

    const stdout = await run(args(killed));
    expect(stdout).toContain(`resumed at step ${resumedAt} of 12`);
    const resumed = result(stdout);
    expect(Math.abs(resumed.accuracy - uninterrupted.accuracy)).toBeLessThanOrEqual(0.5);
    expect(Math.abs(resumed.f1 - uninterrupted.f1)).toBeLessThanOrEqual(0.005);
    // Same data order and dropout masks per step: the loss curves agree step by step.
    const a = finalState(whole).lossCurve;
    const b = finalState(killed).lossCurve;
    expect(b.map(([s]) => s)).toEqual(a.map(([s]) => s));
    expect(Math.max(...a.map(([, l], i) => Math.abs(l - b[i]![1])))).toBeLessThan(1e-4);

    // The resumed process continued the same MLflow run, and no step was logged twice.
    const client = new MlflowClient({
      trackingUri: inject('mlflowUri'),
      journalDir: path.join(out, 'journal2'),
      log: () => {},
    });
    const r = await client.getRun(resumed.runId);
    expect(r.info.status).toBe('FINISHED');
    expect(r.data.tags).toContainEqual({ key: 'train.resumed_from_step', value: String(resumedAt) });
    expect(
      (await client.getMetricHistory(resumed.runId, 'train_loss')).map((m) => m.step).sort((x, y) => x - y),
    ).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    await client.close();
  });
});
