import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  categoricalDrift,
  domainClassifierAuc,
  driftReport,
  driftTextfile,
  ks2samp,
  numericDrift,
  wasserstein,
  DEFAULT_DRIFT_POLICY,
  type DriftReport,
} from '../../src/monitor/drift';

// Reference values from SciPy (scripts/fixtures/make_drift_fixture.py).
const f = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/drift-scipy.json'), 'utf8'));

describe('numeric drift', () => {
  it('two-sample KS matches scipy.stats.ks_2samp (statistic exactly, p-value to the approximation)', () => {
    const same = numericDrift('x', f.ref, f.cur_same);
    const shift = numericDrift('x', f.ref, f.cur_shift);
    expect(same.test).toBe('ks');
    expect(same.statistic).toBeCloseTo(f.ks_same[0], 10);
    expect(Math.abs(same.pValue! - f.ks_same[1])).toBeLessThan(1e-4);
    expect(same.drifted).toBe(false);
    expect(shift.statistic).toBeCloseTo(f.ks_shift[0], 10);
    // SciPy's asymptotic p-value (1.67e-6) to 5%: the Kolmogorov distribution, not just "small".
    expect(Math.abs(shift.pValue! / f.ks_shift[1] - 1)).toBeLessThan(0.05);
    expect(shift.drifted).toBe(true);
  });

  it('uses the normed Wasserstein distance above 1,000 reference rows', () => {
    expect(wasserstein(f.ref, f.cur_shift)).toBeCloseTo(f.wasserstein_shift, 8);
    const big = numericDrift('x', f.ref, f.cur_shift, { ...DEFAULT_DRIFT_POLICY, smallReferenceRows: 100 });
    expect(big.test).toBe('wasserstein_normed');
    expect(big.drifted).toBe(true);
    expect(big.psi!).toBeGreaterThan(0.05);
  });
});

describe('ks2samp with ties', () => {
  it('finds no difference between identical integer samples and a full one between disjoint ones', () => {
    const ints = Array.from({ length: 300 }, (_, i) => i % 5);
    expect(ks2samp(ints, [...ints].reverse())).toEqual({ statistic: 0, pValue: 1 });
    const zeros = new Array<number>(100).fill(0);
    expect(ks2samp(zeros, zeros).pValue).toBe(1);
    const r = ks2samp(zeros, new Array<number>(100).fill(1));
    expect(r.statistic).toBe(1);
    expect(r.pValue).toBeLessThan(1e-10);
  });
});

describe('categorical drift', () => {
  it('chi-square matches scipy.stats.chi2_contingency; Jensen-Shannon matches scipy above 1,000 rows', () => {
    const small = categoricalDrift('label', f.cats_ref, f.cats_cur);
    expect(small.test).toBe('chi2');
    expect(small.statistic).toBeCloseTo(f.chi2[0], 8);
    expect(small.pValue!).toBeCloseTo(f.chi2[1], 10);
    const big = categoricalDrift('label', f.cats_ref, f.cats_cur, { ...DEFAULT_DRIFT_POLICY, smallReferenceRows: 10 });
    expect(big.test).toBe('jensen_shannon');
    expect(big.statistic).toBeCloseTo(f.jensen_shannon, 10);
  });
});

describe('text drift', () => {
  const ref = Array.from({ length: 200 }, (_, i) => `my card payment ${i % 7} was declined at the shop`);
  const same = Array.from({ length: 200 }, (_, i) => `my card payment ${(i + 3) % 7} was declined at the shop`);
  const other = Array.from(
    { length: 200 },
    (_, i) => `the router keeps dropping my broadband connection ${i % 5} times a day`,
  );

  it('the domain classifier tells different texts apart (AUC near 1) but not identical ones (near 0.5)', () => {
    expect(domainClassifierAuc(ref, other)).toBeGreaterThan(0.95);
    expect(domainClassifierAuc(ref, same)).toBeLessThan(0.7);
  });

  it('maps drift to the policy: none -> no action, large -> retrain and alert', () => {
    const none = driftReport({
      reference: { texts: ref, labels: ref.map(() => 'card') },
      current: { texts: same, labels: same.map(() => 'card') },
    });
    expect(none.action).toBe('none');
    const large = driftReport({ reference: { texts: ref }, current: { texts: other } });
    expect(large.level).toBe('large');
    expect(large.action).toBe('retrain_and_alert');
    expect(large.reason).toMatch(/text_domain/);
  });

  it('draws no verdict from too few current rows', () => {
    const r = driftReport({ reference: { texts: ref }, current: { texts: other.slice(0, 5) } });
    expect(r).toMatchObject({ level: 'none', action: 'none', features: [] });
    expect(r.reason).toMatch(/only 5 current rows/);
  });
});

describe('driftTextfile', () => {
  it("writes the verdict in Prometheus' text format, with the codes alerts.yml reads", () => {
    const report: DriftReport = {
      level: 'large',
      action: 'retrain_and_alert',
      driftedShare: 0.5,
      features: [],
      referenceRows: 10,
      currentRows: 10,
      reason: '',
    };
    const text = driftTextfile('support-category', report, new Date('2026-12-01T00:00:00Z'));
    expect(text).toContain('convo_drift_level{task="support-category"} 2');
    expect(text).toContain('convo_drift_drifted_share{task="support-category"} 0.5');
    expect(text).toContain('convo_monitor_last_run_timestamp_seconds{task="support-category"} 1796083200');
    expect(driftTextfile('t', { ...report, level: 'moderate' }, new Date(0))).toContain(
      'convo_drift_level{task="t"} 1',
    );
    expect(driftTextfile('t', { ...report, level: 'small' }, new Date(0))).toContain('convo_drift_level{task="t"} 0');
    expect(text.endsWith('\n')).toBe(true);
  });
});
