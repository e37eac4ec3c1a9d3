import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { request } from 'undici';
import { loadConfig } from '../../src/config';
import { readPrepared } from '../../src/data/prepare';
import { readProductionConfig } from '../../src/production/config';
import { freePort } from '../../src/io/server-process';
import { runScript, spawnScript } from '../helpers/cli';

// Two tasks promoted and served at once, both servers writing into one serving-log folder: each
// task's monitor reads only its own model's predictions, and the one whose traffic drifted alerts.
const cfg = loadConfig();
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'two-tasks-'));
const env = { ...process.env, MLFLOW_TRACKING_URI: inject('mlflowUri') };
const tsNode = path.join(cfg.root, 'node_modules/.bin/ts-node');
const script = (name: string) => path.join(cfg.root, 'scripts', name);
const ts = (name: string, args: string[]) => runScript(name, args, env);
const servers: ChildProcess[] = [];
afterAll(() => {
  for (const s of servers) s.kill('SIGTERM');
  fs.rmSync(out, { recursive: true, force: true });
});

const tasks = ['support-category', 'churn-intent'] as const;

describe('every task is a production citizen', () => {
  it('the Makefile passes TASK to every production target', () => {
    for (const target of ['serve', 'monitor', 'retrain', 'report', 'rollback']) {
      const dry = execFileSync('make', ['-n', '--no-print-directory', target, 'TASK=churn-intent'], {
        cwd: cfg.root,
        encoding: 'utf8',
      });
      expect(dry, target).toMatch(/scripts\/\S+\.ts .*--task churn-intent/);
    }
  });

  it('two tasks served at once: each monitor sees only its own traffic; drifted traffic alerts with exit code 2', async () => {
    const processed = path.join(out, 'processed');
    const configs = path.join(out, 'production');
    const state = path.join(out, 'state');
    const logDir = path.join(out, 'serving');
    await ts('prepare-data.ts', ['--task', ...tasks, '--max-per-split', '200', '--processed-dir', processed]);
    const trained = await ts('train-baseline.ts', ['--task', ...tasks, '--epochs', '6', '--processed-dir', processed]);
    for (const task of tasks) {
      const runId = new RegExp(`==> ${task} baseline: .* run ([0-9a-f]{32})`).exec(trained)![1]!;
      await ts('promote.ts', [
        'register',
        '--run',
        runId,
        '--alias',
        'champion',
        '--config',
        path.join(configs, `${task}.json`),
        '--state-dir',
        state,
      ]);
      expect(readProductionConfig(path.join(configs, `${task}.json`))).toMatchObject({ task, model: { runId } }); // one file per task
    }

    const urls: Record<string, string> = {};
    for (const task of tasks) {
      const port = await freePort();
      servers.push(
        spawn(
          tsNode,
          [
            script('serve.ts'),
            '--task',
            task,
            '--port',
            String(port),
            '--log-dir',
            logDir,
            '--cache-dir',
            path.join(out, 'cache'),
          ],
          { cwd: cfg.root, env: { ...env, SERVE_TOKENS: 'test-serving-token-0123' }, stdio: 'ignore' },
        ),
      );
      urls[task] = `http://127.0.0.1:${port}`;
    }
    for (const url of Object.values(urls)) {
      for (
        let i = 0;
        i < 240 &&
        !(await request(`${url}/health`)
          .then((r) => r.body.dump().then(() => r.statusCode === 200))
          .catch(() => false));
        i++
      )
        await new Promise((r) => setTimeout(r, 500));
    }
    const send = async (task: string, texts: string[]) => {
      const r = await request(`${urls[task]}/predict`, {
        method: 'POST',
        headers: { authorization: 'Bearer test-serving-token-0123', 'content-type': 'application/json' },
        body: JSON.stringify({ texts }),
      });
      expect(r.statusCode).toBe(200);
      await r.body.dump();
    };
    // support-category gets its own kind of traffic (its training queries); churn-intent gets another domain.
    const own = readPrepared(path.join(processed, 'support-category'))
      .train.slice(0, 80)
      .map((e) => e.text);
    await send('support-category', own.slice(0, 40));
    await send(
      'churn-intent',
      Array.from(
        { length: 50 },
        (_, i) => `the router ${i % 9} keeps dropping my broadband and the tv box restarts every night`,
      ),
    );
    await send('support-category', own.slice(40));
    await new Promise((r) => setTimeout(r, 300)); // the log stream is flushed after each request

    const monitor = (task: string) =>
      spawnScript(
        'monitor.ts',
        [
          '--task',
          task,
          '--log-dir',
          logDir,
          '--processed-dir',
          processed,
          '--out',
          path.join(out, 'reports'),
          '--no-mlflow',
        ],
        env,
      );
    const a = await monitor('support-category');
    expect(a.stdout).toMatch(
      /==> 80 served predictions of support-category since .*80 compared, 50 of other models skipped.*: drift none, action none/,
    );
    expect(a.status, a.stderr).toBe(0);
    const b = await monitor('churn-intent');
    expect(b.stdout).toMatch(
      /==> 50 served predictions of churn-intent since .*50 compared, 80 of other models skipped.*: drift large, action retrain_and_alert/,
    );
    expect(b.status).toBe(2);
    expect(b.stderr).toMatch(/ALERT: large drift in churn-intent's served traffic/);
  });
});
