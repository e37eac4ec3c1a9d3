/**
 * make bench-serve: load test of `make serve` on loopback. Starts the server as its own process,
 * drives it with N concurrent keep-alive clients for a warm-up and then a measured period (bounded
 * in time), and reports latency percentiles, throughput, errors and the server's memory (from its
 * own /metrics) after warm-up vs at the end. Results go to bench/serve-<task>.json and to MLflow.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { Pool } from 'undici';
import { loadConfig } from '../src/config';
import { MlflowClient, withRun } from '../src/mlflow';
import { freePort } from '../src/io/server-process';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const TOKEN = 'bench-serving-token-0123';
const SAMPLE_TEXTS = [
  'I was charged twice for the same card payment',
  'Customer: I want to close my account today.\nAgent: I am sorry to hear that.',
  'How long does a transfer to another bank take?',
  'My top up failed but the money left my account',
  'Customer: the new plan is too expensive, I am thinking of switching providers',
];

export interface LoadResult {
  duration_s: number;
  requests: number;
  errors: number;
  statuses: Record<string, number>;
  throughput_rps: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number };
  rss_mb: { after_warmup: number; end: number; max: number; growth_after_warmup: number };
}

interface LoadOptions {
  clients: number;
  warmup: number;
  duration: number;
  path: string;
  headers: Record<string, string>;
  body: (texts: string[]) => unknown;
  textsPerRequest: number;
  /** Server memory in bytes, sampled after warm-up and every 5 s. */
  rss?: () => Promise<number>;
}

