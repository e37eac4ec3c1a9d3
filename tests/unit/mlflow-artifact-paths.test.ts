import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowClient } from '../../src/mlflow';
import { insideDir } from '../../src/mlflow/artifacts';
import { startHttpServer } from '../helpers/http-server';

// Not a stand-in for MLflow (the integration tests use a real server): a server that lies on purpose,
// as a hostile or intercepted one would, which a real MLflow cannot be made to do.
describe('artifact downloads from a hostile server', () => {
  let server: Awaited<ReturnType<typeof startHttpServer>>;
  let listing: { path: string; is_dir: boolean }[] = [];
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-'));
  const staging = path.join(root, 'staging');

  beforeAll(async () => {
    server = await startHttpServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      res.setHeader('content-type', 'application/json');
      if (url.pathname === '/api/2.0/mlflow/runs/get') {
        const info = {
          run_id: 'r1',
          experiment_id: '0',
          status: 'FINISHED',
          artifact_uri: 'mlflow-artifacts:/0/r1/artifacts',
        };
        res.end(JSON.stringify({ run: { info } }));
      } else if (url.pathname === '/api/2.0/mlflow/artifacts/list') {
        const dir = url.searchParams.get('path') ?? '';
        res.end(JSON.stringify({ files: dir === '' ? [{ path: 'model', is_dir: true }] : listing }));
      } else {
        res.setHeader('content-type', 'application/octet-stream');
        res.end('pwned');
      }
    });
  });
  afterAll(async () => {
    await server.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const download = () => {
    const client = new MlflowClient({
      trackingUri: server.url,
      retry: { retries: 0 },
      journalDir: path.join(root, '..', `${path.basename(root)}-journal`),
    });
    return client.downloadArtifacts('r1', 'model', staging).finally(() => client.close());
  };

  it.each([
    ['a parent folder', [{ path: 'model/..', is_dir: false }]],
    ['a path outside the listed folder', [{ path: '../../evil', is_dir: false }]],
    ['a nested name', [{ path: 'model/../../evil', is_dir: false }]],
    ['the folder itself', [{ path: 'model/.', is_dir: true }]],
  ])('refuses %s and writes nothing outside the staging folder', async (_what, files) => {
    listing = files;
    await expect(download()).rejects.toThrow(/INVALID_ARTIFACT_PATH/);
    expect(fs.readdirSync(root).sort()).toEqual(['staging']);
    expect(fs.existsSync(path.join(root, 'evil'))).toBe(false);
  });

  it('still downloads an honest listing', async () => {
    listing = [{ path: 'model/MLmodel', is_dir: false }];
    const dir = await download();
    expect(fs.readFileSync(path.join(dir, 'MLmodel'), 'utf8')).toBe('pwned');
  });

  it('insideDir keeps names inside and refuses the rest', () => {
    expect(insideDir('/tmp/a', 'm-1')).toBe('/tmp/a/m-1');
    for (const bad of ['', '.', '..', 'x/y', 'x\\y', 'a\0b']) expect(() => insideDir('/tmp/a', bad)).toThrow();
  });
});
