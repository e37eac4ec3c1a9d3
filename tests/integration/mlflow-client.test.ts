import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MlflowApiError, MlflowClient, MlflowValidationError, readMlmodel, withRun } from '../../src/mlflow';
import { sha256File } from '../../src/io/files';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'client-it-'));
let client: MlflowClient;
const uniq = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;

beforeAll(() => {
  client = new MlflowClient({ trackingUri: inject('mlflowUri'), journalDir: path.join(tmp, 'journal'), log: () => {} });
});
afterAll(async () => {
  await client.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('experiments and runs', () => {
  it('creates an experiment once and finds it by name afterwards', async () => {
    const a = await client.getOrCreateExperiment(`exp-${uniq}`, { team: 'cx' });
    const b = await client.getOrCreateExperiment(`exp-${uniq}`);
    expect(b.experiment_id).toBe(a.experiment_id);
    expect(a.tags).toContainEqual({ key: 'team', value: 'cx' });
    expect(await client.getExperimentByName(`missing-${uniq}`)).toBeUndefined();
  });

  it('withRun sets system tags and ends FINISHED; 5,000 metrics in one call all arrive', async () => {
    const runId = await withRun(
      client,
      { experiment: `exp-${uniq}`, runName: 'bulk', note: 'bulk logging', source: 'notebooks/03_experiments.ipynb' },
      async (run) => {
        await run.logParams({ lr: 3e-5, epochs: 3, model: 'all-MiniLM-L6-v2' });
        const metrics = Array.from({ length: 5000 }, (_, step) => ({
          key: 'train_loss',
          value: 1 / (step + 1),
          step,
          timestamp: 1_700_000_000_000 + step,
        }));
        const r = await client.logBatch(run.runId, { metrics });
        expect(r).toEqual({ sent: 5, journaled: 0 });
        return run.runId;
      },
    );
    const history = await client.getMetricHistory(runId, 'train_loss');
    expect(history).toHaveLength(5000);
    expect(new Set(history.map((m) => m.step)).size).toBe(5000);
    expect(history.find((m) => m.step === 4999)?.value).toBeCloseTo(1 / 5000, 12);
    const run = await client.getRun(runId);
    expect(run.info.status).toBe('FINISHED');
    const tags = Object.fromEntries(run.data.tags.map((t) => [t.key, t.value]));
    expect(tags).toMatchObject({
      'mlflow.runName': 'bulk',
      'mlflow.source.name': 'notebooks/03_experiments.ipynb',
      'mlflow.source.type': 'NOTEBOOK',
      'mlflow.note.content': 'bulk logging',
    });
    expect(tags['mlflow.user']).toBeTruthy();
    expect(tags['mlflow.source.git.commit']).toMatch(/^[0-9a-f]{40}$/); // the tests run inside the project's git checkout
    expect(Object.fromEntries(run.data.params.map((p) => [p.key, p.value]))).toEqual({
      lr: '0.00003',
      epochs: '3',
      model: 'all-MiniLM-L6-v2',
    });
  });

  it('withRun marks a failing run FAILED with the error, and rethrows', async () => {
    let id = '';
    await expect(
      withRun(client, { experiment: `exp-${uniq}`, runName: 'boom' }, async (run) => {
        id = run.runId;
        await run.logMetric('x', 1);
        throw new Error('CUDA out of memory');
      }),
    ).rejects.toThrow('CUDA out of memory');
    const run = await client.getRun(id);
    expect(run.info.status).toBe('FAILED');
    expect(run.data.tags).toContainEqual({ key: 'error.message', value: 'CUDA out of memory' });
  });

  it('searches runs with a filter, ordering and pagination', async () => {
    const exp = await client.getOrCreateExperiment(`search-${uniq}`);
    for (const f1 of [0.7, 0.9, 0.8]) {
      await withRun(client, { experiment: `search-${uniq}`, runName: `f1-${f1}` }, (run) =>
        run.logMetrics({ val_macro_f1: f1 }).then(() => undefined),
      );
    }
    const first = await client.searchRuns({
      experimentIds: [exp.experiment_id],
      filter: 'metrics.val_macro_f1 > 0.75',
      orderBy: ['metrics.val_macro_f1 DESC'],
      maxResults: 1,
    });
    expect(first.runs[0]?.info.run_name).toBe('f1-0.9');
    expect(first.nextPageToken).toBeTruthy();
    const all = await client.searchAllRuns({
      experimentIds: [exp.experiment_id],
      filter: 'metrics.val_macro_f1 > 0.75',
      orderBy: ['metrics.val_macro_f1 DESC'],
      maxResults: 1,
    });
    expect(all.map((r) => r.info.run_name)).toEqual(['f1-0.9', 'f1-0.8']);
  });

  it('records dataset inputs (name, digest, source, schema) with their context', async () => {
    await withRun(client, { experiment: `exp-${uniq}`, runName: 'data' }, async (run) => {
      await run.logInputs([
        {
          context: 'train',
          dataset: {
            name: 'banking77-train',
            digest: 'b06e26ac67551395',
            source_type: 'local',
            source: JSON.stringify({ uri: 'data/raw/banking77/train.csv' }),
            schema: JSON.stringify({ mlflow_colspec: [{ type: 'string', name: 'text' }] }),
          },
        },
      ]);
      const got = await client.getRun(run.runId);
      expect(got.inputs.dataset_inputs).toHaveLength(1);
      expect(got.inputs.dataset_inputs[0]).toMatchObject({
        dataset: { name: 'banking77-train', digest: 'b06e26ac67551395' },
        tags: [{ key: 'mlflow.data.context', value: 'train' }],
      });
    });
  });

  it('gives a clear error naming the field before sending anything', async () => {
    // A client whose server does not exist: validation must fail first, not the connection.
    const offline = new MlflowClient({
      trackingUri: 'http://127.0.0.1:9',
      journalDir: path.join(tmp, 'j2'),
      retry: { retries: 0 },
      log: () => {},
    });
    await expect(offline.logMetric('run', 'bad key!', 1)).rejects.toThrow(MlflowValidationError);
    await expect(offline.logMetric('run', 'loss', Number.NaN)).rejects.toThrow(/"loss".*NaN/);
    await expect(offline.logParams('run', { notes: 'x'.repeat(6001) })).rejects.toThrow(
      /param "notes" value is 6001 characters/,
    );
    expect(fs.existsSync(path.join(tmp, 'j2'))).toBe(false); // nothing journaled either
    await offline.close();
  });

  it('surfaces MLflow error codes as typed errors', async () => {
    const err = await client.getRun('0123456789abcdef0123456789abcdef').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlflowApiError);
    expect((err as MlflowApiError).errorCode).toBe('RESOURCE_DOES_NOT_EXIST');
  });
});

describe('artifacts through the tracking server', () => {
  it('round-trips a 100 MB file byte-identical, streamed', async () => {
    const big = path.join(tmp, 'weights.bin');
    const fd = fs.openSync(big, 'w');
    for (let i = 0; i < 100; i++) fs.writeSync(fd, randomBytes(1 << 20));
    fs.closeSync(fd);
    const expected = await sha256File(big);
    await withRun(client, { experiment: `exp-${uniq}`, runName: 'big-artifact' }, async (run) => {
      const heapBefore = process.memoryUsage().rss;
      expect(await run.logArtifact(big, 'blobs')).toBe('blobs/weights.bin');
      const listing = await client.listArtifacts(run.runId, 'blobs');
      expect(listing).toEqual([{ path: 'blobs/weights.bin', is_dir: false, file_size: 100 * (1 << 20) }]);
      const local = await client.downloadArtifacts(run.runId, 'blobs/weights.bin', path.join(tmp, 'dl'));
      expect(await sha256File(local)).toBe(expected);
      // Streaming: memory must not grow by the file's size (100 MB) during upload + download.
      expect(process.memoryUsage().rss - heapBefore).toBeLessThan(80 * (1 << 20));
    });
  });

  it('uploads and downloads a directory tree, and writes text artifacts', async () => {
    const dir = path.join(tmp, 'tree');
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'a.json'), '{"a":1}');
    fs.writeFileSync(path.join(dir, 'sub', 'b.txt'), 'bee');
    await withRun(client, { experiment: `exp-${uniq}`, runName: 'tree' }, async (run) => {
      expect(await run.logArtifacts(dir, 'tree')).toEqual(['tree/a.json', 'tree/sub/b.txt']);
      await run.logText('<h1>report</h1>', 'reports/profile.html');
      const out = await client.downloadArtifacts(run.runId, 'tree', path.join(tmp, 'tree-dl'));
      expect(fs.readFileSync(path.join(out, 'sub', 'b.txt'), 'utf8')).toBe('bee');
      expect(fs.readFileSync(path.join(out, 'a.json'), 'utf8')).toBe('{"a":1}');
      const report = await client.downloadArtifacts(run.runId, 'reports/profile.html', path.join(tmp, 'rep'));
      expect(fs.readFileSync(report, 'utf8')).toBe('<h1>report</h1>');
    });
  });
});

