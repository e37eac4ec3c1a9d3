import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, mlflowServerConfig } from '../../src/config';
import { MlflowClient } from '../../src/mlflow';
import { freePort } from '../../src/io/server-process';
import { startServer, stopServer } from '../../src/mlflow/server';
import { request } from 'undici';
import { registerBaselines } from '../helpers/registry';
import { startServeProcess } from '../helpers/serve-process';

// Its own server, stopped while make serve starts (a bar of 10 s: it runs with the timed tests) and started again.
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-outage-'));
const mlflowBin = path.join(loadConfig().venv, 'bin', 'mlflow');
let cfg: ReturnType<typeof mlflowServerConfig>;

afterAll(async () => {
  if (cfg) await stopServer(cfg);
  fs.rmSync(stateDir, { recursive: true, force: true });
});

describe('a dead MLflow server stops no server', () => {
  it('make serve starts on the cached champion while MLflow is down, says so, and follows @champion when it returns', async () => {
    cfg = mlflowServerConfig(stateDir, { port: await freePort() });
    await startServer(cfg, { mlflowBin });
    const client = new MlflowClient({
      trackingUri: cfg.trackingUri,
      journalDir: path.join(stateDir, 'j3'),
      log: () => {},
    });
    const name = `outage-serve-${Date.now()}`;
    const [v1, v2] = await registerBaselines(client, name, 'conversation-churn', [3, 6], 200);
    await client.setAlias(name, 'champion', v1!.version);
    const token = 'outage-serving-token-0123';
    const env = { ...process.env, MLFLOW_TRACKING_URI: cfg.trackingUri, SERVE_TOKENS: token };
    const args = ['--task', 'conversation-churn', '--model', name, '--watch', '1'];
    args.push('--cache-dir', path.join(stateDir, 'cache'), '--log-dir', path.join(stateDir, 'serving'));
    const health = async (url: string) =>
      (await (await request(`${url}/health`)).body.json()) as {
        model: { version: string };
        registry: { reachable: boolean; served_from: string; unreachable_since?: string };
      };

    // Served once while the registry is up: the cache now holds v1, recorded as @champion's last served version.
    const first = await startServeProcess(args, env);
    first.server.kill('SIGTERM');
    await new Promise((r) => first.server.once('exit', r));

    await stopServer(cfg);
    const t0 = Date.now();
    const { url, server } = await startServeProcess(args, env);
    try {
      expect(Date.now() - t0).toBeLessThan(10_000);
      const down = await health(url);
      expect(down.model.version).toBe(v1!.version);
      expect(down.registry).toMatchObject({ reachable: false, served_from: 'cache' });
      expect(down.registry.unreachable_since).toBeDefined();
      const metrics = await request(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      expect(await metrics.body.text()).toMatch(/registry_reachable\{served_from="cache"\} 0/);

      await startServer(cfg, { mlflowBin });
      await client.setAlias(name, 'champion', v2!.version);
      let now = await health(url);
      for (let i = 0; i < 60 && now.model.version !== v2!.version; i++) {
        await new Promise((r) => setTimeout(r, 500));
        now = await health(url);
      }
      expect(now.model.version).toBe(v2!.version);
      expect(now.registry).toEqual({ reachable: true, served_from: 'registry' });
    } finally {
      server.kill('SIGTERM');
      await client.close();
    }
  });
});
