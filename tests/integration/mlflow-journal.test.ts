import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, mlflowServerConfig } from '../../src/config';
import { MlflowClient, withRun } from '../../src/mlflow';
import { freePort } from '../../src/io/server-process';
import { startServer, stopServer } from '../../src/mlflow/server';

// Its own server, killed and restarted in the middle of a "training loop". No bar here is a time, so this file runs
// with the other integration tests; make serve's start on a dead registry (a 10 s bar) is mlflow-outage.test.ts's.
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-journal-'));
const mlflowBin = path.join(loadConfig().venv, 'bin', 'mlflow');
let cfg: ReturnType<typeof mlflowServerConfig>;

afterAll(async () => {
  if (cfg) await stopServer(cfg);
  fs.rmSync(stateDir, { recursive: true, force: true });
});

describe('a dead MLflow server loses nothing', () => {
  it('journals metrics while the server is down and replays them once, in order, when it returns', async () => {
    cfg = mlflowServerConfig(stateDir, { port: await freePort() });
    await startServer(cfg, { mlflowBin });
    const messages: string[] = [];
    const client = new MlflowClient({
      trackingUri: cfg.trackingUri,
      journalDir: path.join(stateDir, 'journal'),
      reconnectIntervalMs: 500,
      retry: { retries: 2, baseDelayMs: 50 },
      log: (m) => messages.push(m),
    });
    const steps = 60;
    const runId = await withRun(client, { experiment: 'outage', runName: 'killed-mid-training' }, async (run) => {
      await run.logParams({ epochs: 1, batch_size: 16 });
      for (let step = 0; step < steps; step++) {
        if (step === 20) await stopServer(cfg); // the server dies
        if (step === 40) await startServer(cfg, { mlflowBin }); // and comes back (same SQLite store)
        await run.logMetrics({ train_loss: 2 / (step + 1), lr: 1e-4 * (1 - step / steps) }, step);
        if (step >= 20 && step < 40) expect(client.journal.hasPending(run.runId)).toBe(true);
      }
      return run.runId;
    });
    expect(messages.some((m) => m.includes('unreachable'))).toBe(true);
    expect(messages.some((m) => /replayed \d+ journaled/.test(m))).toBe(true);
    expect(client.journal.hasPending(runId)).toBe(false);

    for (const key of ['train_loss', 'lr']) {
      const history = await client.getMetricHistory(runId, key);
      const stepsSeen = history.map((m) => m.step).sort((a, b) => a - b);
      expect(stepsSeen).toEqual(Array.from({ length: steps }, (_, i) => i)); // every step, exactly once
    }
    const run = await client.getRun(runId);
    expect(run.info.status).toBe('FINISHED');
    expect(run.data.params).toHaveLength(2);
    await client.close();
  });

  it('resumes an interrupted run by id: replays what the crashed process journaled, then continues', async () => {
    const client = new MlflowClient({
      trackingUri: cfg.trackingUri,
      journalDir: path.join(stateDir, 'journal2'),
      log: () => {},
    });
    const exp = await client.getOrCreateExperiment('outage');
    const run = await client.createRun({ experimentId: exp.experiment_id, runName: 'crashed' });
    await client.logMetrics(run.info.run_id, { loss: 1 }, 0);
    // The "crashed" process had journaled step 1 while the server was away.
    client.journal.append(run.info.run_id, {
      op: 'log-batch',
      body: { metrics: [{ key: 'loss', value: 0.5, step: 1, timestamp: Date.now() }], params: [], tags: [] },
    });

    const fresh = new MlflowClient({
      trackingUri: cfg.trackingUri,
      journalDir: path.join(stateDir, 'journal2'),
      log: () => {},
    });
    await withRun(fresh, { experiment: 'outage', resumeRunId: run.info.run_id }, async (r) => {
      await r.logMetrics({ loss: 0.25 }, 2);
    });
    const history = await fresh.getMetricHistory(run.info.run_id, 'loss');
    expect(history.map((m) => [m.step, m.value]).sort()).toEqual([
      [0, 1],
      [1, 0.5],
      [2, 0.25],
    ]);
    expect((await fresh.getRun(run.info.run_id)).info.status).toBe('FINISHED');
    await client.close();
    await fresh.close();
  });
});
