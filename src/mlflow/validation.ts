/**
 * Client-side checks mirroring the MLflow server's own (mlflow/utils/validation.py), so a bad
 * metric, param or tag fails with the field's name before any request is sent, and batch
 * splitting that keeps every request inside the server's log-batch limits.
 */
import path from 'node:path';
import { MlflowValidationError } from './errors';
import type { Metric, Param, RunTag } from './schemas';

/** The server's limits (MLflow 3.x). */
export const LIMITS = {
  maxKeyLength: 250,
  maxParamValueLength: 6000,
  maxTagValueLength: 8000,
  maxMetricsPerBatch: 1000,
  maxParamsPerBatch: 100,
  maxTagsPerBatch: 100,
  maxEntitiesPerBatch: 1000,
  /** The server rejects log-batch bodies over 1 MB; keep headroom for the envelope. */
  maxBatchBytes: 1_000_000 - 10_000,
} as const;

const VALID_NAME = /^[/\w.\- :]*$/;

export function validateKey(
  kind: 'metric' | 'param' | 'tag',
  key: unknown,
  field = `${kind} key`,
): asserts key is string {
  if (typeof key !== 'string' || key.length === 0)
    throw new MlflowValidationError(field, `${kind} key must be a non-empty string, got ${JSON.stringify(key)}`);
  if (key.length > LIMITS.maxKeyLength)
    throw new MlflowValidationError(
      field,
      `${kind} key "${key.slice(0, 40)}..." is ${key.length} characters; MLflow allows at most ${LIMITS.maxKeyLength}`,
    );
  if (!VALID_NAME.test(key)) {
    throw new MlflowValidationError(
      field,
      `${kind} key "${key}" has characters MLflow rejects; use only letters, digits, _ - . space / :`,
    );
  }
  // MLflow stores names as paths in some stores: a name must not normalise to another name.
  const norm = path.posix.normalize(key).replace(/\/+$/, '') || '.';
  if (norm !== key || norm === '.' || norm.startsWith('..') || norm.startsWith('/')) {
    throw new MlflowValidationError(
      field,
      `${kind} key "${key}" would resolve to the path "${norm}" (no leading or trailing "/", "//", "." or ".." ` +
        `segments)`,
    );
  }
}

/**
 * A label as one readable part of a metric key: lowercase words joined by `_`
 * ("Account & Security" -> "account_security"), so keys group and sort well in the UI.
 */
export function metricKeyPart(label: string): string {
  return (
    label
      .toLowerCase()
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .replace(/[^a-z0-9.]+/g, '_')
      .replace(/^_+|_+$/g, '') || 'blank'
  );
}

export function validateMetric(m: Metric, field = `metric "${m.key}"`): void {
  validateKey('metric', m.key, `${field}.key`);
  if (typeof m.value !== 'number' || !Number.isFinite(m.value)) {
    throw new MlflowValidationError(
      `${field}.value`,
      `metric "${m.key}" has value ${String(m.value)}; only finite numbers are logged (NaN/Infinity usually mean a ` +
        `diverged loss)`,
    );
  }
  if (!Number.isInteger(m.timestamp) || m.timestamp < 0)
    throw new MlflowValidationError(
      `${field}.timestamp`,
      `metric "${m.key}" timestamp must be a non-negative integer (ms since epoch)`,
    );
  if (!Number.isInteger(m.step))
    throw new MlflowValidationError(`${field}.step`, `metric "${m.key}" step must be an integer, got ${m.step}`);
}

export function validateParam(p: Param): void {
  validateKey('param', p.key, `param "${p.key}".key`);
  if (typeof p.value !== 'string')
    throw new MlflowValidationError(`param "${p.key}".value`, `param "${p.key}" value must be a string`);
  if (p.value.length > LIMITS.maxParamValueLength) {
    throw new MlflowValidationError(
      `param "${p.key}".value`,
      `param "${p.key}" value is ${p.value.length} characters; MLflow allows at most ${LIMITS.maxParamValueLength} ` +
        `(log long values as an artifact)`,
    );
  }
}

export function validateTag(t: RunTag): void {
  validateKey('tag', t.key, `tag "${t.key}".key`);
  if (typeof t.value !== 'string')
    throw new MlflowValidationError(`tag "${t.key}".value`, `tag "${t.key}" value must be a string`);
  if (t.value.length > LIMITS.maxTagValueLength) {
    throw new MlflowValidationError(
      `tag "${t.key}".value`,
      `tag "${t.key}" value is ${t.value.length} characters; MLflow allows at most ${LIMITS.maxTagValueLength}`,
    );
  }
}

export interface BatchPayload {
  metrics: Metric[];
  params: Param[];
  tags: RunTag[];
}

/** Validates everything in a batch; throws on the first problem, naming the field. */
export function validateBatch(b: Partial<BatchPayload>): BatchPayload {
  const metrics = b.metrics ?? [];
  const params = b.params ?? [];
  const tags = b.tags ?? [];
  metrics.forEach((m, i) => validateMetric(m, `metrics[${i}] "${m.key}"`));
  params.forEach(validateParam);
  tags.forEach(validateTag);
  const seen = new Map<string, string>();
  for (const p of params) {
    const prev = seen.get(p.key);
    if (prev !== undefined && prev !== p.value)
      throw new MlflowValidationError(
        `param "${p.key}"`,
        `param "${p.key}" is given twice with different values; params are immutable in MLflow`,
      );
    seen.set(p.key, p.value);
  }
  return { metrics, params, tags };
}

const jsonBytes = (x: unknown): number => Buffer.byteLength(JSON.stringify(x));

/**
 * Splits a batch into requests that each respect the server's count and size limits, keeping
 * the original order (params first, then tags, then metrics, as the server applies them).
 */
export function splitBatch(b: BatchPayload): BatchPayload[] {
  const out: BatchPayload[] = [];
  let cur: BatchPayload = { metrics: [], params: [], tags: [] };
  let bytes = 0;
  const flush = () => {
    if (cur.metrics.length + cur.params.length + cur.tags.length > 0) out.push(cur);
    cur = { metrics: [], params: [], tags: [] };
    bytes = 0;
  };
  const add = <K extends keyof BatchPayload>(kind: K, item: BatchPayload[K][number], max: number) => {
    const size = jsonBytes(item) + 1;
    const entities = cur.metrics.length + cur.params.length + cur.tags.length;
    if (cur[kind].length >= max || entities >= LIMITS.maxEntitiesPerBatch || bytes + size > LIMITS.maxBatchBytes)
      flush();
    (cur[kind] as BatchPayload[K][number][]).push(item);
    bytes += size;
  };
  for (const p of b.params) add('params', p, LIMITS.maxParamsPerBatch);
  for (const t of b.tags) add('tags', t, LIMITS.maxTagsPerBatch);
  for (const m of b.metrics) add('metrics', m, LIMITS.maxMetricsPerBatch);
  flush();
  return out;
}
