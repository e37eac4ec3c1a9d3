/**
 * The serving side of the team stack: N replicas of `make serve` following `models:/<model>@champion`
 * on the stack's MLflow, and Prometheus scraping them with the project's own monitoring/prometheus.yml
 * and alert rules (targets and token rewritten for these replicas). Each replica has its own model
 * cache and serving log, as separate containers or hosts would.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { freePort } from '../io/server-process';
import { answers, runningPid, spawnDetached, stopDetached, waitReady } from './processes';
import { stackEnv, type StackConfig } from './team-stack';

export interface ServingOptions {
  task: string;
  /** Registered model (default: the task). */
  model?: string;
  replicas: number;
  /** Seconds between each replica's checks of the alias (serve --watch). */
  watchSeconds: number;
  /** The project root (scripts/serve.ts, monitoring/). */
  root: string;
  /** Prometheus' scrape interval in seconds (default: monitoring/prometheus.yml's). */
  scrapeSeconds?: number;
}

export interface Replica {
  index: number;
  url: string;
  pidFile: string;
  logFile: string;
}

export interface Serving {
  task: string;
  model: string;
  replicas: Replica[];
  tokenFile: string;
  prometheus: { url: string; pidFile: string; logFile: string; configFile: string };
}

const servingFile = (cfg: StackConfig) => path.join(cfg.dir, 'serving.json');

/** The replicas and Prometheus the stack started, if any. */
export function servingOf(cfg: StackConfig): Serving | undefined {
  const f = servingFile(cfg);
  return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as Serving) : undefined;
}

/** One bearer token for all replicas (and Prometheus' scrapes), kept in the stack's folder. */
function servingToken(cfg: StackConfig): string {
  const file = path.join(cfg.dir, 'serve-token');
  if (!fs.existsSync(file)) fs.writeFileSync(file, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  return file;
}

/**
 * monitoring/prometheus.yml with the serving job pointed at `targets`, the token file and rule files
 * made absolute, and jobs with no target on this stack (the monitor's textfile exporter) left out.
 */
export function prometheusConfigFor(
  base: string,
  baseDir: string,
  o: { targets: string[]; task: string; tokenFile: string; scrapeSeconds?: number },
): string {
  const doc = YAML.parse(base) as {
    global?: Record<string, unknown>;
    rule_files?: string[];
    scrape_configs: {
      job_name: string;
      authorization?: { credentials_file?: string };
      static_configs?: { targets: string[]; labels?: Record<string, string> }[];
    }[];
  };
  const serve = doc.scrape_configs.find((j) => j.job_name === 'convo-serve');
  if (!serve) throw new Error('monitoring/prometheus.yml has no convo-serve job');
  serve.static_configs = [{ targets: o.targets, labels: { task: o.task } }];
  serve.authorization = { ...serve.authorization, credentials_file: o.tokenFile };
  doc.scrape_configs = [serve];
  doc.rule_files = (doc.rule_files ?? []).map((f) => path.resolve(baseDir, f));
  if (o.scrapeSeconds) doc.global = { ...doc.global, scrape_interval: `${o.scrapeSeconds}s` };
  return YAML.stringify(doc);
}

/**
 * Starts the replicas (waiting until each serves the champion) and Prometheus. Finds them running when
 * the same model and replica count were asked for; otherwise replaces what runs.
 */
export async function startServing(cfg: StackConfig, o: ServingOptions): Promise<Serving> {
  const model = o.model ?? o.task;
  const running = servingOf(cfg);
  if (
    running?.model === model &&
    running.replicas.length === o.replicas &&
    [...running.replicas.map((r) => r.pidFile), running.prometheus.pidFile].every((f) => runningPid(f))
  )
    return running;
  await stopServing(cfg);
  const tokenFile = servingToken(cfg);
  const replicas: (Replica & { pid: number })[] = [];
  for (let index = 0; index < o.replicas; index++) {
    const dir = path.join(cfg.dir, 'serve', String(index));
    fs.mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const r: Replica = {
      index,
      url: `http://127.0.0.1:${port}`,
      pidFile: path.join(dir, 'serve.pid'),
      logFile: path.join(dir, 'serve.log'),
    };
    const pid = spawnDetached({
      cmd: path.join(o.root, 'node_modules', '.bin', 'ts-node'),
      args: [
        path.join(o.root, 'scripts', 'serve.ts'),
        '--task',
        o.task,
        '--model',
        model,
        '--port',
        String(port),
        '--watch',
        String(o.watchSeconds),
        '--cache-dir',
        path.join(dir, 'models'),
        '--log-dir',
        path.join(dir, 'serving'),
      ],
      pidFile: r.pidFile,
      logFile: r.logFile,
      cwd: o.root,
      // The read-only account: a replica follows @champion and cannot move it.
      env: { ...process.env, ...stackEnv(cfg).serving, SERVE_TOKEN_FILE: tokenFile, SERVE_TOKENS: '' },
    });
    replicas.push({ ...r, pid });
  }
  const promDir = path.join(cfg.dir, 'prometheus');
  fs.mkdirSync(promDir, { recursive: true });
  const configFile = path.join(promDir, 'prometheus.yml');
  const baseFile = path.join(o.root, 'monitoring', 'prometheus.yml');
  fs.writeFileSync(
    configFile,
    prometheusConfigFor(fs.readFileSync(baseFile, 'utf8'), path.dirname(baseFile), {
      targets: replicas.map((r) => new URL(r.url).host),
      task: o.task,
      tokenFile,
      scrapeSeconds: o.scrapeSeconds,
    }),
  );
  const promPort = await freePort();
  const prometheus = {
    url: `http://127.0.0.1:${promPort}`,
    pidFile: path.join(promDir, 'prometheus.pid'),
    logFile: path.join(promDir, 'prometheus.log'),
    configFile,
  };
  const promPid = spawnDetached({
    cmd: 'prometheus',
    args: [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(promDir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ],
    pidFile: prometheus.pidFile,
    logFile: prometheus.logFile,
  });
  const serving: Serving = {
    task: o.task,
    model,
    replicas: replicas.map(({ pid: _pid, ...r }) => r),
    tokenFile,
    prometheus,
  };
  // Recorded before the wait, so a replica that never gets ready is still stopped by stopServing.
  fs.writeFileSync(servingFile(cfg), `${JSON.stringify(serving, null, 2)}\n`);
  try {
    for (const r of replicas)
      await waitReady(`model server replica ${r.index}`, r.pid, r.logFile, () => answers(`${r.url}/health`), 180_000);
    await waitReady('Prometheus', promPid, prometheus.logFile, () => answers(`${prometheus.url}/-/ready`));
  } catch (err) {
    await stopServing(cfg);
    throw err;
  }
  return serving;
}

export async function stopServing(cfg: StackConfig): Promise<void> {
  const s = servingOf(cfg);
  if (!s) return;
  await Promise.all([...s.replicas.map((r) => stopDetached(r.pidFile)), stopDetached(s.prometheus.pidFile)]);
  fs.rmSync(servingFile(cfg), { force: true });
}
