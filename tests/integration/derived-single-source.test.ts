import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { prepareTabular, rowsOf } from '../../src/data/feature-table';
import { TABULAR_TASKS, type FeatureRecord } from '../../src/data/tabular-tasks';
import * as current from '../../src/features/tabular';
import { addPythonFlavor } from '../../src/kinds/pyfunc';
import { copyProject } from '../helpers/project-copy';

// One definition of a derived feature, two runtimes: changing the expression in notebook 05 and running
// `make promote` (scripts/promote.ts export) changes what TypeScript computes and what the Python flavor
// computes, alike, with no edit under src/. In a copy of the project; nothing is trained.
const cfg = loadConfig();
const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'derived-single-source-'));
const spec = TABULAR_TASKS['telco-churn'];
afterAll(() => fs.rmSync(copy, { recursive: true, force: true }));

const ORIGINAL = "const chargesPerMonth = div(col('TotalCharges'), max(col('tenure'), num(1)));";
const EDITED = "const chargesPerMonth = div(col('TotalCharges'), max(col('tenure'), num(12)));";

/** The Python flavor's encoding of `records` under the transform saved in `modelDir` (its code/ modules). */
async function pythonEncode(modelDir: string, records: readonly FeatureRecord[]): Promise<Float32Array> {
  const input = path.join(copy, `records-${Date.now()}.json`);
  fs.writeFileSync(input, JSON.stringify(records));
  const script = [
    'import json, sys',
    "sys.path.insert(0, sys.argv[1] + '/code')",
    'import convo_pyfunc as m',
    "t = m.FeatureTransform(json.load(open(sys.argv[1] + '/feature_transform.json')))",
    'print(json.dumps(t.encode(json.load(open(sys.argv[2]))).flatten().tolist()))',
  ].join('\n');
  const { stdout } = await promisify(execFile)(path.join(cfg.venv, 'bin', 'python'), ['-c', script, modelDir, input], {
    maxBuffer: 64 << 20,
  });
  return Float32Array.from(JSON.parse(stdout) as number[]);
}

