/**
 * Prometheus metrics of the server: request latency and counts for every route, predictions by model
 * version, class and scope, micro-batch sizes, the scoring queue, hot reloads and serving-log faults.
 * `serveMetrics` owns the registry (the `metrics` decorator); `metricsRoute` exposes it on /metrics.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SliceEstimate } from '../feedback/slice';
import type { ModelSource, ServedModel } from './champion';
import { errorResponses } from './errors';

/** What the rest of the server records; the registry itself is read only by /metrics. */
export interface ServeMetrics {
  registry: Registry;
  /** One model call of `size` inputs (micro-batching). */
  observeBatch(size: number): void;
  /** The predictions one request got from `model`. */
  countPredictions(model: ServedModel, predictions: readonly { label: string; in_scope: boolean }[]): void;
  /** A scoring request answered 503 because the queue was full. */
  countRejected(): void;
  setQueueDepth(admitted: number): void;
  countServingLogError(): void;
}

/** The `metrics` decorator, checked at boot: a plugin that reads it fails to register without serveMetrics. */
export const metricsOf = (app: FastifyInstance) => app.getDecorator<ServeMetrics>('metrics');

/** Reads the production slice's estimates (make review-import writes it); called at most once a minute. */
export type SliceReader = () => SliceEstimate[];

function createMetrics(models: ModelSource, readSlice?: SliceReader) {
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
      const m = models.loaded ? models.model : undefined;
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
    name: 'registry_reachable',
    help: '1 while the model registry answers; 0 while the server serves on without it (its cached champion)',
    labelNames: ['served_from'],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ served_from: models.registry.servedFrom }, Number(models.registry.reachable));
    },
  });
  // What reviewers found on the traffic each version served (the production slice): share and 95% bounds.
  let slice: { at: number; estimates: SliceEstimate[] } = { at: 0, estimates: [] };
  const estimates = () => {
    if (readSlice && Date.now() - slice.at > 60_000) {
      try {
        slice = { at: Date.now(), estimates: readSlice() };
      } catch {
        slice = { ...slice, at: Date.now() }; // a half-written or missing file: keep the last good reading
      }
    }
    return slice.estimates;
  };
  for (const [name, pick, help] of [
    ['production_accuracy', (e: SliceEstimate) => e.accuracy, 'right answers (queue, or out of scope)'],
    ['production_in_scope_kept', (e: SliceEstimate) => e.inScopeKept, 'in-scope queries kept by the scope rule'],
  ] as const)
    new Gauge({
      name,
      help: `Production slice (reviewed random sample of served traffic): share of ${help}, with 95% bounds`,
      labelNames: ['model', 'version', 'bound'],
      registers: [registry],
      collect() {
        this.reset();
        for (const e of estimates()) {
          const s = pick(e);
          if (s.n === 0) continue;
          for (const [bound, v] of [
            ['share', s.share],
            ['lower', s.lower],
            ['upper', s.upper],
          ] as const)
            this.set({ model: models.name, version: e.version, bound }, v);
        }
      },
    });
  new Gauge({
    name: 'model_version',
    help: 'Registry version of the served model',
    labelNames: ['name', 'alias'],
    registers: [registry],
    collect() {
      if (models.loaded) this.set({ name: models.name, alias: models.alias }, Number(models.model.version));
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
  followCount('model_reloads_total', 'Hot reloads since start', () => models.reloads);
  followCount(
    'model_releases_total',
    'Replaced models whose sessions were released after their last request',
    () => models.releases,
  );
  new Gauge({
    name: 'models_draining',
    help: 'Replaced models still finishing requests that started on them',
    registers: [registry],
    collect() {
      this.set(models.draining);
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

  const metrics: ServeMetrics = {
    registry,
    observeBatch: (size) => batchSizes.observe(size),
    countPredictions(model, out) {
      for (const p of out) {
        predictions.inc({ model: model.name, version: model.version, label: p.label });
        scoped.inc({ model: model.name, version: model.version, in_scope: String(p.in_scope) });
        countScope(p.in_scope);
      }
    },
    countRejected: () => rejected.inc(),
    setQueueDepth: (admitted) => queueDepth.set(admitted),
    countServingLogError: () => logErrors.inc(),
  };
  return { metrics, latency, requests };
}

/**
 * The registry and the request metrics of every route, public ones included: fastify-plugin puts the
 * decorator and the onResponse hook on the root instance.
 */
export const serveMetrics = fp<{ readSlice?: SliceReader }>(
  async (app, o) => {
    const { metrics, latency, requests } = createMetrics(app.getDecorator<ModelSource>('models'), o.readSlice);
    app.decorate('metrics', metrics);
    app.addHook('onResponse', async (req, reply) => {
      const route = req.routeOptions.url ?? 'unknown';
      latency.observe({ route, method: req.method, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
      requests.inc({ route, method: req.method, status: String(reply.statusCode) });
    });
  },
  { name: 'serve-metrics', fastify: '5.x', decorators: { fastify: ['models'] } },
);

/** GET /metrics, for Prometheus (behind auth: register it in the protected context). */
export const metricsRoute: FastifyPluginAsync = async (app) => {
  const { registry } = metricsOf(app);
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics',
        description: 'Latency, requests, predictions by model version and class, reloads, queue, serving-log errors',
        response: { 401: errorResponses[401] },
      },
    },
    async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  );
};
