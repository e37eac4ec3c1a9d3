/**
 * The API's own documentation, public: the OpenAPI document (/openapi.json) and Swagger UI (/docs).
 */
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';

const apiDocsPlugin: FastifyPluginAsync<{ appVersion: string }> = async (app, { appVersion }) => {
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Conversation classifier',
        version: appVersion,
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
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
};

/**
 * fastify-plugin keeps swagger on the root instance, where its onRoute hook sees the routes of every
 * context; register it before them.
 */
export const apiDocs = fp(apiDocsPlugin, { name: 'api-docs', fastify: '5.x' });