describe('derived features have one source', () => {
  it('an edited expression in notebook 05, promoted, changes both runtimes alike', async () => {
    copyProject(copy, { files: ['package.json', 'tsconfig.json'] });
    const table = prepareTabular(spec, cfg.paths.dataRaw, { maxPerSplit: 400 });
    const train = rowsOf(table.rows, 'train').map((r) => r.features);
    const test = rowsOf(table.rows, 'test')
      .map((r) => r.features)
      .slice(0, 200);
    // Customers in their first year: where max(tenure, 1) and max(tenure, 12) differ.
    expect(test.filter((r) => Number(r.tenure) < 12).length).toBeGreaterThan(20);

    // The notebook cell, edited; make promote regenerates src/features/tabular.ts in the copy.
    const nbFile = path.join(copy, 'notebooks/05_tabular.ipynb');
    const nb = JSON.parse(fs.readFileSync(nbFile, 'utf8'));
    const cell = nb.cells.find((c: { id: string }) => c.id === 'tab-03');
    const source = (cell.source as string[]).join('');
    expect(source).toContain(ORIGINAL);
    cell.source = source.replace(ORIGINAL, EDITED);
    fs.writeFileSync(nbFile, JSON.stringify(nb, null, 1));
    const { stdout } = await promisify(execFile)(
      path.join(copy, 'node_modules/.bin/ts-node'),
      [path.join(copy, 'scripts/promote.ts'), 'export'],
      { cwd: copy, env: process.env },
    );
    expect(stdout).toMatch(/wrote +src\/features\/tabular\.ts/);
    expect(fs.readFileSync(path.join(copy, 'src/features/tabular.ts'), 'utf8')).toContain(`export ${EDITED}`);

    // The regenerated module fits and saves a transform, with the Python flavor beside it (as training does).
    const edited = (await import(path.join(copy, 'src/features/tabular.ts'))) as typeof current;
    const copyFlavor = (
      (await import(path.join(copy, 'src/kinds/pyfunc.ts'))) as { addPythonFlavor: typeof addPythonFlavor }
    ).addPythonFlavor;
    const save = (t: current.FeatureTransform, dir: string, flavor: typeof addPythonFlavor) => {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'feature_transform.json'), JSON.stringify(t));
      flavor(dir, {
        kind: 'tabular-onnx',
        onnx: 'model.onnx',
        transform: 'feature_transform.json',
        label_map: 'label_map.json',
      });
    };
    const derived = edited.TASK_DERIVED_FEATURES[spec.name]!;
    const after = edited.fitFeatureTransform(train, spec.columns, derived);
    save(after, path.join(copy, 'model-after'), copyFlavor);
    const before = current.fitFeatureTransform(train, spec.columns, current.TASK_DERIVED_FEATURES[spec.name]!);
    save(before, path.join(copy, 'model-before'), addPythonFlavor);
    expect(
      JSON.parse(fs.readFileSync(path.join(copy, 'model-after/feature_transform.json'), 'utf8')).expressions,
    ).toMatchObject({
      charges_per_tenure_month: {
        op: 'div',
        args: [
          { op: 'col', name: 'TotalCharges' },
          {
            op: 'max',
            args: [
              { op: 'col', name: 'tenure' },
              { op: 'const', value: 12 },
            ],
          },
        ],
      },
    });

    // TypeScript: the column is the edited formula, standardised with the refitted mean and scale.
    const width = after.outputs.length;
    const j = after.outputs.indexOf('charges_per_tenure_month');
    const { mean, std } = after.numeric[j]!;
    const tsAfter = edited.applyFeatureTransform(after, test);
    test.forEach((r, i) => {
      const expected = Number(r.TotalCharges) / Math.max(Number(r.tenure), 12);
      expect(tsAfter[i * width + j]).toBeCloseTo((expected - mean) / std, 5);
    });
    const tsBefore = current.applyFeatureTransform(before, test);
    // Rows whose derived value (un-standardised) moved: first-year customers, for both features built on it.
    const changed = (x: Float32Array, y: Float32Array, name: string) => {
      const k = after.outputs.indexOf(name);
      const raw = (m: Float32Array, t: current.FeatureTransform, i: number) =>
        m[i * width + k]! * t.numeric[k]!.std + t.numeric[k]!.mean;
      return test.filter(
        (_, i) => Math.abs(raw(x, after, i) - raw(y, before, i)) > 1e-2 * Math.max(1, Math.abs(raw(y, before, i))),
      );
    };
    const firstYear = test.filter((r) => Number(r.tenure) < 12);
    for (const name of ['charges_per_tenure_month', 'monthly_vs_average_charge'])
      expect(changed(tsAfter, tsBefore, name), name).toEqual(firstYear);
    expect(changed(tsAfter, tsBefore, 'services_count')).toEqual([]);

    // Python, from the model folders' own code/: the same change, the same matrix as TypeScript.
    const pyAfter = await pythonEncode(path.join(copy, 'model-after'), test);
    const pyBefore = await pythonEncode(path.join(copy, 'model-before'), test);
    expect(pyAfter).toHaveLength(tsAfter.length);
    const maxDiff = (x: Float32Array, y: Float32Array) => Math.max(...x.map((v, i) => Math.abs(v - y[i]!)));
    expect(maxDiff(pyAfter, tsAfter)).toBeLessThan(1e-6);
    expect(maxDiff(pyBefore, tsBefore)).toBeLessThan(1e-6);
    for (const name of ['charges_per_tenure_month', 'monthly_vs_average_charge'])
      expect(changed(pyAfter, pyBefore, name), name).toEqual(firstYear);
    expect(changed(pyAfter, pyBefore, 'services_count')).toEqual([]);
    console.log(
      `[derived] ${test.length} customers: ${firstYear.length} first-year ones changed charges_per_tenure_month in both ` +
        `runtimes, max |python - ts| = ${maxDiff(pyAfter, tsAfter).toExponential(2)}`,
    );
  });
});
