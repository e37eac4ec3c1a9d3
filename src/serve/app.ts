/**
 * The model server (Fastify): MLflow's scoring protocol on /invocations, a friendlier /predict with
 * churn action buckets, /ping, /health, /version, Prometheus /metrics, OpenAPI at /openapi.json and
 * docs at /docs. Every route but /ping and /health needs a bearer token. Inputs are validated with
 * zod and rejected with a clear 4xx; concurrent requests are micro-batched; every prediction is
 * appended (text hashed and PII-masked) to the serving log that monitoring reads.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { z } from 'zod';
import { maskPii } from '../data/clean';
import type { FeatureRecord } from '../data/tabular-tasks';
import type { RecordPredictor } from '../kinds';
import { argmaxRows } from '../estimators/logreg';
import { ServingLogWriter, type ServingRecord } from '../monitor/serving-log';
import { MicroBatcher, type BatcherOptions } from './batcher';
import type { ChampionHolder, ServedModel } from './champion';

export interface BucketThresholds {
  /** p(churn) at or above: bucket A (very likely to churn: call them). */
  a: number;
  /** p(churn) at or above (and below `a`): bucket B (on the fence: offer a discount). Below: C (retained). */
  b: number;
}

export interface ServeOptions {
  models: Pick<ChampionHolder, 'model' | 'loaded' | 'name' | 'alias' | 'reloads' | 'releases' | 'draining' | 'use'>;
  /** Accepted bearer tokens; an empty list disables auth (only with `allowNoAuth`). */
  tokens: string[];
  allowNoAuth?: boolean;
  /** Positive label of a churn task: enables A/B/C buckets. */
  positiveLabel?: string;
  buckets?: BucketThresholds;
  maxBatchTexts?: number;
  maxTextChars?: number;
  bodyLimitBytes?: number;
  batching?: BatcherOptions;
  /** Applied to each text before scoring: the task's cleaning, so serving sees what training saw. */
  preprocess?: (text: string) => string;
  /** Folder of daily JSONL files every prediction is appended to (predictions-YYYY-MM-DD.jsonl). */
  servingLogDir?: string;
  /** Scoring requests admitted at once (running or waiting for the model); more get 503 + Retry-After. */
  maxQueue?: number;
  appVersion?: string;
  logger?: boolean;
}

/** The action buckets of churn tasks: A (call them) from p = 0.7, B (offer a discount) from 0.4. */
export const DEFAULT_BUCKETS: BucketThresholds = { a: 0.7, b: 0.4 };

const DEFAULTS = {
  maxQueue: 256,
  maxBatchTexts: 256,
  maxTextChars: 20_000,
  bodyLimitBytes: 1_000_000,
  buckets: DEFAULT_BUCKETS,
  batching: { maxBatch: 64, maxWaitMs: 5 },
};

class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly issues?: { path: string; message: string }[],
  ) {
    super(message);
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time token check: compares SHA-256 digests, so neither content nor length leaks. */
export function tokenMatches(given: string, tokens: readonly string[]): boolean {
  const g = digest(given);
  let ok = false;
  for (const t of tokens) ok = timingSafeEqual(g, digest(t)) || ok;
  return ok;
}

export function churnBucket(p: number, t: BucketThresholds): 'A' | 'B' | 'C' {
  return p >= t.a ? 'A' : p >= t.b ? 'B' : 'C';
}

// ---- request schemas ------------------------------------------------------------------------

// Items are checked one by one in `invocationTexts`, so errors can name the bad item.
const textItem = z.unknown();
const InvocationsSchema = z.union([
  z
    .object({
      dataframe_split: z.object({ columns: z.array(z.string()).optional(), data: z.array(z.array(z.unknown())) }),
    })
    .strict(),
  z.object({ dataframe_records: z.array(z.record(z.string(), z.unknown())) }).strict(),
  z.object({ instances: z.array(textItem) }).strict(),
  z.object({ inputs: z.union([z.array(textItem), z.object({ text: z.array(z.string()) })]) }).strict(),
]);
const PredictSchema = z.object({ texts: z.array(z.string()) }).strict();
const PredictRecordsSchema = z.object({ records: z.array(z.unknown()) }).strict();

function issuesOf(err: z.ZodError): { path: string; message: string }[] {
  return err.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }));
}

