/**
 * Lifecycle of a local `mlflow server` (SQLite backend, artifacts proxied by the server).
 * Used by `make mlflow-up/down/status` and by the integration tests, so both run the same code.
 *
 * The server runs in its own process group: `mlflow server` forks uvicorn workers (and, when
 * enabled, job consumers) that outlive a plain kill of the parent, so stop signals the group.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { MlflowServerConfig } from '../config';
import { pidFileLine, processAlive, readPidFile } from '../io/process-identity';

export interface ServerFiles {
  pidFile: string;
  logFile: string;
}

export interface ServerStatus {
  running: boolean;
  healthy: boolean;
  pid?: number;
  url: string;
}

export interface StartResult extends ServerStatus {
  alreadyRunning: boolean;
  startupMs: number;
}

export function serverFiles(cfg: MlflowServerConfig): ServerFiles {
  return { pidFile: path.join(cfg.stateDir, 'server.pid'), logFile: path.join(cfg.stateDir, 'server.log') };
}

/**
 * The server's recorded group leader; undefined when none is recorded, or when its pid now names another
 * process (same pid, other start time): the server is gone and that number is a stranger's.
 */
function readPid(pidFile: string): number | undefined {
  const rec = readPidFile(pidFile);
  if (!rec || (processAlive(rec.pid) && !processAlive(rec.pid, rec.start))) return undefined;
  return rec.pid;
}

/** True while any process of the group led by `pgid` exists. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function isHealthy(url: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const res = await fetch(new URL('/health', url), { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok;
  } catch {
    return false;
  }
}

function portInUse(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(true));
    srv.listen(port, host, () => srv.close(() => resolve(false)));
  });
}

/** A free TCP port on the loopback interface (for tests and ad-hoc servers). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export async function serverStatus(cfg: MlflowServerConfig): Promise<ServerStatus> {
  const { pidFile } = serverFiles(cfg);
  const pid = readPid(pidFile);
  const url = `http://${cfg.host}:${cfg.port}`;
  const running = pid !== undefined && groupAlive(pid);
  return { running, healthy: running && (await isHealthy(url)), pid: running ? pid : undefined, url };
}

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export interface StartOptions {
  /** Path of the `mlflow` executable (the project venv's by default). */
  mlflowBin: string;
  /** How long to wait for /health. */
  timeoutMs?: number;
  /** Extra environment for the server process. */
  env?: NodeJS.ProcessEnv;
}

export async function startServer(cfg: MlflowServerConfig, opts: StartOptions): Promise<StartResult> {
  const t0 = Date.now();
  const { pidFile, logFile } = serverFiles(cfg);
  const status = await serverStatus(cfg);
  if (status.running) {
    if (!status.healthy) await waitHealthy(cfg, status.pid!, opts.timeoutMs ?? 90_000, logFile);
    return { ...status, healthy: true, alreadyRunning: true, startupMs: Date.now() - t0 };
  }
  if (fs.existsSync(pidFile)) fs.rmSync(pidFile); // stale: its process group is gone
  if (await portInUse(cfg.host, cfg.port)) {
    throw new Error(
      `Port ${cfg.port} on ${cfg.host} is already in use by another process (not this project's MLflow server). ` +
        `Stop it, or choose another port: make mlflow-up MLFLOW_PORT=5001`,
    );
  }
  if (!fs.existsSync(opts.mlflowBin)) {
    throw new Error(`MLflow is not installed at ${opts.mlflowBin}. Run \`make setup\` first.`);
  }
  fs.mkdirSync(cfg.stateDir, { recursive: true });
  if (!cfg.artifactsDestination.includes('://')) fs.mkdirSync(cfg.artifactsDestination, { recursive: true });
  const log = fs.openSync(logFile, 'a');
  const args = [
    'server',
    '--backend-store-uri',
    cfg.backendStoreUri,
    '--artifacts-destination',
    cfg.artifactsDestination,
    '--serve-artifacts',
    '--host',
    cfg.host,
    '--port',
    String(cfg.port),
    '--workers',
    String(cfg.workers),
    ...(cfg.appName ? ['--app-name', cfg.appName] : []),
  ];
  const child = spawn(opts.mlflowBin, args, {
    detached: true, // own process group, so stop can signal every worker
    stdio: ['ignore', log, log],
    env: {
      ...process.env,
      // GenAI job consumers (huey) are not used here and cost ~8 processes on a 2-core machine.
      MLFLOW_SERVER_ENABLE_JOB_EXECUTION: process.env.MLFLOW_SERVER_ENABLE_JOB_EXECUTION ?? 'false',
      ...opts.env,
    },
  });
  fs.closeSync(log);
  if (child.pid === undefined) throw new Error(`Could not start ${opts.mlflowBin}`);
  fs.writeFileSync(pidFile, pidFileLine(child.pid));
  child.unref();
  try {
    await waitHealthy(cfg, child.pid, opts.timeoutMs ?? 90_000, logFile);
  } catch (err) {
    await stopServer(cfg);
    throw err;
  }
  return {
    running: true,
    healthy: true,
    pid: child.pid,
    url: `http://${cfg.host}:${cfg.port}`,
    alreadyRunning: false,
    startupMs: Date.now() - t0,
  };
}

async function waitHealthy(cfg: MlflowServerConfig, pid: number, timeoutMs: number, logFile: string): Promise<void> {
  const url = `http://${cfg.host}:${cfg.port}`;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!groupAlive(pid)) {
      throw new Error(`mlflow server exited during start-up. Last lines of ${logFile}:\n${tail(logFile)}`);
    }
    if (await isHealthy(url)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `mlflow server did not answer ${url}/health within ${timeoutMs / 1000}s. Last lines of ` +
      `${logFile}:\n${tail(logFile)}`,
  );
}

/** Stops the server's whole process group; returns false when none was running. */
export async function stopServer(cfg: MlflowServerConfig, graceMs = 10_000): Promise<boolean> {
  const { pidFile } = serverFiles(cfg);
  const pid = readPid(pidFile);
  if (pid === undefined || !groupAlive(pid)) {
    if (fs.existsSync(pidFile)) fs.rmSync(pidFile);
    return false;
  }
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      /* group already gone */
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (groupAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (groupAlive(pid)) {
    signal('SIGKILL');
    while (groupAlive(pid)) await new Promise((r) => setTimeout(r, 50));
  }
  fs.rmSync(pidFile, { force: true });
  return true;
}
