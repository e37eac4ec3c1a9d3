/**
 * The model server (Fastify): MLflow's scoring protocol on /invocations, a friendlier /predict with
 * churn action buckets, /ping, /health, /version, Prometheus /metrics, OpenAPI at /openapi.json and
 * docs at /docs. Every route but /ping, /health and the docs needs a bearer token. Inputs are validated
 * with zod and rejected with a clear 4xx; concurrent requests are micro-batched; every prediction is
 * appended (text hashed and PII-masked) to the serving log that monitoring reads.
 *
 * This module only composes the plugins: api-docs, metrics, status-routes, auth, scoring (with inputs),
 * and the root error handler of errors.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { DEFAULT_BUCKETS, type BucketThresholds } from '../kinds/churn-bucket';
import { apiDocs } from './api-docs';
import { bearerAuth, checkTokens } from './auth';
import type { BatcherOptions } from './batcher';
import type { ModelSource } from './champion';
import { serveErrorHandler } from './errors';
import { metricsRoute, serveMetrics, type SliceReader } from './metrics';
import { scoringRoutes } from './scoring';
import { healthRoutes, versionRoute } from './status-routes';

export interface ServeOptions {
  models: ModelSource;
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
  /** Days of serving-log files kept; older day files are deleted as a new day starts (undefined: all kept). */
  servingLogRetentionDays?: number;
  /** Scoring requests admitted at once (running or waiting for the model); more get 503 + Retry-After. */
  maxQueue?: number;
  appVersion?: string;
  logger?: boolean;
  /** The production slice of the served model's task, for /metrics (production_accuracy). */
  readSlice?: SliceReader;
}

const DEFAULTS = {
  maxQueue: 256,
  maxBatchTexts: 256,
  maxTextChars: 20_000,
  bodyLimitBytes: 1_000_000,
  buckets: DEFAULT_BUCKETS,
  batching: { maxBatch: 64, maxWaitMs: 5 },
  appVersion: '0.1.0',
};

/**
 * The accept queue to ask the kernel for. While a CPU-bound model holds the event loop, new connections wait
 * there; Node's default of 511 reset 48 of 2,000 concurrent clients against a BERT champion. The kernel caps
 * it at net.core.somaxconn (4096 on current Linux).
 */
export const LISTEN_BACKLOG = 4096;

export async function buildApp(opts: ServeOptions): Promise<FastifyInstance> {
  const o = {
    ...DEFAULTS,
    ...opts,
    buckets: { ...DEFAULTS.buckets, ...opts.buckets },
    batching: { ...DEFAULTS.batching, ...opts.batching },
    appVersion: opts.appVersion ?? DEFAULTS.appVersion,
  };
  if (o.tokens.length === 0 && !o.allowNoAuth)
    throw new Error('No bearer tokens configured (SERVE_TOKENS or SERVE_TOKEN_FILE); refusing to serve without auth.');
  checkTokens(o.tokens);
  const app = Fastify({ logger: o.logger ?? false, bodyLimit: o.bodyLimitBytes });
  // Validation is zod's (in the handlers), for one path with precise messages; route schemas feed OpenAPI.
  app.setValidatorCompiler(() => (data) => ({ value: data }));
  app.setErrorHandler(serveErrorHandler(o.bodyLimitBytes));
  app.decorate('models', o.models);

  // Root-level, so they see every route below: swagger's onRoute hook and the request metrics.
  await app.register(apiDocs, { appVersion: o.appVersion });
  await app.register(serveMetrics, o.readSlice ? { readSlice: o.readSlice } : {});

  await app.register(healthRoutes);
  // The protected context: the auth hook guards exactly the routes registered beside it.
  await app.register(async (api) => {
    await api.register(bearerAuth, { tokens: o.tokens });
    await api.register(versionRoute, { appVersion: o.appVersion });
    await api.register(scoringRoutes, o);
    await api.register(metricsRoute);
  });
  return app;
}
