import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { request } from 'undici';
import { loadConfig } from '../../src/config';
import { MlflowApiError, MlflowClient, withRun } from '../../src/mlflow';
import { stackEnv } from '../../src/stack/team-stack';
import { TS_NODE } from '../helpers/cli';
import { studySummary } from '../helpers/tune';

// The team stack for real: MLflow on PostgreSQL with its artifacts in SeaweedFS' S3 and basic-auth on.
const cfg = loadConfig();
const stack = inject('stack');
const env = stackEnv(stack);
const url = env.client.MLFLOW_TRACKING_URI!;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stack-test-'));
const uniq = Date.now();
const admin = new MlflowClient({
  trackingUri: url,
  journalDir: path.join(tmp, 'j'),
  log: () => {},
  headers: basic(stack.admin.username, stack.admin.password),
});
afterAll(async () => {
  await admin.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function basic(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

/** The keys of the objects in the stack's bucket, read with boto3 (the S3 client MLflow itself uses). */
async function bucketKeys(): Promise<string[]> {
  const script = [
    'import boto3, json, os, sys',
    "s3 = boto3.client('s3', endpoint_url=os.environ['MLFLOW_S3_ENDPOINT_URL'], region_name='us-east-1')",
    "keys = [o['Key'] for p in s3.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[1]) for o in p.get('Contents', [])]",
    'print(json.dumps(keys))',
  ].join('\n');
  const { stdout } = await promisify(execFile)(path.join(cfg.venv, 'bin', 'python'), ['-c', script, stack.bucket], {
    env: { ...process.env, ...env.server },
  });
  return JSON.parse(stdout) as string[];
}

describe('team stack: MLflow on PostgreSQL + S3 (SeaweedFS) with basic-auth', () => {
  it('keeps runs in PostgreSQL and writes artifacts logged through the project client as S3 objects', async () => {
    const file = path.join(tmp, 'report.html');
    fs.writeFileSync(file, `<p>${uniq}</p>`);
    const runId = await withRun(admin, { experiment: `stack-${uniq}` }, async (run) => {
      await run.logMetrics({ val_macro_f1: 0.9 });
      await run.logArtifact(file, 'eval');
      return run.runId;
    });
    const run = await admin.getRun(runId);
    expect(run.info.status).toBe('FINISHED');
    expect(run.data.metrics.find((m) => m.key === 'val_macro_f1')?.value).toBe(0.9);
    expect(await bucketKeys()).toContain(`artifacts/${run.info.experiment_id}/${runId}/artifacts/eval/report.html`);
    // And back through the server's proxy.
    const back = await admin.downloadArtifacts(runId, 'eval/report.html', path.join(tmp, 'dl'));
    expect(fs.readFileSync(back, 'utf8')).toBe(`<p>${uniq}</p>`);
  });

  it('refuses requests without credentials, and MLFLOW_TRACKING_USERNAME/PASSWORD sign the client in', async () => {
    const anonymous = await request(`${url}/api/2.0/mlflow/experiments/search`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    await anonymous.body.dump();
    expect(anonymous.statusCode).toBe(401);
    const saved = { ...process.env };
    Object.assign(process.env, env.client);
    delete process.env.MLFLOW_TRACKING_TOKEN;
    const fromEnv = MlflowClient.fromEnv({ journalDir: path.join(tmp, 'j2'), log: () => {} });
    process.env = saved;
    try {
      expect((await fromEnv.getOrCreateExperiment(`stack-env-${uniq}`)).name).toBe(`stack-env-${uniq}`);
    } finally {
      await fromEnv.close();
    }
  });

  it("the replicas' account reads the registry but cannot move @champion; the session key is not the admin password", async () => {
    const name = `stack-serving-${uniq}`;
    const runId = await withRun(admin, { experiment: name }, async (run) => {
      await admin.logText(run.runId, 'artifact_path: model\n', 'model/MLmodel');
      return run.runId;
    });
    await admin.getOrCreateRegisteredModel(name);
    const mv = await admin.createModelVersion({ name, source: `runs:/${runId}/model`, runId });
    await admin.setAlias(name, 'champion', mv.version);
    const env = stackEnv(stack);
    expect(env.server.MLFLOW_FLASK_SERVER_SECRET_KEY).not.toBe(stack.admin.password);
    const serving = new MlflowClient({
      trackingUri: url,
      journalDir: path.join(tmp, 'j-serving'),
      log: () => {},
      headers: basic(env.serving.MLFLOW_TRACKING_USERNAME!, env.serving.MLFLOW_TRACKING_PASSWORD!),
      retry: { retries: 0 },
    });
    try {
      expect((await serving.getModelVersionByAlias(name, 'champion'))?.version).toBe(mv.version);
      const err = await serving.setAlias(name, 'champion', mv.version).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MlflowApiError);
      expect((err as MlflowApiError).status).toBe(403);
    } finally {
      await serving.close();
    }
  });

  it('a user with READ on an experiment gets a clear permission error when logging to it', async () => {
    const reader = { username: `reader${uniq}`, password: `pw-${uniq}-Aa1!` };
    const post = async (route: string, body: unknown) => {
      const r = await request(`${url}${route}`, {
        method: 'POST',
        headers: { ...basic(stack.admin.username, stack.admin.password), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await r.body.text();
      expect(r.statusCode, `${route}: ${text}`).toBe(200);
    };
    await post('/api/2.0/mlflow/users/create', reader);
    const exp = await admin.getOrCreateExperiment(`stack-readonly-${uniq}`);
    // MLflow 3.17's per-user grant (RBAC): READ on this one experiment.
    await post('/api/3.0/mlflow/users/permissions/grant', {
      username: reader.username,
      resource_type: 'experiment',
      resource_id: exp.experiment_id,
      permission: 'READ',
    });
    const client = new MlflowClient({
      trackingUri: url,
      journalDir: path.join(tmp, 'j3'),
      log: () => {},
      headers: basic(reader.username, reader.password),
      retry: { retries: 0 },
    });
    try {
      expect((await client.getExperiment(exp.experiment_id)).name).toBe(exp.name); // reading is allowed
      const err = await client.createRun({ experimentId: exp.experiment_id, runName: 'not allowed' }).catch((e) => e);
      expect(err).toBeInstanceOf(MlflowApiError);
      expect((err as MlflowApiError).status).toBe(403);
      expect(String((err as Error).message)).toMatch(/permission/i);
    } finally {
      await client.close();
    }
  });

  it('keeps Optuna studies in the same PostgreSQL server: make tune against the stack', async () => {
    const storage = env.client.OPTUNA_STORAGE!;
    expect(storage).toMatch(/^postgresql\+psycopg2:\/\/mlflow:[^@]+@127\.0\.0\.1:\d+\/optuna$/);
    const run = (script: string, args: string[]) =>
      promisify(execFile)(TS_NODE, [path.join(cfg.root, 'scripts', script), ...args], {
        cwd: cfg.root,
        env: { ...process.env, ...env.client },
      });
    const data = path.join(tmp, 'processed');
    await run('prepare-data.ts', ['--task', 'support-category', '--max-per-split', '150', '--processed-dir', data]);
    const study = `stack-study-${uniq}`;
    const { stdout } = await run('tune.ts', [
      '--task',
      'support-category',
      '--model',
      'tfidf',
      '--trials',
      '2',
      '--study',
      study,
      '--processed-dir',
      data,
    ]);
    expect(stdout).toMatch(new RegExp(`study ${study}: \\d complete, \\d pruned, 0 failed`));
    // The trials are rows in PostgreSQL, read back through Optuna; the parent run is on the stack's MLflow.
    const summary = await studySummary(storage, study);
    expect(summary.counts.complete + summary.counts.pruned).toBe(2);
    const parentId = String(summary.user_attrs.mlflow_parent_run_id);
    const parent = await admin.getRun(parentId);
    expect(parent.data.tags).toContainEqual({ key: 'optuna.study_name', value: study });
    expect(parent.data.tags.find((t) => t.key === 'optuna.storage')?.value).toMatch(
      /^postgresql\+psycopg2:\/\/mlflow:\*\*\*@/,
    );
  }, 300_000);
});
