import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { request } from 'undici';
import { loadConfig } from '../../src/config';
import { prepareTask } from '../../src/data/prepare';
import { TASKS } from '../../src/data/tasks';
import { BERT_FLAVOR, saveBertModel } from '../../src/kinds/bert/model';
import { loadBertPredictor } from '../../src/kinds/bert/model';
import { fitAndSaveScope } from '../../src/kinds/scope/fit';
import { MlflowClient, withRun } from '../../src/mlflow';
import { freePort } from '../../src/io/server-process';
import { initialParams } from '../../src/train/finetune';

// 50 hot swaps of a real BERT-size model (all-MiniLM-L6-v2 graph, ~90 MB of weights per ONNX Runtime
// session) in a real `make serve` process: without releasing replaced sessions, memory grows by the
// model's size on every swap. The model carries the mahalanobis+knn scope BERT models are saved with, so
// each swap also loads (and must release) the scope encoder and the neighbour index.
const cfg = loadConfig();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'serve-memory-'));
const name = `support-category-memory-${Date.now()}`;
const checkpoint = path.join(cfg.paths.pretrained, 'all-MiniLM-L6-v2');
const SWAPS = 50;
let client: MlflowClient;
let server: ChildProcess | undefined;
const versions: string[] = [];

beforeAll(async () => {
  client = new MlflowClient({ trackingUri: inject('mlflowUri'), journalDir: path.join(tmp, 'journal'), log: () => {} });
  const prepared = prepareTask(TASKS['support-category'], cfg.paths.dataRaw, { maxPerSplit: 60 });
  const labelMap = prepared.labelMap;
  const { config, params } = initialParams(checkpoint, 'mean', labelMap.labels.length, 42);
  const modelDir = path.join(tmp, 'model');
  saveBertModel(modelDir, checkpoint, config, params, { pooling: 'mean', maxLength: 64, labelMap }, false);
  const scope = await fitAndSaveScope(
    modelDir,
    { kind: 'bert-finetune', load: (d) => loadBertPredictor(d, {}) },
    { ...prepared.splits, labelMap },
    undefined,
    {
      neighbourCheckpoint: checkpoint,
    },
  );
  expect(scope.score).toBe('mahalanobis+knn');
  await client.getOrCreateRegisteredModel(name);
  for (const runName of ['bert-a', 'bert-b']) {
    const runId = await withRun(client, { experiment: name, runName }, async (run) => {
      await run.client.logModel(run.runId, modelDir, {
        artifactPath: 'model',
        flavors: {
          [BERT_FLAVOR]: { hf: 'hf', onnx: 'model.onnx', label_map: 'label_map.json', pooling: 'mean', max_length: 64 },
        },
        signature: { inputs: [{ name: 'text', type: 'string' }], outputs: [{ name: 'label', type: 'string' }] },
      });
      return run.runId;
    });
    versions.push(
      (
        await client.createModelVersion({
          name,
          source: (await client.runModelSource(await client.getRun(runId)))!,
          runId,
        })
      ).version,
    );
  }
  await client.setAlias(name, 'champion', versions[0]!);
});
afterAll(async () => {
  server?.kill('SIGTERM');
  await client.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('hot swap memory', () => {
  it(`${SWAPS} alias moves keep the server's RSS within 10% of its value after the first swap`, async () => {
    const port = await freePort();
    server = spawn(
      path.join(cfg.root, 'node_modules/.bin/ts-node'),
      [
        path.join(cfg.root, 'scripts/serve.ts'),
        '--task',
        'support-category',
        '--model',
        name,
        '--port',
        String(port),
        '--watch',
        '0.1',
        '--log-dir',
        path.join(tmp, 'serving'),
        '--cache-dir',
        path.join(tmp, 'cache'),
      ],
      {
        cwd: cfg.root,
        env: { ...process.env, MLFLOW_TRACKING_URI: inject('mlflowUri'), SERVE_TOKENS: 'test-serving-token-0123' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    server.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const url = `http://127.0.0.1:${port}`;
    const headers = { authorization: 'Bearer test-serving-token-0123', 'content-type': 'application/json' };
    const version = async () => {
      const r = await request(`${url}/version`, { headers }).catch(() => undefined);
      return r && r.statusCode === 200
        ? ((await r.body.json()) as { model: { version: string } }).model.version
        : (await r?.body.dump(), undefined);
    };
    const waitFor = async (v: string) => {
      for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50)))
        if ((await version()) === v) return;
      throw new Error(`server did not switch to version ${v}; stderr:\n${stderr}`);
    };
    const predict = async () => {
      const r = await request(`${url}/predict`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          texts: Array.from({ length: 16 }, (_, i) => `my card payment ${i} was declined at the shop`),
        }),
      });
      expect(r.statusCode).toBe(200);
      return ((await r.body.json()) as { model: { version: string } }).model.version;
    };
    await waitFor(versions[0]!);
    const rss: number[] = [];
    for (let swap = 1; swap <= SWAPS; swap++) {
      const target = versions[swap % 2]!;
      await client.setAlias(name, 'champion', target);
      await waitFor(target);
      expect(await predict()).toBe(target);
      // The server's own resident size (make serve runs in a child of the process spawned here).
      const m = await (await request(`${url}/metrics`, { headers })).body.text();
      rss.push(Number(/^process_resident_memory_bytes (\d+)/m.exec(m)![1]));
    }
    const metrics = await (await request(`${url}/metrics`, { headers })).body.text();
    expect(Number(/^model_reloads_total (\d+)/m.exec(metrics)?.[1])).toBe(SWAPS);
    expect(Number(/^model_releases_total (\d+)/m.exec(metrics)?.[1])).toBe(SWAPS);
    const mb = (b: number) => (b / 2 ** 20).toFixed(0);
    process.stdout.write(
      `[serve-memory] every 5: ${rss
        .filter((_, i) => i % 5 === 0)
        .map(mb)
        .join(' ')}\n`,
    );
    process.stdout.write(
      `[serve-memory] RSS after swap 1: ${mb(rss[0]!)} MB, max ${mb(Math.max(...rss))} MB, after swap ${SWAPS}: ${mb(rss.at(-1)!)} MB\n`,
    );
    expect(rss.at(-1)! / rss[0]!).toBeLessThan(1.1);
  });
});
