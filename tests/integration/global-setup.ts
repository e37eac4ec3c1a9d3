/**
 * Starts one real `mlflow server` (SQLite + proxied artifacts in a temp folder, free port) for the
 * integration tests and stops it after. Set MLFLOW_TEST_TRACKING_URI to reuse a running server instead.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadConfig, mlflowServerConfig } from '../../src/config';
import { freePort, isHealthy } from '../../src/io/server-process';
import { startServer, stopServer } from '../../src/mlflow/server';

declare module 'vitest' {
  export interface ProvidedContext {
    mlflowUri: string;
    mlflowStateDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // make test-stack runs these files inside `scripts/stack.ts run`, which sets the stack's MLFLOW_TRACKING_URI.
  const reuse =
    process.env.MLFLOW_TEST_TRACKING_URI ??
    (process.env.MLFLOW_TEST_STACK_DIR ? process.env.MLFLOW_TRACKING_URI : undefined);
  if (reuse) {
    if (!(await isHealthy(reuse))) throw new Error(`MLFLOW_TEST_TRACKING_URI=${reuse} does not answer /health`);
    project.provide('mlflowUri', reuse);
    project.provide('mlflowStateDir', '');
    return async () => {};
  }
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-it-'));
  const cfg = mlflowServerConfig(stateDir, { port: await freePort() });
  const { venv } = loadConfig();
  const started = await startServer(cfg, { mlflowBin: path.join(venv, 'bin', 'mlflow') });
  process.stdout.write(
    `[integration] mlflow server ${started.url} up in ${(started.startupMs / 1000).toFixed(1)}s (state ${stateDir})\n`,
  );
  project.provide('mlflowUri', started.url);
  project.provide('mlflowStateDir', stateDir);
  return async () => {
    await stopServer(cfg);
    fs.rmSync(stateDir, { recursive: true, force: true });
  };
}
