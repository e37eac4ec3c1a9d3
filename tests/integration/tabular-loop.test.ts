import { type spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { request } from 'undici';
import { loadConfig } from '../../src/config';
import { readFeatureTable, rowsOf } from '../../src/data/feature-table';
import { logitsOfProbs, softmaxWithTemperature } from '../../src/evaluate/calibration';
import { applyFeatureTransform } from '../../src/features/tabular';
import { readScope } from '../../src/kinds/scope/rule';
import { loadModel, type RecordPredictor } from '../../src/kinds';
import { MlflowClient } from '../../src/mlflow';
import { runCommand, runScript, spawnScript } from '../helpers/cli';
import { pyfuncPredict } from '../helpers/pyfunc';
import { startServeProcess } from '../helpers/serve-process';

// The tabular loop through the command-line entry points, on the real Telco data and the real server:
// prepare (feature table) -> compare (Python learners -> ONNX) -> promote -> serve records -> monitor -> report.
const cfg = loadConfig();
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tabular-loop-'));
const task = 'telco-churn';
const env = { ...process.env, MLFLOW_TRACKING_URI: inject('mlflowUri') };
const ts = (script: string, args: string[]) => runScript(script, args, env);
const children: ReturnType<typeof spawn>[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGTERM');
  fs.rmSync(out, { recursive: true, force: true });
});

