import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { SMTPServer } from 'smtp-server';
import { request } from 'undici';
import { loadConfig } from '../../src/config';
import { MlflowClient, withRun } from '../../src/mlflow';
import { freePort } from '../../src/io/server-process';
import { runScript, spawnScript } from '../helpers/cli';
import { startServeProcess } from '../helpers/serve-process';

// The whole loop through the command-line entry points, small data, against the real server:
// prepare -> baseline -> promote -> retrain (drifted data) -> serve the champion -> monitor -> report (mailed).
const cfg = loadConfig();
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'loop-'));
const task = 'conversation-churn';
const env = { ...process.env, MLFLOW_TRACKING_URI: inject('mlflowUri') };
const ts = (script: string, args: string[], extraEnv: Record<string, string> = {}) =>
  runScript(script, args, { ...env, ...extraEnv });
const children: ReturnType<typeof spawn>[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGTERM');
  fs.rmSync(out, { recursive: true, force: true });
});

describe('production loop end to end', () => {
  it('promote -> retrain -> champion -> serve -> monitor -> report, all visible in MLflow', async () => {
    const processed = path.join(out, 'processed');
    await ts('prepare-data.ts', ['--task', task, '--max-per-split', '300', '--processed-dir', processed]);
    const trained = await ts('train-baseline.ts', ['--task', task, '--epochs', '8', '--processed-dir', processed]);
    const runId = /run ([0-9a-f]{32})/.exec(trained)![1]!;
    const config = path.join(out, 'production', `${task}.json`);
    const state = path.join(out, 'state');
    const cache = path.join(out, 'cache');
    expect(await ts('promote.ts', ['register', '--run', runId, '--config', config, '--state-dir', state])).toMatch(
      /@challenger/,
    );

    // New labelled data that drifts: transcripts about a new topic (price rise), labelled.
    const incoming = path.join(out, 'incoming');
    fs.mkdirSync(incoming);
    const rows = Array.from({ length: 400 }, (_, i) =>
      i % 2
        ? `"Customer: the price went up again ${i % 9} times, I will cancel and switch to another provider.\nAgent: I understand.",yes`
        : `"Customer: thanks, the new router ${i % 7} works great and I am happy.\nAgent: Glad to help.",no`,
    );
    // A copy of a test row (in other case) must not reach training: quarantined, with the blank row.
    const testRow = JSON.parse(fs.readFileSync(path.join(processed, task, 'test.jsonl'), 'utf8').split('\n')[0]!) as {
      text: string;
      label: string;
    };
    const copied = `"${testRow.text.toUpperCase().replace(/"/g, '""')}",${testRow.label}`;
    fs.writeFileSync(path.join(incoming, 'week-1.csv'), `text,label\n${rows.join('\n')}\n,no\n${copied}\n`);
    // A retrain killed earlier, with other inputs: its run is still RUNNING with other params, and the state
    // file names it. It must be closed, not continued (MLflow refuses to log a changed param over it).
    const leftover = new MlflowClient({
      trackingUri: inject('mlflowUri'),
      journalDir: path.join(out, 'j0'),
      log: () => {},
    });
    const killed = await withRun(leftover, { experiment: task, runName: 'retrain' }, async (run) => {
      await run.logParams({ task, incoming_rows: 7, data_digest: 'f'.repeat(32), force: true });
      return run.runId;
    });
    await leftover.updateRun(killed, { status: 'RUNNING' });
    fs.mkdirSync(state, { recursive: true });
    fs.writeFileSync(path.join(state, `${task}.json`), JSON.stringify({ inProgressRunId: killed }));
    const r = await spawnScript(
      'retrain.ts',
      [
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
        state,
        '--cache-dir',
        cache,
        '--min-f1',
        '0.3',
        '--tolerance',
        '0.5',
      ],
      env,
    );
    const retrained = r.stdout;
    // A new topic (price rises) appeared: large drift, so the model is retrained and promoted, and the
    // run ends with the alert exit code 2.
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/ALERT: large drift for conversation-churn/);
    expect(retrained).toMatch(/drift: large/);
    expect(retrained).toMatch(/401 new labelled rows|400 new labelled rows/);
    expect(retrained).toMatch(/2 quarantined/);
    const refused = fs.readFileSync(path.join(out, 'quarantine', 'week-1.csv.quarantine.jsonl'), 'utf8');
    expect(refused).toMatch(/"row":402,.*repeats a row of the validation or test split/);
    expect(retrained).toMatch(/decision: promoted/);
    expect(retrained).toMatch(new RegExp(`previous retrain run ${killed} ended KILLED; starting a new run`));
    expect((await leftover.getRun(killed)).info.status).toBe('KILLED');
    expect(JSON.parse(fs.readFileSync(path.join(state, `${task}.json`), 'utf8'))).not.toHaveProperty('inProgressRunId');
    await leftover.close();
    const client = new MlflowClient({
      trackingUri: inject('mlflowUri'),
      journalDir: path.join(out, 'journal'),
      log: () => {},
    });
    const champion = (await client.getModelVersionByAlias(task, 'champion'))!;

    // Serve the champion.
    const servingLog = path.join(out, 'serving');
    const { url, server } = await startServeProcess(['--task', task, '--log-dir', servingLog, '--cache-dir', cache], {
      ...env,
      SERVE_TOKENS: 'test-serving-token-0123',
    });
    children.push(server);
    const headers = { authorization: 'Bearer test-serving-token-0123', 'content-type': 'application/json' };
    const texts = Array.from({ length: 60 }, (_, i) =>
      i % 3
        ? `Customer: the price went up, I want to cancel my plan ${i}`
        : `Customer: how do I upgrade my phone ${i}? my email is a${i}@example.com`,
    );
    const predict = await request(`${url}/predict`, { method: 'POST', headers, body: JSON.stringify({ texts }) });
    const body = (await predict.body.json()) as { model: { version: string }; predictions: { bucket: string }[] };
    expect(predict.statusCode).toBe(200);
    expect(body.model.version).toBe(champion.version);
    expect(new Set(body.predictions.map((p) => p.bucket))).toContain('A');
    const inv = await request(`${url}/invocations`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ dataframe_records: [{ text: 'cancel my contract' }] }),
    });
    expect(inv.statusCode).toBe(200);
    expect(((await inv.body.json()) as { predictions: unknown[] }).predictions).toHaveLength(1);
    server.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));

    // Monitor: served traffic (mostly the new topic) vs the training data: large drift, alert, exit 2.
    const m = await spawnScript(
      'monitor.ts',
      ['--task', task, '--log-dir', servingLog, '--processed-dir', processed, '--out', path.join(out, 'reports')],
      env,
    );
    expect(m.stdout).toMatch(
      new RegExp(
        `61 served predictions of ${task} since .*\\(v${champion.version}: 61; 61 compared, 0 of other models skipped, 0 malformed log lines\\): drift large, action retrain_and_alert`,
      ),
    );
    expect(m.status, m.stderr).toBe(2);
    expect(m.stderr).toMatch(/ALERT: large drift in conversation-churn's served traffic/);
    expect(fs.readdirSync(path.join(out, 'reports')).some((f) => f.startsWith('monitor-conversation-churn'))).toBe(
      true,
    );

    // Report, mailed to a local SMTP server.
    const mails: string[] = [];
    const smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, _session, cb) {
        let data = '';
        stream.on('data', (c: Buffer) => (data += c.toString()));
        stream.on('end', () => {
          mails.push(data);
          cb();
        });
      },
    });
    const smtpPort = await freePort();
    await new Promise<void>((r) => smtp.listen(smtpPort, '127.0.0.1', r));
    try {
      // Asynchronous: the SMTP server lives in this process and must keep answering meanwhile.
      const { stdout: reported } = await promisify(execFile)(
        path.join(cfg.root, 'node_modules/.bin/ts-node'),
        [
          path.join(cfg.root, 'scripts/report.ts'),
          '--task',
          task,
          '--log-dir',
          servingLog,
          '--cache-dir',
          cache,
          '--out',
          path.join(out, 'reports'),
        ],
        {
          cwd: cfg.root,
          env: {
            ...env,
            SMTP_HOST: '127.0.0.1',
            SMTP_PORT: String(smtpPort),
            REPORT_TO: 'retention@example.com',
            REPORT_FROM: 'mlops@example.com',
          },
          timeout: 120_000,
        },
      );
      expect(reported).toMatch(/61 conversations: A \d+ \(call\), B \d+ \(offer\), C \d+ \(retained\)/);
      expect(reported).toMatch(/mailed to retention@example.com/);
    } finally {
      await new Promise<void>((r) => smtp.close(() => r()));
    }
    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatch(/Subject: Churn report conversation-churn/);
    expect(mails[0]).toMatch(/filename=churn-conversation-churn-.*\.csv/);
    const csv = fs.readFileSync(
      path.join(
        out,
        'reports',
        fs.readdirSync(path.join(out, 'reports')).find((f) => f.endsWith('.csv'))!,
      ),
      'utf8',
    );
    expect(csv.split('\n')[0]).toMatch(/^ts,ref,bucket,p_churn/);
    expect(csv).not.toMatch(/a\d+@example\.com/); // the serving log keeps PII masked, so the report does too

    // All of it is in MLflow.
    const exp = (await client.getExperimentByName(task))!;
    const names = (await client.searchAllRuns({ experimentIds: [exp.experiment_id] })).map((r) => r.info.run_name);
    expect(names).toEqual(expect.arrayContaining(['baseline-tfidf-logreg', 'retrain', 'monitor']));
    const dataExp = (await client.getExperimentByName(`${task}-data`))!;
    const dataRuns = await client.searchAllRuns({ experimentIds: [dataExp.experiment_id] });
    expect(dataRuns.map((r) => r.info.run_name)).toContain('prepare-data');
    await client.close();
  });
});
