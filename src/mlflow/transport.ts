/**
 * HTTP transport to an MLflow server over one keep-alive undici Pool: JSON requests parsed with
 * zod, streamed uploads/downloads, and retries with exponential backoff and full jitter on
 * network errors, 429 and 5xx. Errors come out typed (MlflowApiError with MLflow's error_code,
 * or MlflowUnavailableError once retries are exhausted).
 */
import type { Readable } from 'node:stream';
import { Pool, errors as undiciErrors, type Dispatcher } from 'undici';
import type { z } from 'zod';
import { MlflowApiError, MlflowUnavailableError } from './errors';
import { ErrorBodySchema } from './schemas';

export interface RetryPolicy {
  /** Attempts after the first one. */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 4, baseDelayMs: 250, maxDelayMs: 4000 };

export interface TransportOptions {
  retry?: Partial<RetryPolicy>;
  /** Per-request timeout for headers and body (ms). */
  timeoutMs?: number;
  /** Extra headers on every request, e.g. authorization for a shared server. */
  headers?: Record<string, string>;
  connections?: number;
}

type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT';

/** Delay before retry `attempt` (1-based): full jitter over an exponentially growing cap. */
export function backoffDelay(attempt: number, p: RetryPolicy, random: () => number = Math.random): number {
  const cap = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(cap / 2 + (random() * cap) / 2);
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

function isNetworkError(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  return (
    err instanceof undiciErrors.UndiciError ||
    NETWORK_CODES.has(e?.code ?? '') ||
    NETWORK_CODES.has(e?.cause?.code ?? '')
  );
}

export class Transport {
  readonly baseUrl: string;
  private readonly pool: Pool;
  private readonly retry: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;

  constructor(baseUrl: string, opts: TransportOptions = {}) {
    const url = new URL(baseUrl);
    this.baseUrl = url.origin + url.pathname.replace(/\/+$/, '');
    this.pool = new Pool(url.origin, { connections: opts.connections ?? 8, keepAliveTimeout: 30_000 });
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.timeoutMs = opts.timeoutMs ?? 120_000;
    this.headers = opts.headers ?? {};
  }

  private path(endpoint: string): string {
    return new URL(this.baseUrl).pathname.replace(/\/+$/, '') + endpoint;
  }

  /**
   * Runs `attempt` with the retry policy. For a call that is not idempotent, `recover` is asked
   * before each retry whether the failed attempt was processed after all (its response lost on the
   * way back); what it finds is returned instead of sending the call a second time.
   */
  private async withRetries<T>(
    endpoint: string,
    attempt: () => Promise<T>,
    retry: RetryPolicy,
    recover?: () => Promise<T | undefined>,
  ): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await attempt();
      } catch (err) {
        const transient = isNetworkError(err) || (err instanceof MlflowApiError && err.retryable);
        if (!transient) throw err;
        if (i >= retry.retries)
          throw err instanceof MlflowApiError ? err : new MlflowUnavailableError(`${this.baseUrl}${endpoint}`, err);
        await new Promise((r) => setTimeout(r, backoffDelay(i + 1, retry)));
        if (recover) {
          const found = await recover().catch(() => undefined); // still unreachable: the retry decides
          if (found !== undefined) return found;
        }
      }
    }
  }

  private async raiseForStatus(res: Dispatcher.ResponseData, endpoint: string): Promise<void> {
    if (res.statusCode < 400) return;
    const text = await res.body.text();
    let code = `HTTP_${res.statusCode}`;
    let message = text.slice(0, 2000);
    try {
      const parsed = ErrorBodySchema.parse(JSON.parse(text));
      code = parsed.error_code;
      message = parsed.message;
    } catch {
      /* not an MLflow error body (a proxy's HTML page, say) */
    }
    throw new MlflowApiError(res.statusCode, code, endpoint, message);
  }

  /**
   * A JSON call to `/api/2.0/...`; GET sends `body` as query parameters. A POST that creates
   * something must pass `recover` (see withRetries): it returns the created object's response
   * body when the server already has it.
   */
  async json<S extends z.ZodType>(
    method: HttpMethod,
    endpoint: string,
    body: Record<string, unknown> | undefined,
    schema: S,
    opts: { retry?: Partial<RetryPolicy>; recover?: () => Promise<unknown> } = {},
  ): Promise<z.output<S>> {
    const retry = { ...this.retry, ...opts.retry };
    let reqPath = this.path(endpoint);
    if (method === 'GET' && body) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(body)) {
        if (v === undefined) continue;
        for (const item of Array.isArray(v) ? v : [v]) qs.append(k, String(item));
      }
      reqPath += `?${qs.toString()}`;
    }
    const payload = method === 'GET' || body === undefined ? undefined : JSON.stringify(body);
    const raw = await this.withRetries(
      endpoint,
      async () => {
        const res = await this.pool.request({
          method,
          path: reqPath,
          headers: { ...this.headers, ...(payload ? { 'content-type': 'application/json' } : {}) },
          body: payload,
          headersTimeout: this.timeoutMs,
          bodyTimeout: this.timeoutMs,
        });
        await this.raiseForStatus(res, endpoint);
        const text = await res.body.text();
        return text.length ? (JSON.parse(text) as unknown) : {};
      },
      retry,
      opts.recover,
    );
    const parsed = schema.safeParse(raw);
    if (!parsed.success)
      throw new MlflowApiError(
        200,
        'UNEXPECTED_RESPONSE',
        endpoint,
        `response did not match the expected shape: ${parsed.error.message}`,
      );
    return parsed.data;
  }

  /** Streams a body (made fresh per attempt, so retries resend from the start) with PUT. */
  async upload(endpoint: string, makeBody: () => Readable, size: number): Promise<void> {
    await this.withRetries(
      endpoint,
      async () => {
        const res = await this.pool.request({
          method: 'PUT',
          path: this.path(endpoint),
          headers: { ...this.headers, 'content-type': 'application/octet-stream', 'content-length': String(size) },
          body: makeBody(),
          headersTimeout: this.timeoutMs,
          bodyTimeout: this.timeoutMs,
        });
        await this.raiseForStatus(res, endpoint);
        await res.body.dump();
      },
      this.retry,
    );
  }

  /** GET whose body is streamed to `sink` (called per attempt). */
  async download(endpoint: string, sink: (body: Readable) => Promise<void>): Promise<void> {
    await this.withRetries(
      endpoint,
      async () => {
        const res = await this.pool.request({
          method: 'GET',
          path: this.path(endpoint),
          headers: this.headers,
          headersTimeout: this.timeoutMs,
          bodyTimeout: this.timeoutMs,
        });
        await this.raiseForStatus(res, endpoint);
        await sink(res.body);
      },
      this.retry,
    );
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
