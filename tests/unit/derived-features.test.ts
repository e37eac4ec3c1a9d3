import { describe, expect, it } from 'vitest';
import { TABULAR_TASKS, type FeatureRecord } from '../../src/data/tabular-tasks';
import {
  add,
  checkedDerived,
  col,
  count,
  derivedProblems,
  DerivedExprSchema,
  div,
  eq,
  evaluateDerived,
  max,
  min,
  mul,
  num,
  sub,
} from '../../src/features/derived';
import {
  applyFeatureTransform,
  DERIVED_FEATURES,
  fitFeatureTransform,
  transformExpressions,
} from '../../src/features/tabular';

const spec = TABULAR_TASKS['telco-churn'];
const r: FeatureRecord = {
  tenure: 4,
  TotalCharges: 50,
  MonthlyCharges: 20,
  PhoneService: 'Yes',
  InternetService: 'No',
  OnlineBackup: 'Yes',
  StreamingTV: 'No',
};

describe('derived-feature expressions (src/features/derived.ts)', () => {
  it('evaluates columns, constants, arithmetic left to right, max/min, equality and counts in float64', () => {
    expect(evaluateDerived(div(col('TotalCharges'), max(col('tenure'), num(1))), r)).toBe(12.5);
    expect(evaluateDerived(sub(col('tenure'), num(10)), r)).toBe(-6);
    expect(evaluateDerived(mul(col('tenure'), num(0.5), num(3)), r)).toBe(6);
    expect(evaluateDerived(min(col('tenure'), num(2), num(3)), r)).toBe(2);
    expect(evaluateDerived(add(num(0.1), num(0.2), num(0.3)), r)).toBe(0.1 + 0.2 + 0.3);
    expect(evaluateDerived(eq('PhoneService', 'Yes'), r)).toBe(1);
    expect(evaluateDerived(eq('InternetService', 'Yes'), r)).toBe(0);
    expect(evaluateDerived(count(['OnlineBackup', 'StreamingTV', 'PhoneService'], 'Yes'), r)).toBe(2);
    expect(evaluateDerived(div(num(1), num(0)), r)).toBe(Infinity);
  });

  it('is plain JSON that round-trips through its schema; malformed forms are refused', () => {
    const e = DERIVED_FEATURES.monthly_vs_average_charge!.expr;
    expect(DerivedExprSchema.parse(JSON.parse(JSON.stringify(e)))).toEqual(e);
    for (const bad of [
      { op: 'pow', args: [num(1), num(2)] },
      { op: 'add', args: [num(1)] },
      { op: 'div', args: [num(1), num(2), num(3)] },
      { op: 'col' },
      { op: 'const', value: 1, extra: true },
    ])
      expect(DerivedExprSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
  });

  it('checks references against the declared columns', () => {
    expect(derivedProblems(DERIVED_FEATURES.services_count!.expr, spec.columns)).toEqual([]);
    expect(
      derivedProblems(add(col('nope'), col('Contract'), eq('tenure', 'x'), eq('Contract', 'Weekly')), spec.columns),
    ).toEqual([
      'unknown column "nope"',
      '"Contract" is not a number column',
      '"tenure" is not a category column',
      '"Contract" has no value "Weekly"',
    ]);
    expect(() => checkedDerived('f', { op: 'col', name: 'nope' }, spec.columns)).toThrow(
      /derived feature "f": unknown column "nope"/,
    );
  });
});

describe('a feature transform carries its expressions', () => {
  const records: FeatureRecord[] = [
    { ...Object.fromEntries(spec.columns.map((c) => [c.name, c.type === 'number' ? 1 : c.values[0]!])), tenure: 0 },
    { ...Object.fromEntries(spec.columns.map((c) => [c.name, c.type === 'number' ? 30 : c.values[1]!])), tenure: 12 },
  ];
  const derived = ['charges_per_tenure_month', 'services_count'];

  it('saves the notebook expressions; a saved expression wins over the notebook; a transform without them resolves names', () => {
    const t = fitFeatureTransform(records, spec.columns, derived);
    expect(t.expressions).toEqual({
      charges_per_tenure_month: DERIVED_FEATURES.charges_per_tenure_month!.expr,
      services_count: DERIVED_FEATURES.services_count!.expr,
    });
    const x = applyFeatureTransform(t, records);
    const { expressions: _e, ...legacy } = t;
    expect(applyFeatureTransform(legacy, records)).toEqual(x);
    // The saved expression is what the transform computes, whatever the notebook says now.
    const doubled = {
      ...t,
      expressions: { ...t.expressions, charges_per_tenure_month: mul(num(2), col('TotalCharges')) },
    };
    const j = t.outputs.indexOf('charges_per_tenure_month');
    const y = applyFeatureTransform(doubled, records);
    const mean = t.numeric[j]!.mean;
    const std = t.numeric[j]!.std;
    expect(y[j]).toBeCloseTo((2 * 1 - mean) / std, 5);
    expect(y[t.outputs.length + j]).toBeCloseTo((2 * 30 - mean) / std, 5);
    expect(() =>
      transformExpressions({ ...t, expressions: { services_count: { op: 'col', name: 'Contract' } } }),
    ).toThrow(/derived feature "services_count": "Contract" is not a number column/);
    expect(() => transformExpressions({ ...legacy, derived: ['no_such_feature'] })).toThrow(
      /unknown derived feature "no_such_feature"/,
    );
  });
});