/** Closed-loop load: `clients` concurrent request loops, bounded by time. */
async function loadTest(pool: Pool, o: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let measuring = false;
  let stop = false;
  let i = 0;
  const client = async () => {
    while (!stop) {
      const texts = Array.from({ length: o.textsPerRequest }, () => SAMPLE_TEXTS[i++ % SAMPLE_TEXTS.length]!);
      const t0 = performance.now();
      let status = 'network-error';
      try {
        const res = await pool.request({
          method: 'POST',
          path: o.path,
          headers: { ...o.headers, 'content-type': 'application/json' },
          body: JSON.stringify(o.body(texts)),
        });
        await res.body.dump();
        status = String(res.statusCode);
      } catch {
        /* counted as an error */
      }
      if (measuring) {
        latencies.push(performance.now() - t0);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }
  };
  const workers = Array.from({ length: o.clients }, client);
  await new Promise((r) => setTimeout(r, o.warmup * 1000));
  const rssWarm = o.rss ? await o.rss() : NaN;
  measuring = true;
  const t0 = Date.now();
  const rssSamples: number[] = [];
  while (Date.now() - t0 < o.duration * 1000) {
    await new Promise((r) => setTimeout(r, Math.min(5000, o.duration * 1000 - (Date.now() - t0))));
    if (o.rss) rssSamples.push(await o.rss());
  }
  measuring = false;
  stop = true;
  await Promise.all(workers);
  const seconds = (Date.now() - t0) / 1000;
  const sorted = latencies.sort((a, b) => a - b);
  const errors = Object.entries(statuses)
    .filter(([s]) => s !== '200')
    .reduce((a, [, n]) => a + n, 0);
  const rssEnd = rssSamples.at(-1) ?? NaN;
  return {
    duration_s: seconds,
    requests: sorted.length,
    errors,
    statuses,
    throughput_rps: sorted.length / seconds,
    latency_ms: {
      p50: percentile(sorted, 0.5),
      p90: percentile(sorted, 0.9),
      p99: percentile(sorted, 0.99),
      max: sorted.at(-1) ?? NaN,
    },
    rss_mb: {
      after_warmup: rssWarm / 2 ** 20,
      end: rssEnd / 2 ** 20,
      max: Math.max(...rssSamples) / 2 ** 20,
      growth_after_warmup: (rssEnd - rssWarm) / 2 ** 20,
    },
  };
}

/** Polls `route` until it answers 200; fails if the server process exits or time runs out. */
async function waitUntilUp(
  pool: Pool,
  route: string,
  timeoutMs: number,
  server: ChildProcess,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`${what} exited during start-up`);
    try {
      const r = await pool.request({ method: 'GET', path: route });
      await r.body.dump();
      if (r.statusCode === 200) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`${what} did not answer ${route} within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Trains the scikit-learn twin, serves it with `mlflow models serve` and load-tests /invocations. */
async function mlflowReference(
  task: string,
  clients: number,
  duration: number,
  textsPerRequest: number,
): Promise<LoadResult> {
  const dir = path.join(cfg.root, '.cache', 'bench', `sklearn-${task}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const trained = spawnSync(
    cfg.python,
    [path.join(cfg.root, 'scripts/bench/sklearn_reference.py'), path.join(cfg.root, 'data', 'processed', task), dir],
    { encoding: 'utf8' },
  );
  if (trained.status !== 0)
    throw new Error(`training the scikit-learn reference failed: ${trained.stderr.slice(-2000)}`);
  const port = await freePort();
  const server = spawn(
    path.join(cfg.venv, 'bin', 'mlflow'),
    ['models', 'serve', '-m', dir, '--env-manager', 'local', '-h', '127.0.0.1', '-p', String(port), '-w', '2'],
    {
      stdio: 'ignore',
      detached: true,
      // mlflow models serve execs `uvicorn` by name: the venv's bin must be on PATH.
      env: { ...process.env, PATH: `${path.join(cfg.venv, 'bin')}:${process.env.PATH}` },
    },
  );
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: clients });
  try {
    await waitUntilUp(pool, '/ping', 120_000, server, 'mlflow models serve');
    log(`==> mlflow models serve (scikit-learn, 2 workers): ${clients} clients, ${duration}s: POST /invocations`);
    return await loadTest(pool, {
      clients,
      warmup: 5,
      duration,
      path: '/invocations',
      headers: {},
      body: (texts) => ({ dataframe_records: texts.map((text) => ({ text })) }),
      textsPerRequest,
    });
  } finally {
    await pool.close().catch(() => undefined);
    try {
      process.kill(-server.pid!, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
}

export const percentile = (sorted: number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

async function rss(pool: Pool): Promise<number> {
  const res = await pool.request({ method: 'GET', path: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
  const text = await res.body.text();
  return Number(/^process_resident_memory_bytes (\S+)$/m.exec(text)?.[1] ?? NaN);
}

const program = new Command('bench-serve')
  .description(
    'Load-test the model server on loopback: concurrent clients, latency percentiles, throughput, errors, memory growth.',
  )
  .option('--task <name>', 'task whose @champion is served', 'support-category')
  .option('--clients <n>', 'concurrent clients', (v) => Number.parseInt(v, 10), 100)
  .option('--duration <s>', 'measured seconds', (v) => Number.parseFloat(v), 60)
  .option('--warmup <s>', 'warm-up seconds (not measured)', (v) => Number.parseFloat(v), 10)
  .option('--texts <n>', 'texts per request', (v) => Number.parseInt(v, 10), 1)
  .option('--no-compare', 'skip the comparison with `mlflow models serve` (scikit-learn, same model kind)')
  .option('--compare-duration <s>', 'measured seconds per server in the comparison', (v) => Number.parseFloat(v), 30)
  .option('--no-mlflow', 'do not log to MLflow')
  .action(
    (opts: {
      task: string;
      clients: number;
      duration: number;
      warmup: number;
      texts: number;
      compare: boolean;
      compareDuration: number;
      mlflow: boolean;
    }) =>
      runMain(async () => {
        const port = await freePort();
        // Its own model cache and serving log: a benchmark neither reuses nor leaves production state.
        const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-serve-'));
        const server = spawn(
          path.join(cfg.root, 'node_modules/.bin/ts-node'),
          [
            path.join(cfg.root, 'scripts/serve.ts'),
            '--task',
            opts.task,
            '--port',
            String(port),
            '--log-dir',
            path.join(scratch, 'serving'),
            '--cache-dir',
            path.join(scratch, 'cache'),
          ],
          {
            env: { ...process.env, SERVE_TOKENS: TOKEN },
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        const pool = new Pool(`http://127.0.0.1:${port}`, { connections: opts.clients, pipelining: 1 });
        try {
          await waitUntilUp(
            pool,
            '/health',
            60_000,
            server,
            'the model server (is @champion set for this task? make promote, then set the alias)',
          );
          log(
            `==> ${opts.clients} clients, ${opts.warmup}s warm-up, ${opts.duration}s measured, ${opts.texts} text(s) per request: POST /predict`,
          );
          const main = await loadTest(pool, {
            clients: opts.clients,
            warmup: opts.warmup,
            duration: opts.duration,
            path: '/predict',
            headers: { authorization: `Bearer ${TOKEN}` },
            body: (texts) => ({ texts }),
            textsPerRequest: opts.texts,
            rss: () => rss(pool),
          });
          const result = {
            task: opts.task,
            clients: opts.clients,
            texts_per_request: opts.texts,
            ...main,
            machine: { cpus: os.cpus().length, node: process.version },
            at: new Date().toISOString(),
          } as Record<string, unknown> & LoadResult;
          log(
            `requests ${main.requests} (${main.throughput_rps.toFixed(0)}/s), errors ${main.errors}, latency p50 ${main.latency_ms.p50.toFixed(1)} ms, p99 ${main.latency_ms.p99.toFixed(1)} ms; server RSS ${main.rss_mb.after_warmup.toFixed(0)} -> ${main.rss_mb.end.toFixed(0)} MB`,
          );

          if (opts.compare) {
            // Same model kind in the tool users would otherwise pick: scikit-learn served by `mlflow models serve`,
            // both driven through MLflow's scoring protocol with the same clients and texts.
            const ours = await loadTest(pool, {
              clients: opts.clients,
              warmup: 5,
              duration: opts.compareDuration,
              path: '/invocations',
              headers: { authorization: `Bearer ${TOKEN}` },
              body: (texts) => ({ dataframe_records: texts.map((text) => ({ text })) }),
              textsPerRequest: opts.texts,
            });
            const ref = await mlflowReference(opts.task, opts.clients, opts.compareDuration, opts.texts);
            result.comparison = {
              route: '/invocations (dataframe_records)',
              ours: ours,
              mlflow_models_serve_sklearn: ref,
              throughput_ratio: ours.throughput_rps / ref.throughput_rps,
              p50_ratio: ref.latency_ms.p50 / ours.latency_ms.p50,
              p99_ratio: ref.latency_ms.p99 / ours.latency_ms.p99,
            };
            log(
              `vs mlflow models serve (scikit-learn): ${ours.throughput_rps.toFixed(0)} vs ${ref.throughput_rps.toFixed(0)} requests/s (x${(ours.throughput_rps / ref.throughput_rps).toFixed(2)}), p99 ${ours.latency_ms.p99.toFixed(1)} vs ${ref.latency_ms.p99.toFixed(1)} ms, errors ${ours.errors} vs ${ref.errors}`,
            );
          }
          fs.mkdirSync(path.join(cfg.root, 'bench'), { recursive: true });
          const file = path.join(cfg.root, 'bench', `serve-${opts.task}.json`);
          fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
          log(`wrote ${path.relative(cfg.root, file)}`);
          if (opts.mlflow) {
            const mlflow = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
            await withRun(
              mlflow,
              {
                experiment: 'benchmarks',
                runName: `serve-${opts.task}`,
                source: 'scripts/bench-serve.ts',
                tags: { bench: 'serve' },
              },
              async (run) => {
                await run.logParams({
                  task: opts.task,
                  clients: opts.clients,
                  duration_s: opts.duration,
                  warmup_s: opts.warmup,
                  texts_per_request: opts.texts,
                  compared: Boolean(opts.compare),
                });
                const cmp = result.comparison as { throughput_ratio: number; p99_ratio: number } | undefined;
                await run.logMetrics({
                  throughput_rps: main.throughput_rps,
                  errors: main.errors,
                  p50_ms: main.latency_ms.p50,
                  p90_ms: main.latency_ms.p90,
                  p99_ms: main.latency_ms.p99,
                  rss_growth_mb: main.rss_mb.growth_after_warmup,
                  rss_end_mb: main.rss_mb.end,
                  ...(cmp
                    ? {
                        throughput_ratio_vs_mlflow_serve: cmp.throughput_ratio,
                        p99_ratio_vs_mlflow_serve: cmp.p99_ratio,
                      }
                    : {}),
                });
                await run.logArtifact(file, 'bench');
              },
            );
            await mlflow.close();
          }
          if (main.errors > 0) process.exitCode = 1;
        } finally {
          await pool.close().catch(() => undefined);
          await new Promise<void>((resolve) => {
            server.once('exit', () => resolve());
            server.kill('SIGTERM');
          });
          fs.rmSync(scratch, { recursive: true, force: true });
        }
      }),
  );
program.parse();
