import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { request } from 'undici';
import { loadConfig } from '../../src/config';
import { prepareTask } from '../../src/data/prepare';
import { TASKS } from '../../src/data/tasks';
import { OrtEncoder } from '../../src/engine/encoder-onnx';
import { TextTokenizer } from '../../src/features/tokenize';
import { BERT_FLAVOR, saveBertModel } from '../../src/kinds/bert/model';
import { runFrozenEncoder } from '../../src/kinds/frozen-encoder/train';
import { addPythonFlavor } from '../../src/kinds/pyfunc';
import { classifierSignature } from '../../src/kinds/types';
import { loadBertPredictor } from '../../src/kinds/bert/model';
import { fitAndSaveScope } from '../../src/kinds/scope/fit';
import { MlflowClient, withRun } from '../../src/mlflow';
import { freePort } from '../../src/io/server-process';
import { initialParams } from '../../src/train/finetune';
import { registerBaselines } from '../helpers/registry';
import { pyfuncPredict } from '../helpers/pyfunc';
import { startServeProcess } from '../helpers/serve-process';
import { onTeamStack } from '../helpers/team-stack-run';

// The python_function flavor: a model this project registered loads with mlflow.pyfunc.load_model in
// the project's venv and with `mlflow models serve`, and answers like `make serve` (same labels,
// probabilities within 1e-4) on 100 test texts, for each text kind that carries the flavor.
const cfg = loadConfig();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pyfunc-'));
const spec = TASKS['support-intent'];
const uniq = Date.now();
const children: ChildProcess[] = [];
let client: MlflowClient;
let texts: string[];
let env: NodeJS.ProcessEnv;

interface Answer {
  label: string;
  top_label: string;
  confidence: number;
  in_scope: boolean;
  probabilities: Record<string, number>;
}

