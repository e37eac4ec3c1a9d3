import { describe, expect, it } from 'vitest';
import { LIMITS, MlflowValidationError, splitBatch, validateBatch } from '../../src/mlflow';
import { backoffDelay, DEFAULT_RETRY } from '../../src/mlflow/transport';
import { metricKeyPart, validateKey } from '../../src/mlflow/validation';

const metric = (key: string, value: number, step = 0) => ({ key, value, step, timestamp: 1_700_000_000_000 });

function validationError(fn: () => unknown): MlflowValidationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof MlflowValidationError) return err;
    throw err;
  }
  throw new Error('expected a validation error');
}

describe('validateBatch', () => {
  it('rejects an invalid metric key, naming the field', () => {
    const err = validationError(() => validateBatch({ metrics: [metric('ok', 1), metric('val loss?', 1)] }));
    expect(err.field).toBe('metrics[1] "val loss?".key');
    expect(err.message).toMatch(/characters MLflow rejects/);
  });

  it('rejects keys that would resolve to another path', () => {
    for (const key of ['../escape', '/abs', 'a//b', 'a/./b', 'trailing/']) {
      expect(() => validateBatch({ metrics: [metric(key, 1)] }), key).toThrow(/would resolve/);
    }
    expect(() => validateBatch({ metrics: [metric('train/loss', 1), metric('eval:f1 macro', 1)] })).not.toThrow();
  });

  it('rejects NaN and Infinity values, naming the metric', () => {
    const err = validationError(() => validateBatch({ metrics: [metric('loss', Number.NaN, 3)] }));
    expect(err.field).toBe('metrics[0] "loss".value');
    expect(err.message).toContain('NaN');
    expect(() => validateBatch({ metrics: [metric('loss', Infinity)] })).toThrow(/Infinity/);
  });

  it('rejects a too-long param value and too-long keys', () => {
    const err = validationError(() =>
      validateBatch({ params: [{ key: 'config', value: 'x'.repeat(LIMITS.maxParamValueLength + 1) }] }),
    );
    expect(err.field).toBe('param "config".value');
    expect(err.message).toMatch(/6001 characters.*6000/);
    expect(() => validateBatch({ tags: [{ key: 'k'.repeat(251), value: 'v' }] })).toThrow(/251 characters/);
    expect(() => validateBatch({ tags: [{ key: 'note', value: 'v'.repeat(LIMITS.maxTagValueLength + 1) }] })).toThrow(
      /tag "note"/,
    );
  });

  it('rejects a param given twice with different values', () => {
    expect(() =>
      validateBatch({
        params: [
          { key: 'lr', value: '1' },
          { key: 'lr', value: '2' },
        ],
      }),
    ).toThrow(/immutable/);
  });
});

describe('splitBatch', () => {
  it('splits 5,000 metrics into requests of at most 1,000, in order', () => {
    const metrics = Array.from({ length: 5000 }, (_, i) => metric('m', i, i));
    const parts = splitBatch({ metrics, params: [], tags: [] });
    expect(parts.map((p) => p.metrics.length)).toEqual([1000, 1000, 1000, 1000, 1000]);
    expect(parts.flatMap((p) => p.metrics.map((m) => m.step))).toEqual(metrics.map((m) => m.step));
  });

  it('respects the param/tag limit of 100 and the entity limit of 1,000 across kinds', () => {
    const params = Array.from({ length: 250 }, (_, i) => ({ key: `p${i}`, value: 'v' }));
    const tags = Array.from({ length: 150 }, (_, i) => ({ key: `t${i}`, value: 'v' }));
    const metrics = Array.from({ length: 1500 }, (_, i) => metric(`m${i}`, i));
    const parts = splitBatch({ params, tags, metrics });
    for (const p of parts) {
      expect(p.params.length).toBeLessThanOrEqual(100);
      expect(p.tags.length).toBeLessThanOrEqual(100);
      expect(p.metrics.length + p.params.length + p.tags.length).toBeLessThanOrEqual(1000);
    }
    expect(parts.flatMap((p) => p.params)).toEqual(params);
    expect(parts.flatMap((p) => p.tags)).toEqual(tags);
    expect(parts.flatMap((p) => p.metrics)).toEqual(metrics);
  });

  it('keeps each request under 1 MB even when the counts would allow more', () => {
    const tags = Array.from({ length: 300 }, (_, i) => ({ key: `t${i}`, value: 'v'.repeat(7999) }));
    const parts = splitBatch({ metrics: [], params: [], tags });
    for (const p of parts) expect(Buffer.byteLength(JSON.stringify(p))).toBeLessThan(1_000_000);
    expect(parts.length).toBeGreaterThanOrEqual(3);
    expect(parts.flatMap((p) => p.tags)).toEqual(tags);
  });
});

describe('backoffDelay', () => {
  it('grows exponentially up to the cap, with jitter in [cap/2, cap]', () => {
    expect(backoffDelay(1, DEFAULT_RETRY, () => 0)).toBe(125);
    expect(backoffDelay(1, DEFAULT_RETRY, () => 1)).toBe(250);
    expect(backoffDelay(3, DEFAULT_RETRY, () => 1)).toBe(1000);
    expect(backoffDelay(20, DEFAULT_RETRY, () => 1)).toBe(DEFAULT_RETRY.maxDelayMs);
  });
});

describe('metricKeyPart', () => {
  it('turns a label into one readable key part', () => {
    expect(metricKeyPart('Account & Security')).toBe('account_security');
    expect(metricKeyPart('  card  payment fee charged ')).toBe('card_payment_fee_charged');
    expect(metricKeyPart('Café / Top-up')).toBe('cafe_top_up');
    expect(metricKeyPart('v1.2')).toBe('v1.2');
    expect(metricKeyPart('???')).toBe('blank');
    // Every part it makes is a valid metric key.
    for (const l of ['Account & Security', 'Café / Top-up', '???'])
      expect(() => validateKey('metric', `class_share/${metricKeyPart(l)}`, 'k')).not.toThrow();
  });
});
