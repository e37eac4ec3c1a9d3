/**
 * What is running: liveness (/ping) and readiness (/health) for orchestrators, public; and the served
 * model's identity (/version), for clients, behind auth.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ModelSource } from './champion';
import { errorResponses, ServeError } from './errors';

const registryJson = (models: ModelSource) => ({
  reachable: models.registry.reachable,
  served_from: models.registry.servedFrom,
  ...(models.registry.unreachableSince ? { unreachable_since: models.registry.unreachableSince } : {}),
  ...(models.failing
    ? {
        failing_version: {
          version: models.failing.version,
          error: models.failing.error,
          attempts: models.failing.attempts,
          retry_at: models.failing.retryAt,
        },
      }
    : {}),
});

/** GET /ping and /health: public (register them outside the protected context). */
export const healthRoutes: FastifyPluginAsync = async (app) => {
  const models = app.getDecorator<ModelSource>('models');
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
        description:
          '200 once a model is loaded, 503 before (no auth); `registry` says whether the model is the ' +
          "registry's current answer or the cached champion served while MLflow is unreachable",
        security: [],
      },
    },
    async (_req, reply) =>
      models.loaded
        ? {
            status: 'ok',
            model: { name: models.model.name, version: models.model.version, alias: models.alias },
            registry: registryJson(models),
          }
        : reply.code(503).send({ status: 'loading' }),
  );
};

/** GET /version: the model answering now, with its out-of-scope rule when it has one. */
export const versionRoute: FastifyPluginAsync<{ appVersion: string }> = async (app, { appVersion }) => {
  const models = app.getDecorator<ModelSource>('models');
  app.get(
    '/version',
    {
      schema: {
        tags: ['model'],
        summary: 'Served model',
        description: 'Registered model name, alias, version, run id and flavor of the model answering now',
        response: { 401: errorResponses[401], 503: errorResponses[503] },
      },
    },
    async () => {
      if (!models.loaded) throw new ServeError('MLOPS_ERR_NO_MODEL', 'No model loaded yet');
      const m = models.model;
      const scope = m.predictor.input === 'text' ? m.predictor.scope : undefined;
      return {
        app: appVersion,
        model: {
          name: m.name,
          alias: m.alias,
          version: m.version,
          run_id: m.runId,
          flavor: m.predictor.flavor,
          loaded_at: m.loadedAt,
        },
        registry: registryJson(models),
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
};
