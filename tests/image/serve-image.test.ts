import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { request } from 'undici';
import { loadConfig } from '../../src/config';
import {
  buildImage,
  buildLocalBase,
  containerLogs,
  containerRunning,
  docker,
  imageSize,
  startDockerd,
  type DockerDaemon,
} from '../../src/image/docker';
import { MlflowClient } from '../../src/mlflow';
import { freePort } from '../../src/io/server-process';
import { registerBaselines } from '../helpers/registry';

// The serving image for real: built by a private dockerd on a base made from Debian packages (no image
// registry is reachable here), run as a container, and asked for predictions by the champion it pulls
// from the MLflow server of the integration setup.
const cfg = loadConfig();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'serve-image-'));
const name = `support-category-image-${Date.now()}`;
const TOKEN = 'image-test-token';
const BASE = 'convo-mlops-test/node20-bookworm-local';
const TAG = 'convo-mlops-test/serve';
let d: DockerDaemon;
let client: MlflowClient;
let champion: { version: string; runId: string };

const caFile = [process.env.NODE_EXTRA_CA_CERTS, process.env.SSL_CERT_FILE].find((f) => f && fs.existsSync(f));

beforeAll(async () => {
  client = new MlflowClient({ trackingUri: inject('mlflowUri'), journalDir: path.join(tmp, 'journal'), log: () => {} });
  const [v1, v2] = await registerBaselines(client, name, 'support-category', [1, 4], 150);
  await client.setAlias(name, 'champion', v2!.version);
  champion = { version: v2!.version, runId: v2!.run_id! };
  expect(v1!.run_id).not.toBe(champion.runId);
  d = await startDockerd(path.join(tmp, 'docker'));
  const t0 = Date.now();
  await buildLocalBase(d, BASE, path.join(tmp, 'base'), { log: (m) => process.stdout.write(`${m}\n`) });
  const t1 = Date.now();
  await buildImage(d, cfg.root, 'serve', { base: BASE, tag: TAG, caFile, network: 'host' });
  const size = await imageSize(d, TAG);
  process.stdout.write(
    `[image] base ${((t1 - t0) / 1000).toFixed(0)} s, serving image ${((Date.now() - t1) / 1000).toFixed(0)} s, ` +
      `${(size / 1e6).toFixed(0)} MB (base ${((await imageSize(d, BASE)) / 1e6).toFixed(0)} MB)\n`,
  );
}, 1_200_000);

afterAll(async () => {
  await d?.stop();
  await client?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function waitHealthy(url: string, container: string): Promise<void> {
  for (let i = 0; i < 240; i++) {
    const ok = await request(`${url}/health`)
      .then((r) => r.body.dump().then(() => r.statusCode === 200))
      .catch(() => false);
    if (ok) return;
    if (!(await containerRunning(d, container)))
      throw new Error(`the container exited:\n${await containerLogs(d, container)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`container not healthy in 120 s:\n${await containerLogs(d, container)}`);
}

describe('serving image', () => {
  it('runs as a non-root user, pulls @champion from MLflow and answers /health and /predict with it', async () => {
    const user = (await docker(d, ['image', 'inspect', '--format', '{{.Config.User}}', TAG])).trim();
    expect(user).toBe('app');
    const port = await freePort();
    const container = (
      await docker(d, [
        'run',
        '--detach',
        '--network',
        'host',
        '--env',
        `MLFLOW_TRACKING_URI=${inject('mlflowUri')}`,
        '--env',
        `SERVE_TOKENS=${TOKEN}`,
        '--env',
        `SERVE_PORT=${port}`,
        TAG,
        '--task',
        'support-category',
        '--model',
        name,
        '--watch',
        '2',
      ])
    ).trim();
    try {
      const url = `http://127.0.0.1:${port}`;
      await waitHealthy(url, container);
      expect((await docker(d, ['exec', container, 'id', '-u'])).trim()).toBe('10001');
      const version = await request(`${url}/version`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const v = (await version.body.json()) as { model: { version: string; run_id: string } };
      expect(v.model.version).toBe(champion.version);
      expect(v.model.run_id).toBe(champion.runId);
      const res = await request(`${url}/predict`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          texts: ['my card payment was declined at the shop', 'how do I top up by bank transfer'],
        }),
      });
      expect(res.statusCode).toBe(200);
      const body = (await res.body.json()) as {
        model: { name: string; version: string };
        predictions: { label: string; probabilities: Record<string, number> }[];
      };
      expect(body.model).toEqual({ name, version: champion.version });
      expect(body.predictions).toHaveLength(2);
      for (const p of body.predictions) {
        expect(Object.keys(p.probabilities)).toContain(p.label);
        expect(Object.values(p.probabilities).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      }
      // Without the token: refused, as outside a container.
      const anon = await request(`${url}/predict`, { method: 'POST', body: '{"texts":["x"]}' });
      await anon.body.dump();
      expect(anon.statusCode).toBe(401);
    } finally {
      await docker(d, ['rm', '--force', container]).catch(() => '');
    }
  });
});
