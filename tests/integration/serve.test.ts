import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { request } from 'undici';
import { renderedDom } from '../helpers/browser';
import { monitoringExpressions, referencedMetrics } from '../helpers/monitoring';
import type { FastifyInstance } from 'fastify';
import { MlflowClient } from '../../src/mlflow';
import { buildApp } from '../../src/serve/app';
import { ChampionHolder } from '../../src/serve/champion';
import { loadModel, textPredictor } from '../../src/kinds';
import { ModelCache } from '../../src/production/model-cache';
import { servingLogFile } from '../../src/monitor/serving-log';
import { registerBaselines } from '../helpers/registry';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'serve-it-'));
const name = `conversation-churn-serve-${Date.now()}`;
const TOKEN = 's3cret-token-for-tests';
const auth = { authorization: `Bearer ${TOKEN}` };
let client: MlflowClient;
let holder: ChampionHolder;
let app: FastifyInstance;
let url: string;
const versions: string[] = [];
const runIds: string[] = [];
const servingLogDir = path.join(tmp, 'serving');
let cache: ModelCache;

beforeAll(async () => {
  client = new MlflowClient({ trackingUri: inject('mlflowUri'), journalDir: path.join(tmp, 'journal'), log: () => {} });
  for (const mv of await registerBaselines(client, name, 'conversation-churn', [3, 6], 300)) {
    runIds.push(mv.run_id!);
    versions.push(mv.version);
  }
  await client.setAlias(name, 'champion', versions[0]!);
  cache = new ModelCache(client, path.join(tmp, 'cache'));
  // A stale cache entry, as an old checkout or a recreated registry leaves it: version 1's cache key
  // holding version 2's files (another run). The server must serve version 1's own model.
  const v1 = await client.getModelVersion(name, versions[0]!);
  fs.cpSync(
    await new ModelCache(client, path.join(tmp, 'other-cache')).fetch(await client.getModelVersion(name, versions[1]!)),
    cache.dirFor(v1),
    { recursive: true },
  );
  holder = new ChampionHolder(client, name, 'champion', cache);
  await holder.refresh();
  app = await buildApp({
    models: holder,
    tokens: [TOKEN],
    positiveLabel: 'yes',
    servingLogDir,
    batching: { maxBatch: 64, maxWaitMs: 10 },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  url = `http://127.0.0.1:${addr.port}`;
});
afterAll(async () => {
  await app?.close();
  await holder?.close();
  await client.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const post = async (route: string, body: unknown, headers: Record<string, string> = auth) => {
  const res = await request(`${url}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.statusCode, body: (await res.body.json()) as any };
};
const get = async (route: string, headers: Record<string, string> = auth) => {
  const res = await request(`${url}${route}`, { headers });
  return { status: res.statusCode, text: await res.body.text() };
};

describe('model server', () => {
  it('/metrics exposes every serving metric the alert rules and the Grafana dashboard read', async () => {
    const exposed = new Set([...(await get('/metrics')).text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
    const read = [...referencedMetrics(monitoringExpressions())].filter((n) => !n.startsWith('convo_'));
    expect(read.length).toBeGreaterThan(5);
    for (const name of read) expect(exposed, name).toContain(name);
  });

  it('/docs opens in headless Chromium without a token and lists the routes, grouped by tag', async () => {
    const dom = await renderedDom(`${url}/docs/`);
    const paths = [...dom.matchAll(/class="opblock-summary-path"[^>]*data-path="([^"]+)"/g)].map((m) => m[1]);
    expect(paths).toEqual(expect.arrayContaining(['/predict', '/invocations', '/version', '/metrics', '/health']));
    const tags = [...dom.matchAll(/class="opblock-tag[^"]*"[^>]*data-tag="([^"]+)"/g)].map((m) => m[1]);
    expect(tags.length).toBeGreaterThan(1);
    expect(dom).not.toContain('Unauthorized');
  }, 120_000);

  it('answers /ping, /health and the API docs without a token, everything else only with a valid one', async () => {
    expect(await get('/ping', {})).toEqual({ status: 200, text: 'pong\n' });
    // Swagger UI opens in a browser: its page, its assets and the OpenAPI document need no token.
    const docs = await get('/docs/', {});
    expect(docs.status).toBe(200);
    const assets = [...docs.text.matchAll(/(?:src|href)="\.?\/?([^"]+\.(?:js|css))"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThan(0);
    for (const a of assets) expect((await get(`/docs/${a.replace(/^docs\//, '')}`, {})).status, a).toBe(200);
    expect((await get('/openapi.json', {})).status).toBe(200);
    expect((await post('/predict', { texts: ['x'] }, {})).status).toBe(401);
    expect(JSON.parse((await get('/health', {})).text)).toMatchObject({
      status: 'ok',
      model: { name, version: versions[0] },
    });
    expect((await get('/version', {})).status).toBe(401);
    expect((await get('/version', { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await get('/metrics', {})).status).toBe(401);
    expect(JSON.parse((await get('/version')).text)).toMatchObject({
      model: { name, version: versions[0], flavor: 'ts_tfidf_logreg' },
    });
  });

  it("serves the registry version's own model, not a stale cache folder under its key", async () => {
    expect(JSON.parse((await get('/version')).text).model.run_id).toBe(runIds[0]);
    const own = textPredictor(
      await loadModel((await client.downloadModel(`runs:/${runIds[0]}/model`, path.join(tmp, 'own-v1'))).dir),
    );
    const other = textPredictor(
      await loadModel((await client.downloadModel(`runs:/${runIds[1]}/model`, path.join(tmp, 'own-v2'))).dir),
    );
    const texts = [
      'Customer: I want to cancel my service today, I am leaving.',
      'Customer: can I upgrade my data plan?',
      'Customer: the bill is wrong again',
    ];
    const served = (await post('/predict', { texts })).body.predictions.map(
      (p: { probabilities: { yes: number } }) => p.probabilities.yes,
    );
    const yes = own.labels.indexOf('yes');
    const expected = Array.from(await own.predictProba(texts)).filter((_, i) => i % own.labels.length === yes);
    const wrong = Array.from(await other.predictProba(texts)).filter((_, i) => i % other.labels.length === yes);
    served.forEach((p: number, i: number) => expect(p).toBeCloseTo(expected[i]!, 5));
    expect(wrong.some((p, i) => Math.abs(p - expected[i]!) > 1e-3)).toBe(true); // the two models differ, so this can tell
  });

  it('/predict gives label, probabilities and the churn action bucket', async () => {
    const r = await post('/predict', {
      texts: ['Customer: I want to cancel my service today, I am leaving.', 'Customer: can I upgrade my data plan?'],
    });
    expect(r.status).toBe(200);
    expect(r.body.model).toEqual({ name, version: versions[0] });
    for (const p of r.body.predictions) {
      expect(['yes', 'no']).toContain(p.label);
      expect(p.probabilities.yes + p.probabilities.no).toBeCloseTo(1, 5);
      expect(p.bucket).toBe(p.probabilities.yes >= 0.7 ? 'A' : p.probabilities.yes >= 0.4 ? 'B' : 'C');
    }
  });

  it('/invocations accepts all four MLflow scoring formats with the same answers', async () => {
    const texts = ['cancel my account', 'upgrade please'];
    const expected = (await post('/predict', { texts })).body.predictions;
    for (const body of [
      { dataframe_split: { columns: ['text'], data: texts.map((t) => [t]) } },
      { dataframe_records: texts.map((text) => ({ text })) },
      { instances: texts },
      { inputs: texts },
      { inputs: { text: texts } },
    ]) {
      const r = await post('/invocations', body);
      expect(r.status, JSON.stringify(body)).toBe(200);
      expect(r.body.predictions).toEqual(expected);
    }
  });

  it('a request of 45 texts of 20,000 white-space characters neither blocks /health nor takes seconds', async () => {
    // The cleaning rules once took time quadratic in such runs: 15 s for this request, /health after 14.5 s.
    const texts = Array.from({ length: 45 }, (_, i) => `${(i % 4 === 3 ? 'a' : ' ').repeat(19_990)}x${i}`);
    const started = Date.now();
    const scored = post('/predict', { texts });
    await new Promise((r) => setImmediate(r));
    const health = Date.now();
    expect((await get('/health', {})).status).toBe(200);
    const healthMs = Date.now() - health;
    const res = await scored;
    const requestMs = Date.now() - started;
    expect(res.status).toBe(200);
    expect(res.body.predictions).toHaveLength(45);
    expect(healthMs).toBeLessThan(100);
    expect(requestMs).toBeLessThan(1000);
  });

  it('rejects bad input with a clear 4xx and stays up', async () => {
    const cases: [unknown, number, RegExp][] = [
      ['{"texts": [', 400, /Invalid request|JSON/i],
      [{ texts: 'not a list' }, 400, /texts/],
      [{ texts: [1, 2] }, 400, /texts/],
      [{ texts: ['ok', '   '] }, 400, /texts\.1: empty text/],
      [{ texts: [] }, 400, /No texts/],
      [{ texts: Array.from({ length: 10_000 }, () => 'hi') }, 413, /10000 texts .* limit is 256/],
      [{ texts: ['x'.repeat(10 * 1024 * 1024)] }, 413, /Body over/],
      [{ instances: [{ nottext: 1 }] }, 400, /instances\[0\]/],
      [{ wrong: true }, 400, /scoring formats/],
    ];
    for (const [body, status, message] of cases) {
      const route =
        body && typeof body === 'object' && ('instances' in body || 'wrong' in body) ? '/invocations' : '/predict';
      const r = await post(route, body);
      expect(r.status, JSON.stringify(body).slice(0, 60)).toBe(status);
      expect(r.body.message).toMatch(message);
    }
    expect((await post('/predict', { texts: ['x'] }, {})).status).toBe(401);
    expect((await get('/ping', {})).status).toBe(200);
  });

  it('micro-batches concurrent requests', async () => {
    const calls = async () => Number(/prediction_batch_size_count (\d+)/.exec((await get('/metrics')).text)![1]);
    const before = await calls();
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => post('/predict', { texts: [`request ${i}: please cancel my contract`] })),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    const modelCalls = (await calls()) - before;
    expect(modelCalls).toBeGreaterThan(0);
    expect(modelCalls).toBeLessThan(40); // 40 requests, fewer model calls
  });

  it('exposes Prometheus metrics and appends every prediction (PII-masked, hashed) to the serving log', async () => {
    await post('/predict', { texts: ['Customer: mail me at jane@example.com, I want to cancel'] });
    const metrics = (await get('/metrics')).text;
    expect(metrics).toMatch(/http_request_duration_seconds_bucket\{.*route="\/predict"/);
    expect(metrics).toMatch(
      new RegExp(`predictions_total\\{model="${name}",version="${versions[0]}",label="(yes|no)"\\} \\d+`),
    );
    expect(metrics).toMatch(/http_requests_total\{route="\/predict",method="POST",status="200"\} \d+/);
    expect(metrics).toMatch(/# TYPE model_reloads_total counter/);
    expect(metrics).toMatch(new RegExp(`model_version\\{name="${name}",alias="champion"\\} ${versions[0]}`));
    // The serving log is appended asynchronously (a write stream): wait for the record, not for a fixed time.
    const file = servingLogFile(servingLogDir, new Date());
    const read = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
    for (let i = 0; i < 100 && !read().includes('[EMAIL], I want to cancel'); i++)
      await new Promise((r) => setTimeout(r, 20));
    const lines = read()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const last = lines.at(-1);
    expect(last.text).toBe('Customer: mail me at [EMAIL], I want to cancel');
    expect(last.text_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(last).toMatchObject({ route: '/predict', model: name, version: versions[0] });
    expect(JSON.stringify(lines)).not.toContain('jane@example.com');
  });

  it('hot-reloads when @champion moves, without failing requests in flight', async () => {
    await client.setAlias(name, 'champion', versions[1]!);
    const inflight = Array.from({ length: 30 }, (_, i) => post('/predict', { texts: [`text ${i}`] }));
    expect(await holder.refresh()).toBe(true);
    const results = await Promise.all(inflight);
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(JSON.parse((await get('/version')).text).model).toMatchObject({ version: versions[1], run_id: runIds[1] });
    expect(fs.existsSync(path.join(cache.dirFor(await client.getModelVersion(name, versions[1]!)), 'MLmodel'))).toBe(
      true,
    );
    expect(holder.releases).toBe(1); // version 1's predictor, once its requests were done
  });

  it('serves an OpenAPI document', async () => {
    const doc = JSON.parse((await get('/openapi.json')).text);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/predict', '/invocations', '/ping', '/health', '/version', '/metrics']),
    );
    expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
    const predict = doc.paths['/predict'].post;
    expect(predict).toMatchObject({ tags: ['scoring'], summary: 'Classify texts or records' });
    expect(Object.keys(predict.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '413', '503']));
    // Texts for text models, records of feature columns for tabular ones.
    const bodies = predict.requestBody.content['application/json'].schema.anyOf;
    expect(bodies.map((b: { required: string[] }) => b.required)).toEqual([['texts'], ['records']]);
    expect(bodies[0].properties.texts.type).toBe('array');
    const invocations = doc.paths['/invocations'].post;
    expect(invocations.requestBody.content['application/json'].schema.anyOf).toHaveLength(4);
    expect(doc.paths['/ping'].get.security).toEqual([]);
    expect(
      new Set(Object.values(doc.paths).flatMap((p: any) => Object.values(p).flatMap((op: any) => op.tags ?? []))),
    ).toEqual(new Set(['scoring', 'model', 'operations']));
  });
});
