import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prepareTabular, readFeatureTable, referenceMissing, writeFeatureTable } from '../../src/data/feature-table';
import { rawRowSchema, recordSchema, TABULAR_TASKS, type FeatureRecord } from '../../src/data/tabular-tasks';
import { applyFeatureTransform, fitFeatureTransform, withDerived } from '../../src/features/tabular';
import { tabularDriftReport } from '../../src/monitor/tabular-drift';
import { binaryMetrics, comparisonTable, stratifiedFolds, summarise } from '../../src/kinds/tabular/compare';
import { candidateFromParams, candidateParams } from '../../src/kinds/tabular/runs';
import { seededRandom } from '../../src/data/split';

const spec = TABULAR_TASKS['telco-churn'];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tabular-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const customer: Record<string, string | number> = {
  gender: 'Female',
  SeniorCitizen: '0',
  Partner: 'Yes',
  Dependents: 'No',
  tenure: 10,
  PhoneService: 'Yes',
  MultipleLines: 'No',
  InternetService: 'Fiber optic',
  OnlineSecurity: 'No',
  OnlineBackup: 'Yes',
  DeviceProtection: 'No',
  TechSupport: 'No',
  StreamingTV: 'Yes',
  StreamingMovies: 'No',
  Contract: 'Month-to-month',
  PaperlessBilling: 'Yes',
  PaymentMethod: 'Electronic check',
  MonthlyCharges: 80,
  TotalCharges: 700,
};
const issues = (value: unknown) => {
  const r = recordSchema(spec.columns).safeParse(value);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('tabular row schema', () => {
  it('accepts a record, coercing CSV strings, and names the column of every problem', () => {
    expect(issues(customer)).toEqual([]);
    expect(recordSchema(spec.columns).parse({ ...customer, tenure: '10', SeniorCitizen: 0 })).toMatchObject({
      tenure: 10,
      SeniorCitizen: '0',
    });
    expect(issues({ ...customer, tenure: 'ten' })).toEqual(['tenure: must be a number (got "ten")']);
    expect(issues({ ...customer, tenure: 1.5 })).toEqual(['tenure: must be a whole number (got 1.5)']);
    expect(issues({ ...customer, MonthlyCharges: -1 })).toEqual(['MonthlyCharges: must be at least 0 (got -1)']);
    expect(issues({ ...customer, Contract: 'Weekly' })).toEqual([
      'Contract: must be one of "Month-to-month", "One year", "Two year" (got "Weekly")',
    ]);
    const { Contract: _c, ...noContract } = customer;
    expect(issues(noContract)).toEqual(['Contract: missing']);
    // A blank TotalCharges is missing (with why), never coerced to 0.
    expect(issues({ ...customer, TotalCharges: ' ' })[0]).toMatch(/^TotalCharges: blank \(a customer in their first/);
  });

  it('reads id and label from a raw row and keeps only the declared columns as features', () => {
    const row = rawRowSchema(spec).parse({ customerID: 'c-1', Churn: 'Yes', extra: 'x', ...customer });
    expect(row.id).toBe('c-1');
    expect(row.label).toBe('yes');
    expect(Object.keys(row.features)).toEqual(spec.columns.map((c) => c.name));
  });
});

describe('feature table', () => {
  const header = ['customerID', ...spec.columns.map((c) => c.name), 'Churn'];
  const line = (id: string, over: Record<string, string | number>, churn: string) =>
    header
      .map((h) => (h === 'customerID' ? id : h === 'Churn' ? churn : String({ ...customer, ...over }[h])))
      .join(',');
  const raw = path.join(tmp, 'raw');
  fs.mkdirSync(path.join(raw, 'telco-churn'), { recursive: true });
  const rows = Array.from({ length: 200 }, (_, i) =>
    line(`c${i}`, { tenure: i % 70, MonthlyCharges: 20 + (i % 50) }, i % 4 === 0 ? 'Yes' : 'No'),
  );
  rows.splice(17, 0, line('blank', { TotalCharges: ' ' }, 'No'));
  rows.splice(40, 0, line('bad', { Contract: 'Weekly' }, 'No'));
  fs.writeFileSync(path.join(raw, spec.file), `${header.join(',')}\n${rows.join('\n')}\n`);

  it('quarantines bad rows with their row numbers and reasons, splits the rest stratified', () => {
    const t = prepareTabular(spec, raw);
    expect(t.stats.rowsRead).toBe(202);
    expect(t.quarantine.map((b) => [b.row, b.reason.split(':')[0]])).toEqual([
      [18, 'TotalCharges'],
      [41, 'Contract'],
    ]);
    expect(t.rows).toHaveLength(200);
    const share = (s: string) =>
      t.rows.filter((r) => r.split === s && r.label === 'yes').length / t.stats.sizes[s as 'train'];
    expect(Math.abs(share('train') - 0.25)).toBeLessThan(0.02);
    expect(Math.abs(share('test') - 0.25)).toBeLessThan(0.03);
    const dir = path.join(tmp, 'processed');
    writeFeatureTable(t, dir);
    expect(readFeatureTable(dir).digest).toBe(t.digest);
    expect(referenceMissing(dir, spec.columns)).toEqual({ rows: 202, missing: { TotalCharges: 1 } });
    // A table changed after `make prepare` is refused: its digest no longer matches the manifest.
    fs.appendFileSync(
      path.join(dir, 'features.jsonl'),
      fs.readFileSync(path.join(dir, 'features.jsonl'), 'utf8').split('\n')[0] + '\n',
    );
    expect(() => readFeatureTable(dir)).toThrow(/changed after `make prepare`/);
  });
});

describe('feature transform (promoted from notebooks/05_tabular.ipynb)', () => {
  const records: FeatureRecord[] = [
    { ...customer, tenure: 0, TotalCharges: 0, MonthlyCharges: 20 },
    { ...customer, tenure: 10, TotalCharges: 1000, MonthlyCharges: 100, Contract: 'Two year' },
  ];
  const derived = ['charges_per_tenure_month', 'services_count'];
  const t = fitFeatureTransform(records, spec.columns, derived);

  it('derives features from a record', () => {
    const d = withDerived(records[1]!, derived);
    expect(d.charges_per_tenure_month).toBe(100);
    // Phone, internet, and OnlineBackup + StreamingTV.
    expect(d.services_count).toBe(4);
    expect(() => withDerived(records[0]!, ['no_such_feature'])).toThrow(/unknown derived feature "no_such_feature"/);
  });

  it('standardises numbers and one-hots declared categories, in the order of `outputs`', () => {
    expect(t.outputs.slice(0, 5)).toEqual(['tenure', 'MonthlyCharges', 'TotalCharges', ...derived]);
    expect(t.outputs).toContain('Contract=Two year');
    const x = applyFeatureTransform(t, records);
    const w = t.outputs.length;
    expect(x).toHaveLength(2 * w);
    expect([x[0], x[w]]).toEqual([-1, 1]); // tenure 0 and 10: mean 5, sd 5
    const two = t.outputs.indexOf('Contract=Two year');
    const monthly = t.outputs.indexOf('Contract=Month-to-month');
    expect([x[two], x[monthly], x[w + two], x[w + monthly]]).toEqual([0, 1, 1, 0]);
    // Every category block has exactly one 1 per row.
    const contract = t.outputs.flatMap((o, j) => (o.startsWith('Contract=') ? [j] : []));
    expect(contract.reduce((s, j) => s + x[j]! + x[w + j]!, 0)).toBe(2);
    expect(t.reference.Contract).toBe('Month-to-month'); // ties broken alphabetically, deterministic
    expect(t.reference.tenure).toBe(5);
  });
});

describe('model comparison (pure parts)', () => {
  it('assigns stratified folds of equal size', () => {
    const labels = Array.from({ length: 100 }, (_, i) => (i % 4 === 0 ? 'yes' : 'no'));
    const folds = stratifiedFolds(labels, 5, 0);
    for (let f = 0; f < 5; f++) {
      const idx = folds.flatMap((x, i) => (x === f ? [i] : []));
      expect(idx).toHaveLength(20);
      expect(idx.filter((i) => labels[i] === 'yes')).toHaveLength(5);
    }
    expect(() => stratifiedFolds(labels, 1, 0)).toThrow(/folds must be/);
  });

  it('computes positive-class metrics at 0.5 and ROC AUC', () => {
    const m = binaryMetrics([1, 1, 0, 0, 1, 0], [0.9, 0.4, 0.6, 0.1, 0.8, 0.3]);
    // Predicted 1: rows 0, 2, 4 -> TP 2, FP 1, FN 1.
    expect(m.precision).toBeCloseTo(2 / 3, 10);
    expect(m.recall).toBeCloseTo(2 / 3, 10);
    expect(m.accuracy).toBeCloseTo(4 / 6, 10);
    // Pairs (pos, neg) ordered correctly: 8 of 9.
    expect(m.roc_auc).toBeCloseTo(8 / 9, 10);
  });

  it('summarises folds as mean and sample sd and sorts the table by AUC', () => {
    const y = [1, 0, 1, 0, 1, 0, 1, 0];
    const folds = [0, 0, 0, 0, 1, 1, 1, 1];
    const perfect = { name: 'a', estimator: 'lightgbm' as const, params: {}, fold_fit_seconds: [1, 3] };
    const good = summarise({ ...perfect, oof_proba: [0.9, 0.1, 0.8, 0.2, 0.9, 0.1, 0.8, 0.2] }, y, folds);
    const mixed = summarise({ ...perfect, name: 'b', oof_proba: [0.9, 0.1, 0.8, 0.2, 0.1, 0.9, 0.2, 0.8] }, y, folds);
    expect(good.mean.roc_auc).toBe(1);
    expect(mixed.mean.roc_auc).toBe(0.5);
    expect(mixed.sd.roc_auc).toBeCloseTo(Math.SQRT1_2, 10); // folds 1 and 0
    expect(good.mean.fit_seconds).toBe(2);
    expect(comparisonTable([mixed, good]).rows.map((r) => r[0])).toEqual(['a', 'b']);
  });

  it("round-trips a candidate through its run's params (what retrain refits)", () => {
    const params = candidateParams(
      spec,
      { name: 'lightgbm', estimator: 'lightgbm', params: { n_estimators: 300, learning_rate: 0.03, boost: 'gbdt' } },
      { folds: 5, seed: 0, digest: 'd' },
    );
    const asStrings = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)]));
    expect(candidateFromParams(asStrings)).toEqual({
      name: 'lightgbm',
      estimator: 'lightgbm',
      params: { n_estimators: 300, learning_rate: 0.03, boost: 'gbdt' },
    });
    expect(() => candidateFromParams({ estimator: 'svm' })).toThrow(/not a tabular learner/);
  });
});