describe('tabular churn end to end', () => {
  it('compare -> promote -> serve records -> monitor flags the shifted feature -> report names the drivers', async () => {
    const processed = path.join(out, 'processed');
    const prepared = await ts('prepare-data.ts', ['--task', task, '--processed-dir', processed]);
    expect(prepared).toMatch(/telco-churn: 7043 rows, 11 quarantined/);
    expect(prepared).toMatch(/11 x TotalCharges: blank .*rows 489, 754/);

    const compared = await ts('compare.ts', ['--task', task, '--folds', '3', '--processed-dir', processed]);
    for (const name of ['logistic_regression', 'random_forest', 'lightgbm']) {
      expect(compared).toMatch(new RegExp(`^${name} +0\\.8\\d{3} ± 0\\.0\\d{3}`, 'm'));
      // ONNX Runtime's probabilities equal the training library's (bar: 1e-5).
      const diff = Number(
        new RegExp(`${name}: test AUC [\\d.]+, ONNX vs library max \\|diff\\| ([^\\s,]+)`).exec(compared)![1],
      );
      expect(diff).toBeLessThan(1e-5);
      // Calibrated on the out-of-fold predictions: the fitted temperature, ECE before -> after on test.
      const cal = new RegExp(
        `${name}: .*temperature (\\S+): test ECE (\\S+) -> (\\S+), out-of-fold ECE (\\S+) -> (\\S+)`,
      ).exec(compared);
      expect(cal, `${name}: no calibration line`).not.toBeNull();
      expect(Number(cal![1])).toBeGreaterThan(0);
      expect(Number(cal![5])).toBeLessThanOrEqual(Number(cal![4]) + 0.005);
    }
    const best = /promote it: make promote RUN=([0-9a-f]{32})/.exec(compared)![1]!;

    const client = new MlflowClient({
      trackingUri: inject('mlflowUri'),
      journalDir: path.join(out, 'j'),
      log: () => {},
    });
    const bestRun = await client.getRun(best);
    const parentId = bestRun.data.tags.find((t) => t.key === 'mlflow.parentRunId')!.value;
    const exp = (await client.getExperimentByName(task))!;
    const childRuns = await client.searchAllRuns({
      experimentIds: [exp.experiment_id],
      filter: `tags.mlflow.parentRunId = '${parentId}'`,
    });
    expect(childRuns.map((r) => r.info.run_name).sort()).toEqual(['lightgbm', 'logistic_regression', 'random_forest']);
    expect((await client.listArtifacts(parentId, 'compare')).map((f) => f.path).sort()).toEqual([
      'compare/comparison.html',
      'compare/comparison.json',
    ]);
    const bestMetric = (k: string) => bestRun.data.metrics.find((m) => m.key === k)?.value;
    for (const k of ['temperature', 'test_ece_uncalibrated', 'test_ece_calibrated', 'cv_oof_ece_calibrated'])
      expect(bestMetric(k), k).toBeTypeOf('number');
    expect(bestRun.inputs?.dataset_inputs?.map((d) => d.dataset.name).sort()).toEqual([
      'telco-churn-features-test',
      'telco-churn-features-train',
      'telco-churn-features-validation',
    ]);

    const config = path.join(out, 'production', `${task}.json`);
    const cache = path.join(out, 'cache');
    await ts('promote.ts', [
      'register',
      '--run',
      best,
      '--alias',
      'champion',
      '--config',
      config,
      '--state-dir',
      path.join(out, 'state'),
    ]);

    // Scheduled retrain: 300 new customers (and one with a blank TotalCharges) join the training split;
    // the promoted recipe is refitted and gated against the champion on the same test rows.
    const incoming = path.join(out, 'incoming');
    fs.mkdirSync(incoming);
    const rawLines = fs
      .readFileSync(path.join(cfg.paths.dataRaw, 'telco-churn/Telco-Customer-Churn.csv'), 'utf8')
      .split('\n');
    const fresh = rawLines.slice(1, 301).map((l) => `new-${l}`);
    const blank = rawLines[489]!.replace(/^/, 'new-');
    fs.writeFileSync(path.join(incoming, 'week-1.csv'), [rawLines[0], ...fresh, blank].join('\n') + '\n');
    const retrained = await ts('retrain.ts', [
      'run',
      '--config',
      config,
      '--processed-dir',
      processed,
      '--incoming',
      incoming,
      '--quarantine-dir',
      path.join(out, 'quarantine'),
      '--state-dir',
      path.join(out, 'state'),
      '--cache-dir',
      cache,
      '--force',
    ]);
    expect(retrained).toMatch(/300 new labelled rows .*\(1 files, 1 quarantined\)/);
    expect(retrained).toMatch(/decision: (promoted|registered_not_promoted)/);
    expect(retrained).toMatch(/challenger version 2 \(test macro-F1 0\.[67]\d+\), champion 1 \(0\.[67]\d+\)/);
    expect(fs.readFileSync(path.join(out, 'quarantine', 'week-1.csv.quarantine.jsonl'), 'utf8')).toMatch(
      /"row":301,.*TotalCharges: blank/,
    );

    const servingLog = path.join(out, 'serving');
    const { url, server } = await startServeProcess(['--task', task, '--log-dir', servingLog, '--cache-dir', cache], {
      ...env,
      SERVE_TOKENS: 'test-serving-token-0123',
    });
    children.push(server);
    const post = async (route: string, body: unknown) => {
      const r = await request(`${url}${route}`, {
        method: 'POST',
        headers: { authorization: 'Bearer test-serving-token-0123', 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: r.statusCode, body: (await r.body.json()) as Record<string, any> };
    };

    // The test customers, with one feature shifted: every one of them is now male.
    const test = rowsOf(readFeatureTable(path.join(processed, task)).rows, 'test');
    const records: Record<string, string | number>[] = test.map((r) => ({
      customerID: r.id,
      ...r.features,
      gender: 'Male',
    }));
    const championDir = (await client.downloadModel(`models:/${task}@champion`, path.join(out, 'local'))).dir;
    const local = (await loadModel(championDir)) as RecordPredictor;
    const expected = await local.predictProba(records.slice(0, 5).map(({ customerID: _id, ...f }) => f));
    // Served probabilities are the temperature-scaled ones: softmax(log p / T) of the bare ONNX graph's.
    const scope = readScope(championDir)!;
    expect(scope.score).toBe('none');
    expect(scope.calibration.split).toMatch(/^out-of-fold/);
    expect(scope.calibration.nll_after).toBeLessThanOrEqual(scope.calibration.nll_before + 1e-9);
    const bare = path.join(out, 'bare');
    fs.cpSync(championDir, bare, { recursive: true });
    fs.rmSync(path.join(bare, 'scope.json'));
    const uncalibrated = (await loadModel(bare)) as RecordPredictor;
    const rawProbs = await uncalibrated.predictProba(records.slice(0, 5).map(({ customerID: _id, ...f }) => f));
    await uncalibrated.release();
    const scaled = softmaxWithTemperature(logitsOfProbs(rawProbs), 2, scope.temperature);
    scaled.forEach((p, i) => expect(expected[i]).toBeCloseTo(p, 6));
    if (Math.abs(scope.temperature - 1) > 0.02)
      expect(Math.max(...rawProbs.map((p, i) => Math.abs(p - expected[i]!)))).toBeGreaterThan(1e-3);
    // Attributions mean what they say: setting a column to its typical value changes p(yes) by its effect.
    const { customerID: _id, ...risky } = records.find((r) => r.Contract === 'Month-to-month' && Number(r.tenure) < 6)!;
    const [drivers] = await local.explain([risky]);
    const yes = local.labels.indexOf('yes');
    const pOf = async (r: Record<string, string | number>) => (await local.predictProba([r]))[yes]!;
    for (const d of drivers!.slice(0, 3))
      expect(d.effect).toBeCloseTo((await pOf(risky)) - (await pOf({ ...risky, [d.column]: d.reference })), 6);
    expect(drivers![0]!.effect).toBeGreaterThan(0.01);
    expect(Math.abs(drivers![0]!.effect)).toBeGreaterThanOrEqual(Math.abs(drivers![drivers!.length - 1]!.effect));
    const first = await post('/invocations', { dataframe_records: records.slice(0, 5) });
    expect(first.status).toBe(200);
    first.body.predictions.forEach((p: { id: string; probabilities: { yes: number } }, i: number) => {
      expect(p.id).toBe(records[i]!.customerID);
      expect(p.probabilities.yes).toBeCloseTo(expected[2 * i + local.labels.indexOf('yes')]!, 5);
    });
    const fromServer: { label: string; probabilities: Record<string, number> }[] = [];
    for (let i = 5; i < records.length; i += 200) {
      const r = await post('/predict', { records: records.slice(i, i + 200) });
      expect(r.status).toBe(200);
      fromServer.push(...r.body.predictions);
    }

    // The python_function flavor: mlflow.pyfunc.load_model answers as the server did for 100 of these
    // customers, and encodes them into the same feature matrix as the promoted TypeScript transform.
    const features = records.slice(5, 105).map(({ customerID: _id, ...f }) => f);
    const fromPython = await pyfuncPredict(`models:/${task}@champion`, features, { env, cwd: out });
    expect(fromPython.map((r) => r.label)).toEqual(fromServer.slice(0, 100).map((p) => p.label));
    const maxDiff = Math.max(
      ...fromServer
        .slice(0, 100)
        .flatMap((p, i) =>
          Object.entries(p.probabilities).map(([l, v]) => Math.abs(Number(fromPython[i]![`p(${l})`]) - v)),
        ),
    );
    console.log(
      `[pyfunc] ${features.length} customers, labels equal, max |p_python - p_ts| = ${maxDiff.toExponential(2)}`,
    );
    expect(maxDiff).toBeLessThan(1e-4);
    const champion = (await client.downloadModel(`models:/${task}@champion`, path.join(out, 'pyfunc-model'))).dir;
    const transform = JSON.parse(fs.readFileSync(path.join(champion, 'feature_transform.json'), 'utf8'));
    fs.writeFileSync(path.join(out, 'features.json'), JSON.stringify(features));
    const encoded = JSON.parse(
      await runCommand(path.join(cfg.venv, 'bin', 'python'), [
        '-c',
        'import json, sys; sys.path.insert(0, sys.argv[1]); import convo_pyfunc as m\n' +
          't = m.FeatureTransform(json.load(open(sys.argv[2])))\n' +
          'print(json.dumps(t.encode(json.load(open(sys.argv[3]))).tolist()))',
        path.join(champion, 'code'),
        path.join(champion, 'feature_transform.json'),
        path.join(out, 'features.json'),
      ]),
    ) as number[][];
    const ours = applyFeatureTransform(transform, features);
    expect(encoded.flat()).toHaveLength(ours.length);
    expect(Math.max(...encoded.flat().map((v, i) => Math.abs(v - ours[i]!)))).toBeLessThan(1e-6);

    const columns = Object.keys(records[0]!);
    const split = await post('/invocations', {
      dataframe_split: { columns, data: [columns.map((c) => records[0]![c])] },
    });
    expect(split.body.predictions[0].probabilities).toEqual(first.body.predictions[0].probabilities);

    // A wrong type and a missing column: 400, naming the column (and the row).
    const { Contract: _c, ...noContract } = records[0]!;
    const bad = await post('/invocations', { dataframe_records: [{ ...records[0], tenure: 'twelve' }, noContract] });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/dataframe_records\[0\]\.tenure: must be a number \(got "twelve"\)/);
    expect(bad.body.message).toMatch(/dataframe_records\[1\]\.Contract: missing/);
    expect((await post('/predict', { texts: ['cancel my contract'] })).status).toBe(400);
    server.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));

    const m = await spawnScript(
      'monitor.ts',
      ['--task', task, '--log-dir', servingLog, '--processed-dir', processed, '--out', path.join(out, 'reports')],
      env,
    );
    expect(m.status, m.stderr).toBe(0);
    expect(m.stdout).toMatch(new RegExp(`${test.length + 1} served predictions of ${task}`));
    expect(m.stdout).toMatch(/2 rejected rows/);
    const lines = m.stdout
      .split('\n')
      .filter((l) => /^\s{4}\S+\s+(ks|chi2|wasserstein_normed|jensen_shannon)\s/.test(l));
    const flagged = lines.filter((l) => / DRIFT$/.test(l)).map((l) => l.trim().split(/\s+/)[0]);
    expect(flagged).toEqual(['gender']);
    expect(lines.length).toBeGreaterThanOrEqual(20); // every input column and the predicted labels

    const reported = await ts('report.ts', [
      '--task',
      task,
      '--log-dir',
      servingLog,
      '--cache-dir',
      cache,
      '--out',
      path.join(out, 'reports'),
    ]);
    expect(reported).toMatch(new RegExp(`${test.length + 1} customers: A \\d+ \\(call\\)`));
    const csvFile = fs
      .readdirSync(path.join(out, 'reports'))
      .find((f) => f.startsWith('churn-') && f.endsWith('.csv'))!;
    const csv = fs
      .readFileSync(path.join(out, 'reports', csvFile), 'utf8')
      .trim()
      .split('\n');
    const bucketA = csv.filter((l) => l.split(',')[2] === 'A');
    expect(bucketA.length).toBeGreaterThan(10);
    // Each bucket-A customer is named by id and comes with the features that drove the prediction.
    for (const l of bucketA)
      expect(l).toMatch(/^[^,]+,"\d{4}-[A-Z]{5}",A,0\.\d+,"yes","(Contract|tenure|InternetService|\w+) = /);
    expect(fs.readFileSync(path.join(out, 'reports', csvFile.replace('.csv', '.html')), 'utf8')).toMatch(
      /Features whose actual value raised p\(churn\)/,
    );

    // Batch scoring of the feature table (digest-checked) with the champion: every test customer, bucketed.
    const scored = await ts('score.ts', [
      '--task',
      task,
      '--split',
      'test',
      '--processed-dir',
      processed,
      '--cache-dir',
      cache,
      '--out',
      path.join(out, 'scores'),
    ]);
    expect(scored).toMatch(new RegExp(`${test.length} customers scored with telco-churn v1 \\(@champion`));
    const scores = fs
      .readFileSync(path.join(out, 'scores', fs.readdirSync(path.join(out, 'scores'))[0]!), 'utf8')
      .trim()
      .split('\n');
    expect(scores[0]).toBe('id,split,p_churn,bucket,driver_1,driver_2,driver_3');
    expect(scores).toHaveLength(test.length + 1);
    expect(
      scores.filter((l) => /^"[^"]+",test,0\.\d{4},A,"\w+ = [^"]+ \(\+0\.\d{3}\)"/.test(l)).length,
    ).toBeGreaterThan(10);
    await client.close();
  });
});
