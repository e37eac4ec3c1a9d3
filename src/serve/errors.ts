/**
 * The server's errors: coded like Fastify's own (`FST_ERR_*`), each code with its status, and the one
 * root error handler that turns them, and Fastify's, into the JSON bodies clients read. Bad input is
 * always a clear 4xx, never a crash; anything else is logged and masked as a 500.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';

/** One problem of a request, named by its place in the body (`texts.3`, `records[0].tenure`). */
export interface Issue {
  path: string;
  message: string;
}

const STATUS = {
  /** The body is not what the route and the served model take; the message names the bad item. */
  MLOPS_ERR_INVALID_INPUT: 400,
  /** More texts or records in one request than the per-request limit. */
  MLOPS_ERR_TOO_MANY_INPUTS: 413,
  /** Started, but no model loaded yet. */
  MLOPS_ERR_NO_MODEL: 503,
  /** The scoring queue is full. */
  MLOPS_ERR_BUSY: 503,
} as const;

export type ServeErrorCode = keyof typeof STATUS;

export class ServeError extends Error {
  readonly statusCode: (typeof STATUS)[ServeErrorCode];

  constructor(
    readonly code: ServeErrorCode,
    message: string,
    readonly issues?: Issue[],
  ) {
    super(message);
    this.name = 'ServeError';
    this.statusCode = STATUS[code];
  }
}

export const invalidInput = (message: string, issues?: Issue[]) =>
  new ServeError('MLOPS_ERR_INVALID_INPUT', message, issues);

/** The root error handler: set once on the root instance, so every plugin's routes answer alike. */
export function serveErrorHandler(bodyLimitBytes: number) {
  return function handle(
    this: FastifyInstance,
    err: FastifyError | ServeError | Error,
    _req: FastifyRequest,
    reply: FastifyReply,
  ) {
    if (err instanceof ServeError) {
      // 503s are transient (loading, busy): tell clients when to come back.
      if (err.statusCode === 503)
        return reply.code(503).header('retry-after', '1').send({ error: 'Service Unavailable', message: err.message });
      return reply.code(err.statusCode).send({
        error: err.statusCode === 413 ? 'Payload Too Large' : 'Bad Request',
        message: err.message,
        ...(err.issues ? { issues: err.issues } : {}),
      });
    }
    const { code, statusCode } = err as FastifyError;
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return reply.code(413).send({
        error: 'Payload Too Large',
        message: `Body over ${bodyLimitBytes} bytes; send fewer texts per request`,
      });
    if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
      return reply.code(415).send({ error: 'Unsupported Media Type', message: 'Send Content-Type: application/json' });
    if (statusCode && statusCode >= 400 && statusCode < 500)
      return reply.code(statusCode).send({
        error: 'Bad Request',
        message: code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'Empty JSON body' : `Invalid request: ${err.message}`,
      });
    this.log.error(err);
    return reply.code(500).send({ error: 'Internal Server Error', message: 'Prediction failed; see the server log' });
  };
}

// ---- OpenAPI: the error bodies routes declare ----

const ErrorResponse = z.object({
  error: z.string(),
  message: z.string(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});
const errorJson = (description: string) => ({ description, ...z.toJSONSchema(ErrorResponse) });

export const errorResponses = {
  400: errorJson('Invalid input (the message names the bad item)'),
  401: errorJson('Missing or invalid bearer token'),
  413: errorJson('Body over 1 MB or more texts than the per-request limit'),
  503: errorJson('No model loaded yet, or the scoring queue is full (retry after Retry-After seconds)'),
};
