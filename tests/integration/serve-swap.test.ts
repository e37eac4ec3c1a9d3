import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Agent, request } from 'undici';
import type { FastifyInstance } from 'fastify';
import { loadModel, textPredictor, type Predictor } from '../../src/kinds';
import { MlflowClient } from '../../src/mlflow';
import { ModelCache } from '../../src/production/model-cache';
import { buildApp, LISTEN_BACKLOG } from '../../src/serve/app';
import { ChampionHolder } from '../../src/serve/champion';
import { registerBaselines } from '../helpers/registry';

// Hot swaps, overload and serving-log faults, on a real registry with two versions of a model.
// A gate in front of the real predictor holds requests "in flight" for as long as a test needs.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'serve-swap-'));
const name = `support-category-swap-${Date.now()}`;
const TOKEN = 'test-serving-token-0123';
const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
let client: MlflowClient;
const versions: string[] = [];

class Gate {
  private open = Promise.resolve();
  private release: () => void = () => {};
  close(): void {
    this.open = new Promise((r) => (this.release = r));
  }
  pass(): Promise<void> {
    return this.open;
  }
  openNow(): void {
    this.release();
  }
}

/** The real predictor of a folder, behind a gate, recording when it is released. */
function gatedLoader(gate: Gate, released: string[]) {
  return async (dir: string): Promise<Predictor> => {
    const p = textPredictor(await loadModel(dir));
    return {
      ...p,
      predictProba: async (texts: readonly string[]) => {
        await gate.pass();
        return p.predictProba(texts);
      },
      // A model with an out-of-scope rule is scored through its scope: gate that path too.
      ...(p.scope
        ? {
            scope: {
              ...p.scope,
              judge: async (texts: readonly string[]) => {
                await gate.pass();
                return p.scope!.judge(texts);
              },
            },
          }
        : {}),
      release: async () => {
        released.push(dir);
        await p.release();
      },
    };
  };
}