/** Extracts the texts of an MLflow scoring request (any of its four JSON formats). */
export function invocationTexts(body: unknown): string[] {
  const parsed = InvocationsSchema.safeParse(body);
  if (!parsed.success) {
    throw new HttpError(
      400,
      'Body must be one of MLflow\'s scoring formats: {"dataframe_split": {"columns": ["text"], "data": [["..."]]}}, ' +
        '{"dataframe_records": [{"text": "..."}]}, {"instances": ["..."]} or {"inputs": ["..."]}',
    );
  }
  const b = parsed.data;
  const asText = (v: unknown, where: string): string => {
    if (typeof v === 'string') return v;
    if (v && typeof v === 'object' && typeof (v as { text?: unknown }).text === 'string')
      return (v as { text: string }).text;
    throw new HttpError(400, `${where}: expected a string (or an object with a "text" string)`);
  };
  if ('dataframe_split' in b) {
    const col = b.dataframe_split.columns ? b.dataframe_split.columns.indexOf('text') : 0;
    if (col < 0) throw new HttpError(400, 'dataframe_split.columns has no "text" column');
    return b.dataframe_split.data.map((row, i) => asText(row[col], `dataframe_split.data[${i}]`));
  }
  if ('dataframe_records' in b) return b.dataframe_records.map((r, i) => asText(r, `dataframe_records[${i}]`));
  if ('instances' in b) return b.instances.map((r, i) => asText(r, `instances[${i}]`));
  const inputs = b.inputs;
  return Array.isArray(inputs) ? inputs.map((r, i) => asText(r, `inputs[${i}]`)) : inputs.text;
}

/** One row of a tabular scoring request, as it arrived, with where it was in the body (for error messages). */
interface RowAt {
  value: unknown;
  where: string;
}

/** The rows of an MLflow scoring request for a tabular model: objects keyed by column (any of the four formats). */
export function invocationRows(body: unknown): RowAt[] {
  const parsed = InvocationsSchema.safeParse(body);
  if (!parsed.success)
    throw new HttpError(
      400,
      'Body must be one of MLflow\'s scoring formats: {"dataframe_split": {"columns": [...], "data": [[...]]}}, ' +
        '{"dataframe_records": [{column: value, ...}]}, {"instances": [{...}]} or {"inputs": [{...}]}',
    );
  const b = parsed.data;
  if ('dataframe_split' in b) {
    const cols = b.dataframe_split.columns;
    if (!cols) throw new HttpError(400, 'dataframe_split needs "columns" (the feature column names) for this model');
    return b.dataframe_split.data.map((row, i) => {
      if (row.length !== cols.length)
        throw new HttpError(400, `dataframe_split.data[${i}]: ${row.length} values for ${cols.length} columns`);
      return { value: Object.fromEntries(cols.map((c, j) => [c, row[j]])), where: `dataframe_split.data[${i}]` };
    });
  }
  if ('dataframe_records' in b)
    return b.dataframe_records.map((value, i) => ({ value, where: `dataframe_records[${i}]` }));
  if ('instances' in b) return b.instances.map((value, i) => ({ value, where: `instances[${i}]` }));
  if (Array.isArray(b.inputs)) return b.inputs.map((value, i) => ({ value, where: `inputs[${i}]` }));
  throw new HttpError(400, 'inputs must be a list of records ({column: value}) for this model');
}

/** Validates rows against the model's columns; every problem names its row and column. */
export function parseRecords(
  predictor: RecordPredictor,
  rows: readonly RowAt[],
  onRejected?: (issues: { column: string; message: string }[]) => void,
): { records: FeatureRecord[]; ids: (string | undefined)[] } {
  const issues: { path: string; message: string }[] = [];
  const records: FeatureRecord[] = [];
  const ids: (string | undefined)[] = [];
  for (const row of rows) {
    const r = predictor.parseRecord(row.value);
    const id = predictor.idColumn ? (row.value as Record<string, unknown> | null)?.[predictor.idColumn] : undefined;
    ids.push(typeof id === 'string' || typeof id === 'number' ? String(id).slice(0, 200) : undefined);
    if ('record' in r) {
      records.push(r.record);
      continue;
    }
    onRejected?.(r.issues.map((i) => ({ column: i.path, message: i.message })));
    issues.push(...r.issues.map((i) => ({ path: `${row.where}.${i.path}`, message: i.message })));
  }
  if (issues.length)
    throw new HttpError(
      400,
      `Invalid records: ${issues
        .slice(0, 5)
        .map((i) => `${i.path}: ${i.message}`)
        .join('; ')}${issues.length > 5 ? ` (and ${issues.length - 5} more)` : ''}`,
      issues,
    );
  return { records, ids };
}

