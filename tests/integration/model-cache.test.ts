import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MlflowClient, type ModelVersion } from '../../src/mlflow';
import { readMlmodel } from '../../src/mlflow/mlmodel';
import { cacheKey, ModelCache, verifyCachedModel } from '../../src/production/model-cache';
import { registerBaselines } from '../helpers/registry';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'model-cache-'));
const name = `churn-intent-cache-${Date.now()}`;
let client: MlflowClient;
const mvs: ModelVersion[] = [];

beforeAll(async () => {
  client = new MlflowClient({ trackingUri: inject('mlflowUri'), journalDir: path.join(tmp, 'journal'), log: () => {} });
  mvs.push(...(await registerBaselines(client, name, 'churn-intent', [2, 3], 150)));
});
afterAll(async () => {
  await client.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('content-addressed model cache', () => {
  it('keys a folder by run id and source, never by the version number', () => {
    const [a, b] = mvs as [ModelVersion, ModelVersion];
    expect(cacheKey(a)).toMatch(new RegExp(`^${a.run_id}-[0-9a-f]{12}$`));
    expect(cacheKey({ ...b, version: a.version })).not.toBe(cacheKey(a)); // a reused version number names another folder
    expect(() => cacheKey({ ...a, run_id: undefined })).toThrow(/not tied to a run/);
  });

  it('shares one download between concurrent fetches, and a second process reuses the completed folder', async () => {
    const root = path.join(tmp, 'shared');
    const one = new ModelCache(client, root);
    const dirs = await Promise.all(Array.from({ length: 5 }, () => one.fetch(mvs[0]!)));
    expect(new Set(dirs).size).toBe(1);
    expect(one.downloads).toBe(1);
    expect(readMlmodel(dirs[0]!).run_id).toBe(mvs[0]!.run_id);
    const other = new ModelCache(client, root); // another process, same folder
    expect(await other.fetch(mvs[0]!)).toBe(dirs[0]);
    expect(other.downloads).toBe(0);
  });

  it('two processes downloading the same model at once both end with the one verified folder', async () => {
    const root = path.join(tmp, 'race');
    const a = new ModelCache(client, root);
    const b = new ModelCache(client, root);
    const [da, db] = await Promise.all([a.fetch(mvs[1]!), b.fetch(mvs[1]!)]);
    expect(da).toBe(db);
    expect(a.downloads + b.downloads).toBe(2);
    expect(verifyCachedModel(da, mvs[1]!.run_id!)).toBeUndefined();
    expect(fs.readdirSync(path.dirname(da))).toEqual([path.basename(da)]); // no staging folder left behind
  });

  it("a folder under the right key with another run's files, or an edited file, is downloaded again", async () => {
    const root = path.join(tmp, 'stale');
    const cache = new ModelCache(client, root);
    const dir = cache.dirFor(mvs[0]!);
    fs.cpSync(await new ModelCache(client, path.join(tmp, 'src')).fetch(mvs[1]!), dir, { recursive: true });
    expect(verifyCachedModel(dir, mvs[0]!.run_id!)).toMatch(/MLmodel names run .* the registry names run/);
    expect(await cache.fetch(mvs[0]!)).toBe(dir);
    expect(cache.downloads).toBe(1);
    expect(readMlmodel(dir).run_id).toBe(mvs[0]!.run_id);

    fs.appendFileSync(path.join(dir, 'model.json'), ' ');
    expect(verifyCachedModel(dir, mvs[0]!.run_id!)).toMatch(/model\.json changed/);
    await cache.fetch(mvs[0]!);
    expect(cache.downloads).toBe(2);
    expect(verifyCachedModel(dir, mvs[0]!.run_id!)).toBeUndefined();
  });
});
