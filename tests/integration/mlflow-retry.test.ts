import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MlflowClient } from '../../src/mlflow';

// A proxy in front of the real server that, for chosen endpoints, lets the first request through,
// waits for the server's answer (so the server has processed it) and then drops the connection
// instead of answering: the client sees a network error after the fact.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-retry-'));
const dropFirst = new Set<string>();
const dropped: string[] = [];
let proxy: http.Server;
let proxyUrl = '';

beforeAll(async () => {
  const upstream = new URL(inject('mlflowUri'));
  proxy = http.createServer((req, res) => {
    const endpoint = (req.url ?? '').split('?')[0]!;
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
      (up) => {
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          if (req.method === 'POST' && dropFirst.delete(endpoint)) {
            dropped.push(endpoint);
            req.socket.destroy(); // processed upstream, answer lost
            return;
          }
          res.writeHead(up.statusCode ?? 502, up.headers);
          res.end(Buffer.concat(chunks));
        });
      },
    );
    req.pipe(forward);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => proxy.close(() => r()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('retrying calls that create things', () => {
  it('a run whose create response was lost exists once; so does a model version', async () => {
    const client = new MlflowClient({
      trackingUri: proxyUrl,
      journalDir: path.join(tmp, 'journal'),
      log: () => {},
      retry: { retries: 3, baseDelayMs: 50, maxDelayMs: 200 },
    });
    const direct = new MlflowClient({
      trackingUri: inject('mlflowUri'),
      journalDir: path.join(tmp, 'journal2'),
      log: () => {},
    });
    try {
      const exp = await client.getOrCreateExperiment(`retry-${Date.now()}`);
      dropFirst.add('/api/2.0/mlflow/runs/create');
      const run = await client.createRun({ experimentId: exp.experiment_id, runName: 'once' });
      expect(dropped).toEqual(['/api/2.0/mlflow/runs/create']);
      const runs = await direct.searchAllRuns({ experimentIds: [exp.experiment_id] });
      expect(runs.map((r) => r.info.run_id)).toEqual([run.info.run_id]);

      const name = `retry-model-${Date.now()}`;
      dropFirst.add('/api/2.0/mlflow/registered-models/create');
      await client.getOrCreateRegisteredModel(name);
      dropFirst.add('/api/2.0/mlflow/model-versions/create');
      const mv = await client.createModelVersion({
        name,
        source: `${run.info.artifact_uri}/model`,
        runId: run.info.run_id,
      });
      expect(dropped).toEqual([
        '/api/2.0/mlflow/runs/create',
        '/api/2.0/mlflow/registered-models/create',
        '/api/2.0/mlflow/model-versions/create',
      ]);
      const versions = await direct.searchModelVersions(`name = '${name}'`);
      expect(versions.map((v) => v.version)).toEqual([mv.version]);
      expect(mv.version).toBe('1');
    } finally {
      await client.close();
      await direct.close();
    }
  });
});