/** What one request scores: texts for a text model, validated records for a tabular one. */
type ScoreInputs =
  { kind: 'text'; texts: string[] } | { kind: 'record'; records: FeatureRecord[]; ids: (string | undefined)[] };

export async function buildApp(opts: ServeOptions): Promise<FastifyInstance> {
  const o = {
    ...DEFAULTS,
    ...opts,
    buckets: { ...DEFAULTS.buckets, ...opts.buckets },
    batching: { ...DEFAULTS.batching, ...opts.batching },
  };
  if (o.tokens.length === 0 && !o.allowNoAuth)
    throw new Error('No bearer tokens configured (SERVE_TOKENS or SERVE_TOKEN_FILE); refusing to serve without auth.');
  const app = Fastify({ logger: o.logger ?? false, bodyLimit: o.bodyLimitBytes });
  // Validation is zod's (in the handlers), for one path with precise messages; schemas below feed OpenAPI.
  app.setValidatorCompiler(() => (data) => ({ value: data }));

  // ---- metrics ----
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const latency = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Request latency',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'Requests by route, method and status',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
  });
  // By model version too, so counts of two versions never mix after a hot swap.
  const predictions = new Counter({
    name: 'predictions_total',
    help: 'Predictions by model, version and predicted class',
    labelNames: ['model', 'version', 'label'],
    registers: [registry],
  });
  const scoped = new Counter({
    name: 'predictions_scope_total',
    help: 'Predictions by model, version and whether the input was in scope (out of scope: the fallback label)',
    labelNames: ['model', 'version', 'in_scope'],
    registers: [registry],
  });
  // The monitored signal itself: today's (UTC) share of out-of-scope predictions, reset at midnight.
  const today = { day: '', total: 0, outOfScope: 0 };
  const countScope = (inScope: boolean) => {
    const day = new Date().toISOString().slice(0, 10);
    if (day !== today.day) Object.assign(today, { day, total: 0, outOfScope: 0 });
    today.total += 1;
    today.outOfScope += Number(!inScope);
  };
  new Gauge({
    name: 'out_of_scope_share_today',
    help: "Share of today's (UTC) predictions answered with the fallback label",
    registers: [registry],
    collect() {
      if (today.day !== new Date().toISOString().slice(0, 10))
        Object.assign(today, { day: '', total: 0, outOfScope: 0 });
      this.set(today.total ? today.outOfScope / today.total : 0);
    },
  });
  new Gauge({
    name: 'scope_threshold',
    help: "The served model's out-of-scope threshold (source: model, or a deployment override)",
    labelNames: ['model', 'version', 'score', 'source'],
    registers: [registry],
    collect() {
      this.reset();
      const m = o.models.loaded ? o.models.model : undefined;
      const scope = m?.predictor.input === 'text' ? m.predictor.scope : undefined;
      if (m && scope)
        this.set(
          {
            model: m.name,
            version: m.version,
            score: scope.score,
            source: scope.threshold === scope.modelThreshold ? 'model' : 'override',
          },
          scope.threshold,
        );
    },
  });
  new Gauge({
    name: 'model_version',
    help: 'Registry version of the served model',
    labelNames: ['name', 'alias'],
    registers: [registry],
    collect() {
      if (o.models.loaded) this.set({ name: o.models.name, alias: o.models.alias }, Number(o.models.model.version));
    },
  });
  const batchSizes = new Histogram({
    name: 'prediction_batch_size',
    help: 'Texts scored per model call (micro-batching)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [registry],
  });
  // Counters that follow the holder's own counts (only ever growing), read at scrape time.
  const followCount = (name: string, help: string, read: () => number) => {
    let seen = 0;
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const now = read();
        if (now > seen) this.inc(now - seen);
        seen = now;
      },
    });
  };
  followCount('model_reloads_total', 'Hot reloads since start', () => o.models.reloads);
  followCount(
    'model_releases_total',
    'Replaced models whose sessions were released after their last request',
    () => o.models.releases,
  );
  new Gauge({
    name: 'models_draining',
    help: 'Replaced models still finishing requests that started on them',
    registers: [registry],
    collect() {
      this.set(o.models.draining);
    },
  });
  const rejected = new Counter({
    name: 'requests_rejected_total',
    help: 'Scoring requests answered 503 because the queue was full',
    registers: [registry],
  });
  const queueDepth = new Gauge({
    name: 'scoring_queue_depth',
    help: 'Scoring requests admitted and not finished',
    registers: [registry],
  });
  const logErrors = new Counter({
    name: 'serving_log_errors_total',
    help: 'Failed writes to the serving log (predictions were still answered)',
    registers: [registry],
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unknown';
    latency.observe({ route, method: req.method, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    requests.inc({ route, method: req.method, status: String(reply.statusCode) });
  });

  // ---- auth ----
  // Liveness, readiness and the API docs (Swagger UI and its assets) are public; everything else needs a token.
  const open = new Set(['/ping', '/health', '/openapi.json', '/docs']);
  const isOpen = (url: string) => open.has(url) || url.startsWith('/docs/');
  app.addHook('onRequest', async (req, reply) => {
    if (o.tokens.length === 0 || isOpen(req.url.split('?')[0]!)) return;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(header);
    if (!m)
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send({ error: 'Unauthorized', message: 'Missing bearer token: send "Authorization: Bearer <token>"' });
    if (!tokenMatches(m[1]!.trim(), o.tokens))
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer error="invalid_token"')
        .send({ error: 'Unauthorized', message: 'Invalid bearer token' });
  });

  // ---- errors: always a clear JSON 4xx for bad input, never a crash ----
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; issues?: unknown }, _req, reply) => {
    if (err instanceof HttpError && err.statusCode === 503)
      return reply.code(503).header('retry-after', '1').send({ error: 'Service Unavailable', message: err.message });
    if (err instanceof HttpError)
      return reply.code(err.statusCode).send({
        error: err.statusCode === 413 ? 'Payload Too Large' : 'Bad Request',
        message: err.message,
        ...(err.issues ? { issues: err.issues } : {}),
      });
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return reply.code(413).send({
        error: 'Payload Too Large',
        message: `Body over ${o.bodyLimitBytes} bytes; send fewer texts per request`,
      });
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
      return reply.code(415).send({ error: 'Unsupported Media Type', message: 'Send Content-Type: application/json' });
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500)
      return reply.code(err.statusCode).send({
        error: 'Bad Request',
        message: err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'Empty JSON body' : `Invalid request: ${err.message}`,
      });
    app.log.error(err);
    return reply.code(500).send({ error: 'Internal Server Error', message: 'Prediction failed; see the server log' });
  });

  // ---- scoring ----
  // One batcher per served model, so a batch never mixes requests that started on different versions.
  const batchers = new WeakMap<ServedModel, MicroBatcher<string | FeatureRecord>>();
  const batcherFor = (model: ServedModel): MicroBatcher<string | FeatureRecord> => {
    let b = batchers.get(model);
    if (!b) {
      const p = model.predictor;
      b = new MicroBatcher<string | FeatureRecord>(async (items) => {
        batchSizes.observe(items.length);
        // A model's batcher only ever receives its own input kind (see inputsFor).
        if (p.input === 'text' && p.scope) {
          const v = await p.scope.judge(items as readonly string[]);
          return { probs: v.probs, width: p.labels.length, scopeScores: v.scores };
        }
        const probs =
          p.input === 'text'
            ? await p.predictProba(items as readonly string[])
            : await p.predictProba(items as readonly FeatureRecord[]);
        return { probs, width: p.labels.length };
      }, o.batching);
      batchers.set(model, b);
    }
    return b;
  };
  const servingLog = o.servingLogDir
    ? new ServingLogWriter(o.servingLogDir, (err) => {
        logErrors.inc();
        app.log.error(`serving log write failed: ${err.message}`);
      })
    : undefined;
  // Tabular rows that could not be scored, beside the predictions: monitoring reads their missing columns.
  const rejectedLog = o.servingLogDir
    ? new ServingLogWriter(
        o.servingLogDir,
        (err) => {
          logErrors.inc();
          app.log.error(`rejected-rows log write failed: ${err.message}`);
        },
        'rejected',
      )
    : undefined;
  app.addHook('onClose', async () => {
    await servingLog?.close();
    await rejectedLog?.close();
  });

  function checkTexts(texts: string[]): void {
    if (texts.length === 0) throw new HttpError(400, 'No texts given');
    if (texts.length > o.maxBatchTexts)
      throw new HttpError(
        413,
        `${texts.length} texts in one request; the limit is ${o.maxBatchTexts}. Split the batch.`,
      );
    const issues = texts.flatMap((t, i) =>
      t.trim() === ''
        ? [{ path: `texts.${i}`, message: 'empty text' }]
        : t.length > o.maxTextChars
          ? [{ path: `texts.${i}`, message: `${t.length} characters, over the ${o.maxTextChars} limit` }]
          : [],
    );
    if (issues.length)
      throw new HttpError(
        400,
        `Invalid texts: ${issues
          .slice(0, 5)
          .map((i) => `${i.path}: ${i.message}`)
          .join('; ')}`,
        issues,
      );
  }

  function checkCount(n: number): void {
    if (n === 0) throw new HttpError(400, 'No records given');
    if (n > o.maxBatchTexts)
      throw new HttpError(413, `${n} records in one request; the limit is ${o.maxBatchTexts}. Split the batch.`);
  }

  /** Reads a request body as the inputs of `model`'s kind (texts or records), validated. */
  function inputsFor(model: ServedModel, body: unknown, route: '/predict' | '/invocations'): ScoreInputs {
    const p = model.predictor;
    if (p.input === 'text') {
      let texts: string[];
      if (route === '/invocations') texts = invocationTexts(body);
      else {
        const parsed = PredictSchema.safeParse(body);
        if (!parsed.success) throw new HttpError(400, 'Body must be {"texts": ["...", ...]}', issuesOf(parsed.error));
        texts = parsed.data.texts;
      }
      checkTexts(texts);
      return { kind: 'text', texts };
    }
    let rows: RowAt[];
    if (route === '/invocations') rows = invocationRows(body);
    else {
      const parsed = PredictRecordsSchema.safeParse(body);
      if (!parsed.success)
        throw new HttpError(
          400,
          `This model scores records: the body must be {"records": [{${p.columns
            .slice(0, 2)
            .map((c) => `"${c.name}": ...`)
            .join(', ')}, ...}]}`,
          issuesOf(parsed.error),
        );
      rows = parsed.data.records.map((value, i) => ({ value, where: `records[${i}]` }));
    }
    checkCount(rows.length);
    const ts = new Date().toISOString();
    return {
      kind: 'record',
      ...parseRecords(p, rows, (issues) =>
        rejectedLog?.write([{ ts, route, model: model.name, version: model.version, issues }]),
      ),
    };
  }

  let admitted = 0;
  async function score(body: unknown, route: '/predict' | '/invocations') {
    if (!o.models.loaded) throw new HttpError(503, 'No model loaded yet');
    if (admitted >= o.maxQueue) {
      rejected.inc();
      throw new HttpError(503, `Server busy: ${admitted} requests in progress (limit ${o.maxQueue}); retry shortly`);
    }
    admitted++;
    queueDepth.set(admitted);
    try {
      // The request runs on the model current now, which stays loaded until it is done, even across a swap.
      // Parsed against that model's inputs, so a request never mixes a text body with a tabular model.
      return await o.models.use((model) => scoreOn(model, inputsFor(model, body, route), route));
    } finally {
      admitted--;
      queueDepth.set(admitted);
    }
  }

  async function scoreOn(model: ServedModel, inputs: ScoreInputs, route: string) {
    const t0 = performance.now();
    const texts = inputs.kind === 'text' ? inputs.texts : [];
    const rows = await batcherFor(model).submit(
      inputs.kind === 'record' ? inputs.records : o.preprocess ? texts.map(o.preprocess) : texts,
    );
    const ms = performance.now() - t0;
    const labels = model.predictor.labels;
    const scope = model.predictor.input === 'text' ? model.predictor.scope : undefined;
    const pos = o.positiveLabel !== undefined ? labels.indexOf(o.positiveLabel) : -1;
    const out = rows.map(({ probs: row, scopeScore }, i) => {
      const best = argmaxRows(row, row.length)[0]!;
      const probabilities = Object.fromEntries(labels.map((l, c) => [l, Number(row[c]!.toFixed(6))]));
      const id = inputs.kind === 'record' ? inputs.ids[i] : undefined;
      // A model without an out-of-scope rule (tabular, or saved before scope.json) keeps every input in scope.
      const inScope = scope === undefined || scopeScore === undefined || scopeScore >= scope.threshold;
      return {
        ...(id !== undefined ? { id } : {}),
        label: inScope ? labels[best]! : scope!.fallbackLabel,
        top_label: labels[best]!,
        confidence: Number(row[best]!.toFixed(6)),
        in_scope: inScope,
        probabilities,
        ...(pos >= 0 ? { bucket: churnBucket(row[pos]!, o.buckets) } : {}),
      };
    });
    for (const p of out) {
      predictions.inc({ model: model.name, version: model.version, label: p.label });
      scoped.inc({ model: model.name, version: model.version, in_scope: String(p.in_scope) });
      countScope(p.in_scope);
    }
    if (servingLog) {
      const ts = new Date().toISOString();
      // in_scope is logged only where a rule judged it, so monitoring's out-of-scope share never counts
      // models (churn, tabular, older ones) that keep every input in scope by construction.
      const judged = scope !== undefined && scope.score !== 'none';
      const records: (ServingRecord & { text_chars?: number })[] = out.map(({ in_scope, ...p }, i) => ({
        ts,
        route,
        model: model.name,
        version: model.version,
        ...(inputs.kind === 'text'
          ? {
              text_sha256: createHash('sha256').update(texts[i]!).digest('hex'),
              text: maskPii(texts[i]!),
              text_chars: texts[i]!.length,
            }
          : { features: { ...inputs.records[i]! }, ...(p.id !== undefined ? { record_id: p.id } : {}) }),
        ...p,
        ...(judged ? { in_scope } : {}),
        latency_ms: Number(ms.toFixed(2)),
      }));
      servingLog.write(records);
    }
    return { model, out };
  }

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Conversation classifier',
        version: o.appVersion ?? '0.1.0',
        description:
          "Scores customer-service texts with the registry's champion model. Send `Authorization: Bearer <token>` " +
          '(tokens: SERVE_TOKENS or .cache/serve-token) to every route but /ping, /health and these docs.',
      },
      tags: [
        { name: 'scoring', description: 'Predictions' },
        { name: 'model', description: 'What is served' },
        { name: 'operations', description: 'Liveness, readiness and Prometheus metrics' },
      ],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  const PredictResponse = z.object({
    model: z.object({ name: z.string(), version: z.string() }),
    predictions: z.array(
      z.object({
        id: z.string().optional().describe("tabular models: the record's id column, when sent"),
        label: z
          .string()
          .describe('the top label when in scope, else the fallback label (default out_of_scope: route to a human)'),
        top_label: z.string().describe("the model's most probable class, also when the input is out of scope"),
        confidence: z
          .number()
          .describe('calibrated probability of top_label (temperature scaling fitted on validation)'),
        in_scope: z
          .boolean()
          .describe(
            "false when the model's out-of-scope score is below its threshold (saved with the model, or the " +
              "deployment's SCOPE_THRESHOLD)",
          ),
        probabilities: z.record(z.string(), z.number()).describe('calibrated class probabilities'),
        bucket: z.enum(['A', 'B', 'C']).optional(),
      }),
    ),
  });
  const ErrorResponse = z.object({
    error: z.string(),
    message: z.string(),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  });
  const errorJson = (description: string) => ({ description, ...z.toJSONSchema(ErrorResponse) });
  const errors = {
    400: errorJson('Invalid input (the message names the bad item)'),
    401: errorJson('Missing or invalid bearer token'),
    413: errorJson('Body over 1 MB or more texts than the per-request limit'),
    503: errorJson('No model loaded yet, or the scoring queue is full (retry after Retry-After seconds)'),
  };
  const example = { texts: ['my card was declined at the shop', 'how do I close my account?'] };
  const recordsExample = {
    records: [{ customerID: '7590-VHVEG', tenure: 1, Contract: 'Month-to-month', MonthlyCharges: 29.85, '...': '...' }],
  };
  const predictExample = {
    model: { name: 'support-category', version: '3' },
    predictions: [
      {
        label: 'card',
        top_label: 'card',
        confidence: 0.93,
        in_scope: true,
        probabilities: { card: 0.93, account: 0.04, payments: 0.03 },
      },
      {
        label: 'out_of_scope',
        top_label: 'account',
        confidence: 0.41,
        in_scope: false,
        probabilities: { card: 0.27, account: 0.41, payments: 0.32 },
      },
    ],
  };

  app.get(
    '/ping',
    { schema: { tags: ['operations'], summary: 'Liveness', description: 'Always "pong" (no auth)', security: [] } },
    async () => 'pong\n',
  );
  app.get(
    '/health',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness',
        description: '200 once a model is loaded, 503 before (no auth)',
        security: [],
      },
    },
    async (_req, reply) =>
      o.models.loaded
        ? { status: 'ok', model: { name: o.models.model.name, version: o.models.model.version, alias: o.models.alias } }
        : reply.code(503).send({ status: 'loading' }),
  );
  app.get(
    '/version',
    {
      schema: {
        tags: ['model'],
        summary: 'Served model',
        description: 'Registered model name, alias, version, run id and flavor of the model answering now',
        response: { 401: errors[401], 503: errors[503] },
      },
    },
    async () => {
      if (!o.models.loaded) throw new HttpError(503, 'No model loaded yet');
      const m = o.models.model;
      const scope = m.predictor.input === 'text' ? m.predictor.scope : undefined;
      return {
        app: o.appVersion ?? '0.1.0',
        model: {
          name: m.name,
          alias: m.alias,
          version: m.version,
          run_id: m.runId,
          flavor: m.predictor.flavor,
          loaded_at: m.loadedAt,
        },
        ...(scope
          ? {
              scope: {
                score: scope.score,
                temperature: scope.temperature,
                threshold: scope.threshold,
                model_threshold: scope.modelThreshold,
                overridden: scope.threshold !== scope.modelThreshold,
                validation_recall: scope.recall,
                fallback_label: scope.fallbackLabel,
              },
            }
          : {}),
      };
    },
  );
  app.post(
    '/predict',
    {
      schema: {
        tags: ['scoring'],
        summary: 'Classify texts or records',
        description:
          "Label and class probabilities per text (cleaned with the task's rules first), or per record for a " +
          'tabular model (its feature columns, checked against the model signature; a wrong or missing column is a ' +
          '400 that names it). Churn tasks also get an action bucket (A: p >= 0.7, call them; B: p >= 0.4, offer ' +
          'a discount; C: retained). Every prediction carries `confidence` (calibrated probability of its top ' +
          'label) and `in_scope`: a text the model judges to belong to none of its classes gets the fallback label ' +
          '(default `out_of_scope`, route it to a human) and keeps its `top_label`. At most 256 texts or records.',
        body: {
          ...z.toJSONSchema(z.union([PredictSchema, PredictRecordsSchema])),
          examples: [example, recordsExample],
        },
        response: { 200: { ...z.toJSONSchema(PredictResponse), examples: [predictExample] }, ...errors },
      },
    },
    async (req: FastifyRequest) => {
      const { model, out } = await score(req.body, '/predict');
      return { model: { name: model.name, version: model.version }, predictions: out };
    },
  );
  app.post(
    '/invocations',
    {
      schema: {
        tags: ['scoring'],
        summary: "MLflow's scoring protocol",
        description:
          'The request formats of `mlflow models serve`: dataframe_split, dataframe_records, instances or inputs. ' +
          'Text models: one text per row (a string, or an object with a "text" field). Tabular models: one record ' +
          'per row with the feature columns of the model signature. Answers {"predictions": [...]}, each with the ' +
          'same fields as /predict: label (the fallback label when out of scope), top_label, confidence, in_scope.',
        body: {
          ...z.toJSONSchema(InvocationsSchema),
          examples: [
            { dataframe_split: { columns: ['text'], data: [['my card was declined']] } },
            { inputs: ['hello'] },
            { dataframe_records: [{ tenure: 1, Contract: 'Month-to-month', MonthlyCharges: 29.85, '...': '...' }] },
          ],
        },
        response: { 200: z.toJSONSchema(z.object({ predictions: PredictResponse.shape.predictions })), ...errors },
      },
    },
    async (req: FastifyRequest) => {
      const { out } = await score(req.body, '/invocations');
      return { predictions: out };
    },
  );
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics',
        description: 'Latency, requests, predictions by model version and class, reloads, queue, serving-log errors',
        response: { 401: errors[401] },
      },
    },
    async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  );
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