describe('model registry with aliases', () => {
  it('registers a run model, waits READY, and round-trips aliases', async () => {
    const name = `support-category-${uniq}`;
    const modelDir = path.join(tmp, 'model');
    let runId = '';
    let modelId = '';
    await withRun(client, { experiment: `exp-${uniq}`, runName: 'train' }, async (run) => {
      runId = run.runId;
      fs.mkdirSync(modelDir, { recursive: true });
      fs.writeFileSync(path.join(modelDir, 'labels.json'), '["card","billing"]');
      modelId = await client.logModel(runId, modelDir, {
        artifactPath: 'model',
        modelType: 'test-kind',
        flavors: { ts_bert: { runtime: 'onnxruntime-node' } },
        signature: { inputs: [{ name: 'text', type: 'string' }], outputs: [{ name: 'label', type: 'string' }] },
        inputExample: [{ text: 'card not arrived' }],
      });
      await run.logEvaluation(modelId, { test_macro_f1: 0.75 }, { name: 'banking-test', digest: 'abc123' });
    });
    // As MLflow 3's log_model leaves it: a READY logged model in the experiment's Models tab, with its
    // own files, linked to the run (as an output) and to its metrics and their dataset.
    const model = await client.getLoggedModel(modelId);
    expect(model.info).toMatchObject({
      status: 'LOGGED_MODEL_READY',
      source_run_id: runId,
      name: 'model',
      model_type: 'test-kind',
    });
    expect(model.data.metrics).toEqual([
      expect.objectContaining({ key: 'test_macro_f1', value: 0.75, dataset_name: 'banking-test', model_id: modelId }),
    ]);
    expect((await client.getRun(runId)).outputs.model_outputs.map((o) => o.model_id)).toEqual([modelId]);
    expect((await client.listLoggedModelArtifacts(modelId)).map((f) => f.path).sort()).toEqual([
      'MLmodel',
      'input_example.json',
      'labels.json',
    ]);
    const source = (await client.runModelSource(await client.getRun(runId)))!;
    expect(source).toBe(`models:/${modelId}`);
    const rm = await client.getOrCreateRegisteredModel(name, {
      description: 'Banking77 coarse categories',
      tags: { task: 'support-category' },
    });
    expect((await client.getOrCreateRegisteredModel(name)).name).toBe(rm.name);
    const v1 = await client.createModelVersion({ name, source, runId, tags: { 'git.commit': 'abc' } });
    const v2 = await client.createModelVersion({ name, source, runId });
    expect([v1.status, v1.version, v2.version]).toEqual(['READY', '1', '2']);
    expect(v1.tags).toContainEqual({ key: 'git.commit', value: 'abc' });
    await client.setModelVersionTag(name, v2.version, 'validation_status', 'approved');
    expect((await client.getModelVersion(name, v2.version)).tags).toContainEqual({
      key: 'validation_status',
      value: 'approved',
    });
    expect((await client.getRegisteredModel(name))?.tags).toContainEqual({ key: 'task', value: 'support-category' });

    await client.setAlias(name, 'champion', v1.version);
    await client.setAlias(name, 'challenger', v2.version);
    expect((await client.getModelVersionByAlias(name, 'champion'))?.version).toBe('1');
    await client.setAlias(name, 'champion', v2.version); // moving an alias
    expect((await client.getModelVersionByAlias(name, 'champion'))?.version).toBe('2');
    await client.deleteAlias(name, 'challenger');
    expect(await client.getModelVersionByAlias(name, 'challenger')).toBeUndefined();
    await expect(client.setAlias(name, 'latest', '1')).rejects.toThrow(MlflowValidationError);

    const { dir, version } = await client.downloadModel(`models:/${name}@champion`, path.join(tmp, 'served'));
    expect(version?.version).toBe('2');
    expect(version?.source).toBe(`models:/${modelId}`);
    expect(readMlmodel(dir)).toMatchObject({
      run_id: runId,
      model_id: modelId,
      flavors: { ts_bert: { runtime: 'onnxruntime-node' } },
    });
    expect(String(readMlmodel(dir).mlflow_version)).toMatch(/^3\.\d+\.\d+/); // the tracking server's version
    expect(fs.readFileSync(path.join(dir, 'labels.json'), 'utf8')).toBe('["card","billing"]');
    const byVersion = await client.downloadModel(`models:/${name}/1`, path.join(tmp, 'v1'));
    expect(
      createHash('sha256')
        .update(fs.readFileSync(path.join(byVersion.dir, 'labels.json')))
        .digest('hex'),
    ).toBe(createHash('sha256').update('["card","billing"]').digest('hex'));
  });
});
