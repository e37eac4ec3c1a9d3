/**
 * make bench-serve: load test of `make serve` on loopback. Starts the server as its own process,
 * drives it with N concurrent keep-alive clients for a warm-up and then a measured period (bounded
 * in time), and reports latency percentiles, throughput, errors and the server's memory (from its
 * own /metrics) after warm-up vs at the end. Results go to bench/serve-<task>.json and to MLflow.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { Pool } from 'undici';
import { loadConfig } from '../src/config';
import { MlflowClient, withRun } from '../src/mlflow';
import { freePort } from '../src/mlflow/server';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const TOKEN = 'bench-token';
const SAMPLE_TEXTS = [
  'I was charged twice for the same card payment',
  'Customer: I want to close my account today.\nAgent: I am sorry to hear that.',
  'How long does a transfer to another bank take?',
  'My top up failed but the money left my account',
  'Customer: the new plan is too expensive, I am thinking of switching providers',
];

export const percentile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

async function rss(pool: Pool): Promise<number> {
  const res = await pool.request({ method: 'GET', path: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
  const text = await res.body.text();
  return Number(/^process_resident_memory_bytes (\S+)$/m.exec(text)?.[1] ?? NaN);
}

const program = new Command('bench-serve')
  .description('Load-test the model server on loopback: concurrent clients, latency percentiles, throughput, errors, memory growth.')
  .option('--task <name>', 'task whose @champion is served', 'support-category')
  .option('--clients <n>', 'concurrent clients', (v) => Number.parseInt(v, 10), 100)
  .option('--duration <s>', 'measured seconds', (v) => Number.parseFloat(v), 60)
  .option('--warmup <s>', 'warm-up seconds (not measured)', (v) => Number.parseFloat(v), 10)
  .option('--texts <n>', 'texts per request', (v) => Number.parseInt(v, 10), 1)
  .option('--no-mlflow', 'do not log to MLflow')
  .action((opts: { task: string; clients: number; duration: number; warmup: number; texts: number; mlflow: boolean }) =>
    runMain(async () => {
      const port = await freePort();
      const server = spawn(path.join(cfg.root, 'node_modules/.bin/ts-node'), [path.join(cfg.root, 'scripts/serve.ts'), '--task', opts.task, '--port', String(port), '--log-file', path.join(cfg.root, '.cache', 'bench-serving.jsonl')], {
        env: { ...process.env, SERVE_TOKENS: TOKEN },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const pool = new Pool(`http://127.0.0.1:${port}`, { connections: opts.clients, pipelining: 1 });
      try {
        const deadline = Date.now() + 60_000;
        for (;;) {
          if (server.exitCode !== null) throw new Error('the server exited during start-up (is @champion set for this task? run make promote and set the alias)');
          try {
            const r = await pool.request({ method: 'GET', path: '/health' });
            await r.body.dump();
            if (r.statusCode === 200) break;
          } catch {
            /* not up yet */
          }
          if (Date.now() > deadline) throw new Error('server did not become healthy within 60 s');
          await new Promise((r) => setTimeout(r, 250));
        }
        const latencies: number[] = [];
        const statuses: Record<string, number> = {};
        let measuring = false;
        let stop = false;
        let i = 0;
        const client = async () => {
          while (!stop) {
            const texts = Array.from({ length: opts.texts }, () => SAMPLE_TEXTS[i++ % SAMPLE_TEXTS.length]!);
            const t0 = performance.now();
            let status = 'network-error';
            try {
              const res = await pool.request({ method: 'POST', path: '/predict', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ texts }) });
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
        log(`==> ${opts.clients} clients, ${opts.warmup}s warm-up, ${opts.duration}s measured, ${opts.texts} text(s) per request`);
        const workers = Array.from({ length: opts.clients }, client);
        await new Promise((r) => setTimeout(r, opts.warmup * 1000));
        const rssWarm = await rss(pool);
        measuring = true;
        const t0 = Date.now();
        const rssSamples: number[] = [];
        while (Date.now() - t0 < opts.duration * 1000) {
          await new Promise((r) => setTimeout(r, Math.min(5000, opts.duration * 1000 - (Date.now() - t0))));
          rssSamples.push(await rss(pool));
        }
        measuring = false;
        stop = true;
        await Promise.all(workers);
        const seconds = (Date.now() - t0) / 1000;
        const sorted = latencies.sort((a, b) => a - b);
        const errors = Object.entries(statuses).filter(([s]) => s !== '200').reduce((a, [, n]) => a + n, 0);
        const rssEnd = rssSamples.at(-1)!;
        const result = {
          task: opts.task,
          clients: opts.clients,
          duration_s: seconds,
          texts_per_request: opts.texts,
          requests: sorted.length,
          errors,
          statuses,
          throughput_rps: sorted.length / seconds,
          latency_ms: { p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: sorted.at(-1) },
          rss_mb: { after_warmup: rssWarm / 2 ** 20, end: rssEnd / 2 ** 20, max: Math.max(...rssSamples) / 2 ** 20, growth_after_warmup: (rssEnd - rssWarm) / 2 ** 20 },
          machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
          at: new Date().toISOString(),
        };
        fs.mkdirSync(path.join(cfg.root, 'bench'), { recursive: true });
        const file = path.join(cfg.root, 'bench', `serve-${opts.task}.json`);
        fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
        log(`requests ${result.requests} (${result.throughput_rps.toFixed(0)}/s), errors ${errors}, latency p50 ${result.latency_ms.p50.toFixed(1)} ms, p99 ${result.latency_ms.p99.toFixed(1)} ms; server RSS ${result.rss_mb.after_warmup.toFixed(0)} -> ${result.rss_mb.end.toFixed(0)} MB`);
        log(`wrote ${path.relative(cfg.root, file)}`);
        if (opts.mlflow) {
          const mlflow = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
          await withRun(mlflow, { experiment: 'benchmarks', runName: `serve-${opts.task}`, source: 'scripts/bench-serve.ts', tags: { bench: 'serve' } }, async (run) => {
            await run.logParams({ task: opts.task, clients: opts.clients, duration_s: opts.duration, warmup_s: opts.warmup, texts_per_request: opts.texts });
            await run.logMetrics({ throughput_rps: result.throughput_rps, errors, p50_ms: result.latency_ms.p50, p90_ms: result.latency_ms.p90, p99_ms: result.latency_ms.p99, rss_growth_mb: result.rss_mb.growth_after_warmup, rss_end_mb: result.rss_mb.end });
            await run.logArtifact(file, 'bench');
          });
          await mlflow.close();
        }
        if (errors > 0) process.exitCode = 1;
      } finally {
        await pool.close().catch(() => undefined);
        server.kill('SIGTERM');
      }
    }),
  );
program.parse();
