import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { request } from 'undici';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { matchKey } from '../../src/data/leakage';
import { readPrepared } from '../../src/data/prepare';
import { readProductionConfig } from '../../src/production/config';
import { csvLine } from '../../src/io/csv';
import { MlflowClient } from '../../src/mlflow';
import { BATCH_CSV_COLUMNS } from '../../src/feedback/store';
import { runScript, spawnScript } from '../helpers/cli';
import { startServeProcess } from '../helpers/serve-process';
import type { ChildProcess } from 'node:child_process';
import { loadConfig, type LabelStudioConfig } from '../../src/config';
import { freePort } from '../../src/io/server-process';
import { LabelStudioClient, reviewProjectTitle } from '../../src/feedback/label-studio';
import {
  LABEL_STUDIO_USER,
  labelStudioFiles,
  labelStudioToken,
  startLabelStudio,
  stopLabelStudio,
} from '../../src/feedback/label-studio-server';
import type { BatchManifest } from '../../src/feedback/types';

// The review loop through its command-line entry points against the real server: serve a promoted model,
// send it traffic, build a review batch from the serving log, label it as a reviewer would (the CSV route),
// import it, and the next retrain trains on the reviewed rows.
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'review-'));
const task = 'support-category';
const env = { ...process.env, MLFLOW_TRACKING_URI: inject('mlflowUri') };
const ts = (script: string, args: string[]) => runScript(script, args, env);
const children: ChildProcess[] = [];
let ls: LabelStudioConfig | undefined;
afterAll(async () => {
  for (const c of children) c.kill('SIGTERM');
  if (ls) await stopLabelStudio(ls);
  fs.rmSync(out, { recursive: true, force: true });
});

