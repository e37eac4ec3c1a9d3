/**
 * Starts the team stack (PostgreSQL, SeaweedFS S3, MLflow with basic-auth) in a temp folder for the
 * stack tests, and stops it after. Set MLFLOW_TEST_STACK_DIR to reuse a running one (make test-stack).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../src/config';
import { stackConfig, stackDown, stackUp, type StackConfig } from '../../src/stack/team-stack';

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackConfig;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const reuse = process.env.MLFLOW_TEST_STACK_DIR || undefined;
  const dir = reuse ?? fs.mkdtempSync(path.join(os.tmpdir(), 'stack-it-'));
  const stack = await stackConfig(dir);
  const up = await stackUp(stack, loadConfig().venv);
  process.stdout.write(
    `[stack] MLflow ${up.trackingUri} on PostgreSQL :${stack.pgPort} + S3 :${stack.s3Port}, basic-auth ` +
      `(up in ${((up.startupMs.postgres + up.startupMs.s3 + up.startupMs.mlflow) / 1000).toFixed(1)} s)\n`,
  );
  project.provide('stack', stack);
  return async () => {
    if (reuse) return;
    await stackDown(stack);
    fs.rmSync(dir, { recursive: true, force: true });
  };
}
