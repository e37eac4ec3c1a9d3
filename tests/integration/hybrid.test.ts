import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { prepareTabular, rowsOf, type FeatureRow } from '../../src/data/feature-table';
import { buildLabelMap } from '../../src/data/labels';
import { seededRandom } from '../../src/data/split';
import { TABULAR_TASKS } from '../../src/data/tabular-tasks';
import { loadModel, type RecordPredictor } from '../../src/kinds';
import { trainHybrid, type HybridRow } from '../../src/kinds/hybrid/train';
import { readScope } from '../../src/kinds/scope/rule';
import { trainKind } from '../../src/kinds/training';
import YAML from 'yaml';
import { pyfuncPredict } from '../helpers/pyfunc';

// No public dataset joins real transcripts to account data, so the join is synthetic and made here:
// the label is "yes" only when the customer is on a month-to-month contract AND the conversation is a
// complaint. Neither input alone can reach the accuracy this asks for; the hybrid head sees both.
// This checks the capability (both inputs reach the head, end to end through a saved folder); it is
// not evidence of accuracy on real data.
const cfg = loadConfig();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hybrid-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const spec = TABULAR_TASKS['telco-churn'];
const COMPLAINTS = [
  'Customer: the price went up again and nobody told me, I am really unhappy.',
  'Customer: my internet keeps dropping every evening, this is the third time I call.',
  'Customer: you charged me twice this month, I want this fixed now.',
];
const PRAISE = [
  'Customer: thanks, the new router works great.',
  'Customer: just checking my bill, everything looks fine.',
  'Customer: the technician was very helpful yesterday, thank you.',
];

function join(rows: readonly FeatureRow[], seed: number): HybridRow[] {
  const random = seededRandom(seed);
  return rows.map((r) => {
    const complaint = random() < 0.5;
    const pool = complaint ? COMPLAINTS : PRAISE;
    const text = `${pool[Math.floor(random() * pool.length)]}\nAgent: I understand, let me check.`;
    const rule = complaint && r.features.Contract === 'Month-to-month' ? 'yes' : 'no';
    // 5% of labels flipped: real churn is not a deterministic rule, and on perfectly separable rows the
    // fitted temperature would run to its lower bound (probabilities of exactly 0 or 1).
    const label = random() < 0.05 ? (rule === 'yes' ? 'no' : 'yes') : rule;
    return { text, features: r.features, label };
  });
}

describe('hybrid model kind (conversation + account features)', () => {
  it('learns from both inputs on a synthetic join, and serves from its saved folder', async () => {
    const table = prepareTabular(spec, cfg.paths.dataRaw, { maxPerSplit: 500 });
    const train = join(rowsOf(table.rows, 'train'), 1);
    const test = join(rowsOf(table.rows, 'test'), 2);
    const validation = join(rowsOf(table.rows, 'validation'), 3);
    const dir = path.join(tmp, 'model');
    const labelMap = buildLabelMap(['no', 'yes']);
    const flavors = await trainHybrid(
      train,
      {
        spec,
        labelMap,
        checkpointDir: path.join(cfg.paths.pretrained, cfg.pretrained.name),
        maxLength: 48,
        validation,
      },
      dir,
    );
    fs.writeFileSync(path.join(dir, 'MLmodel'), YAML.stringify({ flavors }));
    // Calibrated on the validation rows: one temperature, fitted by their log-likelihood.
    const scope = readScope(dir)!;
    expect(scope.calibration.examples).toBe(validation.length);
    expect(scope.calibration.nll_after).toBeLessThanOrEqual(scope.calibration.nll_before + 1e-9);
    expect(scope.temperature).toBeGreaterThan(0.1); // not the degenerate fit of separable rows
    console.log(
      `[hybrid] temperature ${scope.temperature.toFixed(3)}: validation ECE ` +
        `${scope.calibration.ece_before.toFixed(4)} -> ${scope.calibration.ece_after.toFixed(4)}`,
    );
    const predictor = (await loadModel(dir)) as RecordPredictor;
    try {
      expect(predictor.kind).toBe('hybrid-frozen-logreg');
      const records = test.map((r) => ({ ...r.features, text: r.text }));
      const probs = await predictor.predictProba(records);
      const yes = predictor.labels.indexOf('yes');
      const acc = test.filter((r, i) => (probs[2 * i + yes]! >= 0.5 ? 'yes' : 'no') === r.label).length / test.length;
      // The python_function flavor of the same folder: same labels, probabilities within 1e-4.
      const py = await pyfuncPredict(dir, records.slice(0, 100), { env: process.env, cwd: tmp });
      expect(py).toHaveLength(Math.min(100, records.length));
      let maxDiff = 0;
      py.forEach((row, i) => {
        expect(row.label).toBe(predictor.labels[probs[2 * i + yes]! > probs[2 * i + 1 - yes]! ? yes : 1 - yes]);
        predictor.labels.forEach(
          (l, j) => (maxDiff = Math.max(maxDiff, Math.abs(Number(row[`p(${l})`]) - probs[2 * i + j]!))),
        );
      });
      console.log(
        `[pyfunc] hybrid: ${py.length} records, labels equal, max |p_python - p_ts| = ${maxDiff.toExponential(2)}`,
      );
      expect(maxDiff).toBeLessThan(1e-4);
      // One input alone is right for at most the majority share of its groups (about 0.75 here).
      const onlyContract = test.filter((r) => (r.features.Contract === 'Month-to-month' ? 'yes' : 'no') === r.label);
      expect(onlyContract.length / test.length).toBeLessThan(0.8);
      expect(acc).toBeGreaterThan(0.88); // the rule itself scores about 0.95 against the flipped labels

      // The conversation drives a positive prediction (its attribution: replaced by an empty text).
      const risky = records.find((r, i) => test[i]!.label === 'yes')!;
      const [drivers] = await predictor.explain([risky]);
      const effect = (c: string) => drivers!.find((d) => d.column === c)?.effect ?? 0;
      expect(effect('text')).toBeGreaterThan(0.05);
      // Month-to-month is also the most frequent contract, the attribution baseline, so it gets no effect there.
      expect(effect('Contract')).toBe(0);
      // Swapping either input for its benign value turns the prediction around.
      const p = async (r: Record<string, string | number>) => (await predictor.predictProba([r]))[yes]!;
      expect(await p(risky)).toBeGreaterThan(0.5);
      expect(await p({ ...risky, text: `${PRAISE[0]}\nAgent: I understand, let me check.` })).toBeLessThan(0.5);
      expect(await p({ ...risky, Contract: 'Two year' })).toBeLessThan(0.5);

      // Inputs are validated like a tabular model's, and the text is required.
      const { text: _t, ...noText } = risky;
      expect(predictor.parseRecord(noText)).toEqual({ issues: [{ path: 'text', message: 'missing' }] });
      expect(predictor.parseRecord({ ...risky, tenure: 'x' })).toEqual({
        issues: [{ path: 'tenure', message: 'must be a number (got "x")' }],
      });
    } finally {
      await predictor.release();
    }
    expect(() => trainKind('hybrid-frozen-logreg', { input: 'text' } as never)).toThrow(/trains on a feature table/);
    // Retraining needs a join this project has no data for: refused with the reason, never half-trained.
    await expect(trainKind('hybrid-frozen-logreg', { input: 'record' } as never)).rejects.toThrow(/accounts only/);
  });
});