describe('make review -> label (CSV, Label Studio) -> make review-import -> make retrain', () => {
  it('sends uncertain and control rows of the served version, never a held-out text, and the labels come back into training', async () => {
    // Label Studio's first start (its database migrations) takes most of a minute: it starts while the model trains.
    const lsPort = await freePort();
    ls = {
      ...loadConfig().labelStudio,
      port: lsPort,
      url: `http://127.0.0.1:${lsPort}`,
      dataDir: path.join(out, 'ls'),
    };
    const lsStarted = startLabelStudio(ls);
    lsStarted.catch(() => {}); // awaited below; no unhandled rejection meanwhile
    const processed = path.join(out, 'processed');
    const larger = path.join(out, 'larger');
    await ts('prepare-data.ts', ['--task', task, '--max-per-split', '300', '--processed-dir', processed]);
    await ts('prepare-data.ts', ['--task', task, '--max-per-split', '1500', '--processed-dir', larger, '--no-mlflow']);
    const trained = await ts('train-baseline.ts', ['--task', task, '--epochs', '5', '--processed-dir', processed]);
    const runId = new RegExp(`==> ${task} baseline: .* run ([0-9a-f]{32})`).exec(trained)![1]!;
    const config = path.join(out, 'production', `${task}.json`);
    const state = path.join(out, 'state');
    const cache = path.join(out, 'cache');
    await ts('promote.ts', [
      'register',
      '--run',
      runId,
      '--alias',
      'champion',
      '--config',
      config,
      '--state-dir',
      state,
    ]);
    // The suite's tests share one registry: this run's version number is whatever comes next.
    const v = readProductionConfig(config).model.version;

    // Traffic: queries the model never saw (rows of the larger preparation outside the small one's splits),
    // with their true labels kept aside; plus a test row sent as is and in other case, which must never be sent.
    const small = readPrepared(path.join(processed, task));
    const known = new Set([...small.train, ...small.validation, ...small.test].map((e) => matchKey(e.text)));
    const fresh = readPrepared(path.join(larger, task)).train.filter((e) => !known.has(matchKey(e.text)));
    const traffic = fresh.slice(0, 240);
    const truth = new Map(traffic.map((e) => [e.text, e.label]));
    const testRow = small.test[0]!.text;
    const servingLog = path.join(out, 'serving');
    const data = path.join(out, 'data');
    const { url, server } = await startServeProcess(
      ['--task', task, '--log-dir', servingLog, '--cache-dir', cache, '--data-dir', data],
      {
        ...env,
        SERVE_TOKENS: 'review-test-token-0123',
      },
    );
    children.push(server);
    const texts = [testRow, testRow.toUpperCase(), ...traffic.map((e) => e.text)];
    for (let i = 0; i < texts.length; i += 40) {
      const r = await request(`${url}/predict`, {
        method: 'POST',
        headers: { authorization: 'Bearer review-test-token-0123', 'content-type': 'application/json' },
        body: JSON.stringify({ texts: texts.slice(i, i + 40) }),
      });
      expect(r.statusCode).toBe(200);
      await r.body.dump();
    }
    await new Promise((r) => setTimeout(r, 300)); // the log stream is flushed after each request

    const common = ['--task', task, '--config', config, '--data-dir', data];
    const built = await ts('review.ts', [
      'build',
      ...common,
      '--size',
      '60',
      '--control-share',
      '0.5',
      '--log-dir',
      servingLog,
      '--processed-dir',
      processed,
    ]);
    const batchId = new RegExp(
      `review batch (\\S+): 60 rows of 242 served predictions of support-category v${v} `,
    ).exec(built)?.[1];
    expect(batchId, built).toBeDefined();
    expect(built).toMatch(/control 30\b/);
    expect(built).toMatch(/passed over: 2 in the validation\/test split/);
    const runOfBatch = /MLflow run ([0-9a-f]{32})/.exec(built)![1]!;
    const client = new MlflowClient({
      trackingUri: inject('mlflowUri'),
      journalDir: path.join(out, 'j'),
      log: () => {},
    });
    const run = await client.getRun(runOfBatch);
    expect(run.data.tags).toContainEqual({ key: 'mlops.review.batch', value: batchId });
    expect(run.data.params).toContainEqual({ key: 'model_version', value: v });
    expect(run.data.metrics.find((m) => m.key === 'rows_control')?.value).toBe(30);
    expect((await client.listArtifacts(runOfBatch, 'review')).map((f) => path.basename(f.path)).sort()).toEqual([
      `${batchId}.csv`,
      `${batchId}.json`,
    ]);

    // The reviewer fills in the label column; one row is left for later, one gets a label the task has not,
    // and a row of a batch that does not exist is pasted in.
    const csvFile = path.join(data, 'feedback', task, 'batches', `${batchId}.csv`);
    const rows = parse(fs.readFileSync(csvFile, 'utf8'), { columns: true }) as Record<string, string>[];
    expect(rows).toHaveLength(60);
    for (const r of rows) expect(known.has(matchKey(r.text!))).toBe(false); // no held-out text is ever sent
    const labelled: Record<string, string>[] = rows.map((r, i) => ({
      ...r,
      label: i === 0 ? '' : i === 1 ? 'loans' : truth.get(r.text!)!,
      annotator: 'reviewer-1',
    }));
    const lines = labelled.map((r) => csvLine(BATCH_CSV_COLUMNS.map((c) => r[c] ?? '')));
    const foreign = csvLine([
      'other-batch-0001',
      'other-batch',
      'control',
      'card',
      'card',
      '0.5',
      'a text',
      'card',
      '',
    ]);
    const file = path.join(out, 'labelled.csv');
    fs.writeFileSync(file, [BATCH_CSV_COLUMNS.join(','), ...lines, foreign].join('\n') + '\n');

    const imported = await ts('review.ts', ['import', ...common, '--file', file]);
    expect(imported).toMatch(
      /imported 58 reviewed rows of support-category: \d+ to training .*, 30 to the production slice/,
    );
    expect(imported).toMatch(/3 quarantined/);
    expect(imported).toMatch(/row 1 \(line 2\): label: empty/);
    expect(imported).toMatch(/row 2 \(line 3\): label: "loans" is not one of/);
    expect(imported).toMatch(/row 61 \(line 62\): batch_id: other-batch is not a review batch of support-category/);
    expect(imported).toMatch(/production slice, version \d+:\n\s+accuracy\s+\d+\.\d% \[\d+\.\d%, \d+\.\d%\] \(n=30\)/);
    const toTraining = Number(/(\d+) to training/.exec(imported)![1]);
    const reviewed = path.join(data, 'incoming', task, `reviewed-${batchId}.jsonl`);
    const kept = fs
      .readFileSync(reviewed, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(kept).toHaveLength(toTraining);
    expect(kept[0]).toMatchObject({ batch_id: batchId, annotator: 'reviewer-1', version: v, source: 'labelled.csv' });
    expect(kept.every((r) => r.reason !== 'control')).toBe(true);

    // The server reports the slice's estimate per version on /metrics, beside the counts it keeps itself.
    const metrics = await (
      await request(`${url}/metrics`, { headers: { authorization: 'Bearer review-test-token-0123' } })
    ).body.text();
    expect(metrics).toMatch(
      new RegExp(`production_accuracy\\{model="support-category",version="${v}",bound="lower"\\} 0\\.\\d+`),
    );
    expect(metrics).toMatch(
      new RegExp(`production_in_scope_kept\\{model="support-category",version="${v}",bound="share"\\} [\\d.]+`),
    );

    // Importing the same file again adds nothing.
    const again = await ts('review.ts', ['import', ...common, '--file', file]);
    expect(again).toMatch(/imported 0 reviewed rows/);
    expect(again).toMatch(/was imported before/);
    expect(fs.readFileSync(reviewed, 'utf8').trim().split('\n')).toHaveLength(toTraining);

    // The Label Studio route: the project is made, the next batch goes in with the model's answers as
    // pre-annotations, an annotator labels through Label Studio's API, and the labels come back the same way.
    const started = await lsStarted;
    console.log(`[label-studio] first start in ${(started.startupMs / 1000).toFixed(1)}s`);
    expect((fs.statSync(labelStudioFiles(ls).tokenFile).mode & 0o077).toString(8)).toBe('0'); // owner only
    expect(fs.readdirSync(ls.dataDir)).toContain('label_studio.sqlite3'); // its state in its folder, not ~/.local
    // Its port taken, a second one is refused, not moved to the next port without a word.
    await expect(startLabelStudio({ ...ls, dataDir: path.join(out, 'ls-2') })).rejects.toThrow(/port \d+ .* is in use/);
    const lsEnv = { ...env, LABEL_STUDIO_PORT: String(lsPort), LABEL_STUDIO_DIR: ls.dataDir };
    const second = await runScript(
      'review.ts',
      [
        'build',
        ...common,
        '--size',
        '20',
        '--log-dir',
        servingLog,
        '--processed-dir',
        processed,
        '--format',
        'label-studio',
      ],
      lsEnv,
    );
    expect(second).toMatch(
      /Label Studio: 20 tasks with the model's answers as pre-annotations in project (\d+) \(created\)/,
    );
    expect(second).toMatch(/\d+ sent before/);
    const lsBatch = /review batch (\S+): 20 rows/.exec(second)![1]!;
    const studio = new LabelStudioClient(ls.url, labelStudioToken(ls, {}));
    const project = (await studio.projects()).find((x) => x.title === reviewProjectTitle(task))!;
    const ids = await studio.taskIds(project.id);
    expect(ids.size).toBe(20);
    const manifest = JSON.parse(
      fs.readFileSync(path.join(data, 'feedback', task, 'batches', `${lsBatch}.json`), 'utf8'),
    ) as BatchManifest;
    const item0 = manifest.items[0]!;
    const preds = (await (
      await fetch(`${ls.url}/api/predictions?task=${ids.get(item0.item_id)}`, {
        headers: { authorization: `Token ${labelStudioToken(ls, {})}` },
      })
    ).json()) as { model_version: string; score: number; result: { value: { choices: string[] } }[] }[];
    expect(preds[0]).toMatchObject({ model_version: `${task} v${v}`, score: item0.confidence });
    expect(preds[0]!.result[0]!.value.choices).toEqual([item0.in_scope ? item0.top_label : 'out_of_scope']);
    // The annotator finishes 15 of the 20 with the true labels; 5 stay open in Label Studio.
    for (const item of manifest.items.slice(0, 15))
      await studio.annotate(ids.get(item.item_id)!, truth.get(item.text)!);
    const pulled = await runScript('review.ts', ['import', ...common, '--from', 'label-studio'], lsEnv);
    expect(pulled).toMatch(/imported 15 reviewed rows of support-category: (\d+) to training .*; 0 quarantined/);
    const lsTraining = Number(/imported 15 reviewed rows of support-category: (\d+) to training/.exec(pulled)![1]);
    const fromStudio = fs
      .readFileSync(path.join(data, 'incoming', task, `reviewed-${lsBatch}.jsonl`), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(fromStudio[0]).toMatchObject({ annotator: LABEL_STUDIO_USER, batch_id: lsBatch, version: v });
    expect(await runScript('review.ts', ['import', ...common, '--from', 'label-studio'], lsEnv)).toMatch(
      /imported 0 reviewed rows/,
    );

    // A second look at the training data: confident learning picks likely label errors; the reviewer agrees with
    // the model on each, and the next retrain relabels those rows.
    const issuesOut = await ts('review.ts', [
      'build',
      ...common,
      '--reason',
      'label-issues',
      '--size',
      '10',
      '--log-dir',
      servingLog,
      '--processed-dir',
      processed,
      '--no-embeddings',
    ]);
    expect(issuesOut).toMatch(/confident learning over \d+ labelled rows of support-category: \d+ likely label errors/);
    expect(issuesOut).toMatch(/label issues 8, control 2\)/);
    const issueBatch = /review batch (\S+): 10 rows/.exec(issuesOut)![1]!;
    const issueRows = parse(
      fs.readFileSync(path.join(data, 'feedback', task, 'batches', `${issueBatch}.csv`), 'utf8'),
      { columns: true },
    ) as Record<string, string>[];
    const secondLook: Record<string, string>[] = issueRows.map((r) => ({
      ...r,
      label: r.reason === 'label_issue' ? r.top_label! : truth.get(r.text!)!,
      annotator: 'reviewer-2',
    }));
    const secondFile = path.join(out, 'second-look.csv');
    fs.writeFileSync(
      secondFile,
      [BATCH_CSV_COLUMNS.join(','), ...secondLook.map((r) => csvLine(BATCH_CSV_COLUMNS.map((c) => r[c] ?? '')))].join(
        '\n',
      ),
    );
    expect(await ts('review.ts', ['import', ...common, '--file', secondFile])).toMatch(
      /imported 10 reviewed rows .* 2 to the production slice, 8 corrections/,
    );

    // make monitor shows what people found on the traffic beside the drift.
    const monitored = await spawnScript(
      'monitor.ts',
      [
        '--task',
        task,
        '--log-dir',
        servingLog,
        '--processed-dir',
        processed,
        '--data-dir',
        data,
        '--out',
        path.join(out, 'reports'),
        '--no-mlflow',
      ],
      env,
    );
    expect([0, 2], monitored.stderr).toContain(monitored.status);
    expect(monitored.stdout).toMatch(
      new RegExp(`production slice v${v}: accuracy \\d+\\.\\d% \\[\\d+\\.\\d%, \\d+\\.\\d%\\] \\(n=32\\)`),
    );

    // The next retrain trains on both batches' rows, with the corrections applied.
    const retrained = await spawnScript(
      'retrain.ts',
      [
        'run',
        '--task',
        task,
        '--config',
        config,
        '--processed-dir',
        processed,
        '--incoming',
        path.join(data, 'incoming', task),
        '--quarantine-dir',
        path.join(out, 'quarantine'),
        '--state-dir',
        state,
        '--cache-dir',
        cache,
        '--data-dir',
        data,
        '--force',
        '--min-f1',
        '0.1',
        '--tolerance',
        '1',
      ],
      env,
    );
    expect([0, 2], retrained.stderr).toContain(retrained.status);
    expect(retrained.stdout).toMatch(
      new RegExp(`${toTraining + lsTraining} new labelled rows from .* \\(2 files, 0 quarantined\\)`),
    );
    // The gate scored both models on the production slice too (its in-scope reviewed rows), and says so.
    expect(retrained.stdout).toMatch(/8 reviewed corrections: 8 rows relabelled, 0 dropped as out of scope/);
    const sliceRows = 30 + Number(/(\d+) to the production slice/.exec(pulled)![1]) + 2;
    expect(retrained.stdout).toMatch(
      new RegExp(`on the production slice \\(${sliceRows} reviewed rows of real traffic\\)`),
    );
    await client.close();
  });
});
