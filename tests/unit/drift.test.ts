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
  outOfScopeDrift,
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

describe('out-of-scope share', () => {
  const days = (rows: number, oos: number, n = 3) =>
    Array.from({ length: n }, (_, i) => ({ day: `2026-12-0${i + 1}`, rows, outOfScope: oos }));

  it('compares the latest day with the days before, pooled; the one-sided p-value matches scipy', () => {
    // scipy: two-proportion z of 7/40 vs 150/3000 (pooled), norm.sf(z) = 0.00019359299999173511
    const f = outOfScopeDrift([...days(1000, 50), { day: '2026-12-04', rows: 40, outOfScope: 7 }])!;
    expect(f.statistic).toBeCloseTo(0.125, 12);
    expect(f.pValue!).toBeCloseTo(0.00019359299999173511, 9);
    expect(f.share).toEqual({ latest: 0.175, baseline: 0.05, day: '2026-12-04', baselineDays: 3 });
    expect(f.drifted).toBe(true);
    // The order days arrive in does not matter: the latest is the latest date.
    expect(outOfScopeDrift([{ day: '2026-12-04', rows: 40, outOfScope: 7 }, ...days(1000, 50)])).toEqual(f);
  });

  it('a rise too small, or not significant on small days, is no drift; too few rows draw no verdict', () => {
    const small = outOfScopeDrift([...days(2000, 100, 1), { day: '2026-12-04', rows: 1000, outOfScope: 55 }])!;
    expect(small.pValue!).toBeCloseTo(0.27986978591796075, 9);
    expect(small.drifted).toBe(false);
    // +13 points, but on 30 rows against 40: scipy norm.sf = 0.06464637256879799 > 0.05.
    const noisy = outOfScopeDrift([...days(40, 4, 1), { day: '2026-12-04', rows: 30, outOfScope: 7 }])!;
    expect(noisy.statistic).toBeGreaterThan(DEFAULT_DRIFT_POLICY.outOfScopeJump);
    expect(noisy.pValue!).toBeCloseTo(0.06464637256879799, 9);
    expect(noisy.drifted).toBe(false);
    // A latest day too small to judge (today, just after midnight) gives way to the day before.
    const early = outOfScopeDrift([...days(1000, 50), { day: '2026-12-04', rows: 20, outOfScope: 20 }])!;
    expect(early.share).toMatchObject({ day: '2026-12-03', baselineDays: 2, latest: 0.05 });
    expect(outOfScopeDrift([{ day: '2026-12-04', rows: 20, outOfScope: 20 }])).toBeUndefined();
    // A falling share is never drift.
    expect(outOfScopeDrift([...days(1000, 300), { day: '2026-12-04', rows: 1000, outOfScope: 0 }])!.pValue).toBe(1);
  });

  it('with a single day the baseline is the share expected on in-scope traffic (1 - recall)', () => {
    const f = outOfScopeDrift([{ day: '2026-12-04', rows: 100, outOfScope: 10 }])!;
    expect(f.share!.baseline).toBe(DEFAULT_DRIFT_POLICY.expectedOutOfScopeShare);
    expect(f.share!.baselineDays).toBe(0);
    expect(f.drifted).toBe(false); // +5 points
    expect(outOfScopeDrift([{ day: '2026-12-04', rows: 100, outOfScope: 40 }])!.drifted).toBe(true);
  });

  it('in the policy: a jump retrains, a large jump alerts, with the same texts and labels as training', () => {
    const texts = Array.from({ length: 200 }, (_, i) => `my card payment ${i % 7} was declined at the shop`);
    const input = (latestOos: number) => ({
      reference: { texts, labels: texts.map(() => 'card') },
      current: { texts, labels: texts.map(() => 'card') },
      outOfScope: [...days(1000, 50), { day: '2026-12-04', rows: 200, outOfScope: latestOos }],
    });
    expect(driftReport(input(11)).action).toBe('none');
    const moderate = driftReport(input(40)); // 20% vs 5%
    expect(moderate.level).toBe('moderate');
    expect(moderate.action).toBe('retrain');
    expect(moderate.reason).toBe('drift in out_of_scope_share (20.0% on 2026-12-04 vs 5.0% before)');
    const large = driftReport(input(120)); // 60% vs 5%
    expect(large.level).toBe('large');
    expect(large.action).toBe('retrain_and_alert');
    const prom = driftTextfile('support-intent', large, new Date(0));
    expect(prom).toContain('convo_out_of_scope_share{task="support-intent"} 0.6');
    // The extra signal does not dilute the others: one drifted data feature of four stays moderate drift.
    const oneDrifted = driftReport({
      reference: { texts, labels: texts.map(() => 'card') },
      current: { texts, labels: texts.map((_, i) => (i % 2 ? 'card' : 'transfer')) }, // only the labels moved
      outOfScope: input(11).outOfScope,
    });
    expect(oneDrifted.features.filter((f) => f.drifted).map((f) => f.feature)).toEqual(['label']);
    expect(oneDrifted.driftedShare).toBe(0.25);
    expect(oneDrifted.level).toBe('moderate');
    expect(driftTextfile('t', driftReport({ ...input(11), outOfScope: undefined }), new Date(0))).not.toContain(
      'out_of_scope',
    );
  });
});