describe('per-feature drift', () => {
  const random = seededRandom(1);
  const sample = (n: number, shift = 0): FeatureRecord[] =>
    Array.from({ length: n }, () => ({
      ...customer,
      tenure: Math.floor(random() * 72),
      MonthlyCharges: 20 + random() * 100 + shift,
      TotalCharges: random() * 8000,
      Contract: ['Month-to-month', 'One year', 'Two year'][Math.floor(random() * 3)]!,
    }));
  const labels = (n: number) => Array.from({ length: n }, (_, i) => (i % 4 ? 'no' : 'yes'));
  const none = (rows: number) => ({ rows, missing: {} });

  it('flags the shifted feature and not the others', () => {
    const report = tabularDriftReport({
      columns: spec.columns,
      reference: { records: sample(3000), labels: labels(3000), missing: none(3000) },
      current: { records: sample(1000, 40), labels: labels(1000), missing: none(1000) },
    });
    expect(report.features.filter((f) => f.drifted).map((f) => f.feature)).toEqual(['MonthlyCharges']);
    expect(report.features.find((f) => f.feature === 'MonthlyCharges')!.test).toBe('wasserstein_normed');
    expect(report.features.find((f) => f.feature === 'Contract')!.test).toBe('jensen_shannon');
    expect(report.level).toBe('small');
  });

  it('tests the missing-value share of a column against the raw training data', () => {
    const report = tabularDriftReport({
      columns: spec.columns,
      reference: {
        records: sample(3000),
        labels: labels(3000),
        missing: { rows: 3011, missing: { TotalCharges: 11 } },
      },
      current: { records: sample(800), labels: labels(800), missing: { rows: 1000, missing: { TotalCharges: 200 } } },
    });
    const missing = report.features.find((f) => f.feature === 'missing_share/TotalCharges')!;
    expect(missing.drifted).toBe(true);
    expect(report.features.filter((f) => f.drifted).map((f) => f.feature)).toEqual(['missing_share/TotalCharges']);
  });
});