async function serve(
  holder: ChampionHolder,
  extra: Partial<Parameters<typeof buildApp>[0]> = {},
): Promise<{ app: FastifyInstance; url: string }> {
  const app = await buildApp({ models: holder, tokens: [TOKEN], batching: { maxBatch: 64, maxWaitMs: 2 }, ...extra });
  await app.listen({ host: '127.0.0.1', port: 0, backlog: LISTEN_BACKLOG });
  return { app, url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}` };
}

beforeAll(async () => {
  client = new MlflowClient({ trackingUri: inject('mlflowUri'), journalDir: path.join(tmp, 'journal'), log: () => {} });
  versions.push(...(await registerBaselines(client, name, 'support-category', [2, 4], 200)).map((v) => v.version));
});
afterAll(async () => {
  await client.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const predict = async (url: string, text: string, dispatcher?: Agent) => {
  const res = await request(`${url}/predict`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ texts: [text] }),
    dispatcher,
  });
  return {
    status: res.statusCode,
    retryAfter: res.headers['retry-after'],
    body: (await res.body.json()) as { model?: { version: string } },
  };
};

describe('hot swap', () => {
  it('a request that started before a swap answers with its version; that model is released only after it', async () => {
    await client.setAlias(name, 'champion', versions[0]!);
    const gate = new Gate();
    const released: string[] = [];
    const holder = new ChampionHolder(client, name, 'champion', new ModelCache(client, path.join(tmp, 'cache-a')), {
      load: gatedLoader(gate, released),
    });
    await holder.refresh();
    const { app, url } = await serve(holder);
    try {
      gate.close();
      const before = [predict(url, 'my card was declined'), predict(url, 'I was charged twice')];
      await new Promise((r) => setTimeout(r, 100)); // both are now waiting inside the model call
      await client.setAlias(name, 'champion', versions[1]!);
      expect(await holder.refresh()).toBe(true);
      expect(holder.draining).toBe(1);
      expect(released).toHaveLength(0); // still in use by the two requests
      gate.openNow();
      const answers = await Promise.all(before);
      expect(answers.map((a) => a.body.model?.version)).toEqual([versions[0], versions[0]]);
      expect(released).toHaveLength(1);
      expect(holder.draining).toBe(0);
      expect((await predict(url, 'top up failed')).body.model?.version).toBe(versions[1]);
    } finally {
      gate.openNow();
      await app.close();
      await holder.close();
    }
  });
});

describe('overload', () => {
  it('a version that fails to load is retried with back-off, not on every poll, and shows in /health', async () => {
    await client.setAlias(name, 'champion', versions[0]!);
    const cache = new ModelCache(client, path.join(tmp, 'cache-failing'));
    const broken = cache.dirFor(await client.getModelVersion(name, versions[1]!));
    let loads = 0;
    const holder = new ChampionHolder(client, name, 'champion', cache, {
      retryAfterMs: 60_000,
      load: async (dir) => {
        loads++;
        if (dir === broken) throw new Error('onnxruntime: cannot load the graph');
        return loadModel(dir);
      },
    });
    await holder.refresh();
    const { app, url } = await serve(holder);
    try {
      await client.setAlias(name, 'champion', versions[1]!);
      await expect(holder.refresh()).rejects.toThrow(/cannot load the graph/);
      for (let i = 0; i < 5; i++) expect(await holder.refresh()).toBe(false); // within the back-off: not tried
      expect(loads).toBe(2); // v1 once, v2 once
      const health = (await (await request(`${url}/health`)).body.json()) as {
        model: { version: string };
        registry: { failing_version?: { version: string; attempts: number; error: string } };
      };
      expect(health.model.version).toBe(versions[0]);
      expect(health.registry.failing_version).toMatchObject({ version: versions[1], attempts: 1 });
      expect(health.registry.failing_version!.error).toMatch(/cannot load the graph/);
      // The alias goes back to the served version: nothing is failing any more.
      await client.setAlias(name, 'champion', versions[0]!);
      expect(await holder.refresh()).toBe(false);
      expect(holder.failing).toBeUndefined();
    } finally {
      await app.close();
      await holder.close();
    }
  });

  it('2,000 concurrent requests against a queue of 256: each gets 200 or 503 with Retry-After, then the server serves normally', async () => {
    await client.setAlias(name, 'champion', versions[0]!);
    const gate = new Gate();
    const holder = new ChampionHolder(client, name, 'champion', new ModelCache(client, path.join(tmp, 'cache-b')), {
      load: gatedLoader(gate, []),
    });
    await holder.refresh();
    const { app, url } = await serve(holder, { maxQueue: 256 });
    const agent = new Agent({ connections: 2000, pipelining: 1 });
    try {
      gate.close(); // the model is stuck: admitted requests pile up
      const all = Array.from({ length: 2000 }, (_, i) => predict(url, `request ${i}: card payment declined`, agent));
      // The 1,744 over the limit are refused at once, while the model is still stuck.
      const deadline = Date.now() + 60_000;
      let rejected = 0;
      while (Date.now() < deadline) {
        const m = await request(`${url}/metrics`, { headers }).then((r) => r.body.text());
        rejected = Number(/^requests_rejected_total (\d+)/m.exec(m)?.[1] ?? 0);
        if (rejected >= 1744) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(rejected).toBe(1744);
      gate.openNow();
      const answers = await Promise.all(all);
      const byStatus = answers.reduce<Record<number, number>>(
        (acc, a) => ({ ...acc, [a.status]: (acc[a.status] ?? 0) + 1 }),
        {},
      );
      expect(byStatus).toEqual({ 200: 256, 503: 1744 });
      expect(answers.filter((a) => a.status === 503).every((a) => a.retryAfter === '1')).toBe(true);
      const after = await Promise.all(Array.from({ length: 20 }, (_, i) => predict(url, `after ${i}`, agent)));
      expect(after.every((a) => a.status === 200)).toBe(true);
    } finally {
      gate.openNow(); // a failed expectation must not leave requests stuck behind the gate
      await agent.close();
      await app.close();
      await holder.close();
    }
  });
});

describe('serving log faults', () => {
  it('a serving log that cannot be written is counted in /metrics and never fails a prediction', async () => {
    await client.setAlias(name, 'champion', versions[0]!);
    const holder = new ChampionHolder(client, name, 'champion', new ModelCache(client, path.join(tmp, 'cache-c')));
    await holder.refresh();
    const notADir = path.join(tmp, 'serving-is-a-file');
    fs.writeFileSync(notADir, 'not a folder');
    const { app, url } = await serve(holder, { servingLogDir: notADir });
    try {
      for (let i = 0; i < 3; i++) expect((await predict(url, `lost card ${i}`)).status).toBe(200);
      const m = await request(`${url}/metrics`, { headers }).then((r) => r.body.text());
      expect(Number(/^serving_log_errors_total (\d+)/m.exec(m)?.[1])).toBe(3);
      expect((await request(`${url}/health`)).statusCode).toBe(200);
    } finally {
      await app.close();
      await holder.close();
    }
  });
});