beforeAll(async () => {
  client = new MlflowClient({ trackingUri: inject('mlflowUri'), journalDir: path.join(tmp, 'journal'), log: () => {} });
  // The venv's bin first, as `make pyfunc-serve` runs it: mlflow models serve starts the venv's uvicorn.
  env = {
    ...process.env,
    PATH: `${path.join(cfg.root, '.venv', 'bin')}:${process.env.PATH ?? ''}`,
    MLFLOW_TRACKING_URI: inject('mlflowUri'),
    SERVE_TOKENS: 'test-serving-token-0123',
  };
  // Prepared (cleaned) test texts: the server cleans again, which leaves them as they are.
  texts = prepareTask(spec, cfg.paths.dataRaw, { maxPerSplit: 100 })
    .splits.test.slice(0, 100)
    .map((e) => e.text);
  expect(texts).toHaveLength(100);
});
afterAll(async () => {
  for (const c of children) c.kill('SIGTERM');
  await client.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** `make serve` answers for `texts`, from a real server process on `models:/<name>@champion`. */
async function served(name: string): Promise<Answer[]> {
  const { url, server } = await startServeProcess(
    [
      '--task',
      'support-intent',
      '--model',
      name,
      '--cache-dir',
      path.join(tmp, 'cache'),
      '--log-dir',
      path.join(tmp, 'log'),
    ],
    env,
  );
  children.push(server);
  const r = await request(`${url}/predict`, {
    method: 'POST',
    headers: { authorization: 'Bearer test-serving-token-0123', 'content-type': 'application/json' },
    body: JSON.stringify({ texts }),
  });
  const body = (await r.body.json()) as { predictions: Answer[] };
  expect(r.statusCode).toBe(200);
  server.kill('SIGTERM');
  return body.predictions;
}

/** Registers the model run `runId` logged as `name`@champion, and returns `make serve`'s answers from it. */
async function servedChampion(name: string, runId: string): Promise<Answer[]> {
  await client.getOrCreateRegisteredModel(name);
  const source = (await client.runModelSource(await client.getRun(runId)))!;
  const v = await client.createModelVersion({ name, source, runId });
  await client.setAlias(name, 'champion', v.version);
  return served(name);
}

/**
 * Same labels, top labels and in-scope verdicts, calibrated probabilities within 1e-4 (the server
 * rounds to 6 decimals). Returns how many texts were out of scope.
 */
function expectSameAnswers(py: Record<string, string | number | boolean>[], ts: Answer[]): number {
  expect(py).toHaveLength(ts.length);
  let maxDiff = 0;
  py.forEach((row, i) => {
    expect(row.label, `text ${i}: ${texts[i]}`).toBe(ts[i]!.label);
    expect(row.top_label, `text ${i}: ${texts[i]}`).toBe(ts[i]!.top_label);
    expect(row.in_scope, `text ${i}: ${texts[i]}`).toBe(ts[i]!.in_scope);
    maxDiff = Math.max(maxDiff, Math.abs(Number(row.confidence) - ts[i]!.confidence));
    for (const [label, p] of Object.entries(ts[i]!.probabilities))
      maxDiff = Math.max(maxDiff, Math.abs(Number(row[`p(${label})`]) - p));
  });
  const out = ts.filter((a) => !a.in_scope).length;
  console.log(
    `[pyfunc] ${py.length} texts (${out} out of scope), labels equal, max |p_python - p_ts| = ${maxDiff.toExponential(2)}`,
  );
  expect(maxDiff).toBeLessThan(1e-4);
  return out;
}

describe('python_function flavor', () => {
  it('a registered TF-IDF baseline: pyfunc.load_model and `mlflow models serve` (not on the stack) answer like make serve', async () => {
    const name = `pyfunc-tfidf-${uniq}`;
    const [v] = await registerBaselines(client, name, 'support-intent', [10], 600);
    await client.setAlias(name, 'champion', v!.version);
    const ts = await served(name);
    expectSameAnswers(await pyfuncPredict(`models:/${name}@champion`, { text: texts }, { env, cwd: tmp }), ts);
    // On the team stack, pyfunc.load_model above has read the model from S3 through basic-auth; mlflow models
    // serve loads it the same way, so the stack pass stops here (it is the slowest minute of that pass).
    if (onTeamStack) return;

    // mlflow models serve, with the project's venv as the environment.
    const port = await freePort();
    const mlflowServe = spawn(
      path.join(cfg.root, '.venv', 'bin', 'mlflow'),
      [
        'models',
        'serve',
        '-m',
        `models:/${name}@champion`,
        '--env-manager',
        'local',
        '-p',
        String(port),
        '-h',
        '127.0.0.1',
      ],
      { env, cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    children.push(mlflowServe);
    let stderr = '';
    mlflowServe.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const url = `http://127.0.0.1:${port}`;
    let up = false;
    for (let i = 0; i < 240 && !up; i++) {
      up = await request(`${url}/ping`)
        .then((r) => r.body.dump().then(() => r.statusCode === 200))
        .catch(() => false);
      if (!up) await new Promise((r) => setTimeout(r, 500));
    }
    expect(up, `mlflow models serve answered /ping within 120 s; its stderr:\n${stderr}`).toBe(true);
    const r = await request(`${url}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dataframe_split: { columns: ['text'], data: texts.map((t) => [t]) } }),
    });
    const body = (await r.body.json()) as { predictions: Record<string, string | number | boolean>[] };
    expect(r.statusCode).toBe(200);
    expectSameAnswers(body.predictions, ts);
    mlflowServe.kill('SIGTERM');
  }, 300_000);

  it.skipIf(onTeamStack)(
    'a deployment overrides the threshold and fallback label (SCOPE_THRESHOLD, SCOPE_FALLBACK_LABEL): answers, /version and /metrics follow',
    async () => {
      const name = `pyfunc-tfidf-${uniq}`; // registered by the test above
      const get = async (url: string, route: string) => {
        const r = await request(`${url}${route}`, { headers: { authorization: 'Bearer test-serving-token-0123' } });
        expect(r.statusCode).toBe(200);
        return r.body.text();
      };
      const predict = async (url: string) => {
        const r = await request(`${url}/predict`, {
          method: 'POST',
          headers: { authorization: 'Bearer test-serving-token-0123', 'content-type': 'application/json' },
          body: JSON.stringify({ texts }),
        });
        expect(r.statusCode).toBe(200);
        return ((await r.body.json()) as { predictions: Answer[] }).predictions;
      };
      const start = async (extra: NodeJS.ProcessEnv) => {
        const s = await startServeProcess(
          ['--task', 'support-intent', '--model', name, '--cache-dir', path.join(tmp, 'cache')],
          { ...env, ...extra },
        );
        children.push(s.server);
        return s;
      };
      // MSP is the calibrated top probability, so each verdict can be checked against `confidence` (6 decimals).
      const judgedBy = (answers: Answer[], threshold: number, fallback: string) => {
        for (const a of answers.filter((x) => Math.abs(x.confidence - threshold) > 1e-6)) {
          expect(a.in_scope).toBe(a.confidence >= threshold);
          expect(a.label).toBe(a.in_scope ? a.top_label : fallback);
        }
      };

      const plain = await start({});
      const model = JSON.parse(await get(plain.url, '/version')).scope;
      expect(model).toMatchObject({ score: 'msp', overridden: false, fallback_label: 'out_of_scope' });
      expect(model.threshold).toBe(model.model_threshold);
      const before = await predict(plain.url);
      judgedBy(before, model.threshold, 'out_of_scope');
      plain.server.kill('SIGTERM');

      // The median confidence as the deployment's threshold: about half the texts go to a human.
      const sorted = before.map((a) => a.confidence).sort((a, b) => a - b);
      const threshold = sorted[Math.floor(sorted.length / 2)]!;
      expect(threshold).toBeGreaterThan(model.threshold);
      const over = await start({ SCOPE_THRESHOLD: String(threshold), SCOPE_FALLBACK_LABEL: 'human_review' });
      const version = JSON.parse(await get(over.url, '/version')).scope;
      expect(version).toMatchObject({
        threshold,
        model_threshold: model.threshold,
        overridden: true,
        fallback_label: 'human_review',
      });
      const after = await predict(over.url);
      judgedBy(after, threshold, 'human_review');
      const out = after.filter((a) => !a.in_scope).length;
      expect(out).toBeGreaterThan(before.filter((a) => !a.in_scope).length);
      expect(out).toBeGreaterThanOrEqual(Math.floor(texts.length / 2) - 1);
      const metrics = await get(over.url, '/metrics');
      expect(metrics).toMatch(new RegExp(`scope_threshold\\{[^}]*source="override"[^}]*\\} ${threshold}\\b`));
      expect(metrics).toMatch(new RegExp(`predictions_scope_total\\{[^}]*in_scope="false"[^}]*\\} ${out}\\b`));
      over.server.kill('SIGTERM');
    },
    300_000,
  );

  // Energy here (TF-IDF's test has MSP, the frozen encoder's Mahalanobis) and the served BERT default,
  // mahalanobis+knn (its own encoder folder and neighbour bank): every score in both runtimes.
  it.skipIf(onTeamStack).each(['energy', 'mahalanobis+knn'] as const)(
    'a registered BERT classifier (the pretrained checkpoint, ONNX graph, %s score): pyfunc answers like make serve',
    async (score) => {
      const name = `pyfunc-bert-${score.replace('+', '-')}-${uniq}`;
      const checkpoint = path.join(cfg.paths.pretrained, 'all-MiniLM-L6-v2');
      const prepared = prepareTask(spec, cfg.paths.dataRaw, { maxPerSplit: 60 });
      const labelMap = prepared.labelMap;
      const { config, params } = initialParams(checkpoint, 'mean', labelMap.labels.length, 7);
      const dir = path.join(tmp, `bert-${score}`);
      saveBertModel(dir, checkpoint, config, params, { pooling: 'mean', maxLength: 64, labelMap }, false);
      const splits = { ...prepared.splits, labelMap };
      // Recall 0.7 on 60 validation texts: a good share of texts fall out of scope, so the verdicts are
      // compared on both sides of the threshold.
      const scope = await fitAndSaveScope(
        dir,
        { kind: 'bert-finetune', load: (d) => loadBertPredictor(d, {}) },
        splits,
        undefined,
        {
          score,
          recall: 0.7,
          neighbourCheckpoint: checkpoint,
        },
      );
      expect(scope.score).toBe(score);
      const runId = await withRun(client, { experiment: name, runName: 'bert' }, async (run) => {
        await run.logModel(dir, {
          artifactPath: 'model',
          modelType: 'bert-finetune',
          flavors: {
            [BERT_FLAVOR]: {
              hf: 'hf',
              onnx: 'model.onnx',
              label_map: 'label_map.json',
              pooling: 'mean',
              max_length: 64,
            },
            python_function: addPythonFlavor(dir, {
              kind: 'bert-finetune',
              hf: 'hf',
              onnx: 'model.onnx',
              max_length: 64,
              label_map: 'label_map.json',
            }),
          },
          signature: classifierSignature(labelMap.labels),
        });
        return run.runId;
      });
      const ts = await servedChampion(name, runId);
      // A random head over real encoder features still spreads texts over several labels.
      expect(new Set(ts.map((a) => a.top_label)).size).toBeGreaterThan(1);
      const out = expectSameAnswers(
        await pyfuncPredict(`models:/${name}@champion`, { text: texts }, { env, cwd: tmp }),
        ts,
      );
      expect(out).toBeGreaterThanOrEqual(10);
    },
    300_000,
  );

  it.skipIf(onTeamStack)(
    'a registered frozen encoder + logistic regression (the code path of make baseline-frozen): pyfunc answers like make serve',
    async () => {
      const name = `pyfunc-frozen-${uniq}`;
      const checkpoint = path.join(cfg.paths.pretrained, 'all-MiniLM-L6-v2');
      const p = prepareTask(spec, cfg.paths.dataRaw, { maxPerSplit: 150 });
      const data = {
        train: p.splits.train,
        validation: p.splits.validation,
        test: p.splits.test,
        labelMap: p.labelMap,
      };
      const encoder = await OrtEncoder.fromCheckpoint(checkpoint);
      const runId = await withRun(client, { experiment: name, runName: 'frozen' }, async (run) => {
        await runFrozenEncoder(
          spec,
          data,
          {
            tokenizer: await TextTokenizer.fromDir(checkpoint),
            encoder,
            checkpointName: 'all-MiniLM-L6-v2',
            checkpointDir: checkpoint,
            maxLength: 64,
            epochs: 20,
          },
          run,
        );
        return run.runId;
      });
      await encoder.release();
      const ts = await servedChampion(name, runId);
      expect(new Set(ts.map((a) => a.label)).size).toBeGreaterThan(5);
      expectSameAnswers(await pyfuncPredict(`models:/${name}@champion`, { text: texts }, { env, cwd: tmp }), ts);
    },
    300_000,
  );
});
