/**
 * A local server run as a detached process group with a pid file and a log file: started, waited on
 * until its health URL answers, found again by a later command, and stopped with its whole group.
 * Servers such as `mlflow server` and `label-studio` fork workers that outlive a plain kill of the
 * parent, so stop signals the group. Shared by the MLflow server and Label Studio.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { pidFileLine, processAlive, readPidFile } from './process-identity';

export interface ServerFiles {
  pidFile: string;
  logFile: string;
}

/**
 * The server's recorded group leader; undefined when none is recorded, or when its pid now names another
 * process (same pid, other start time): the server is gone and that number is a stranger's.
 */
function readServerPid(pidFile: string): number | undefined {
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

/** True when GET `url`/health answers 2xx within the timeout. */
export async function isHealthy(url: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const res = await fetch(new URL('/health', url), { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
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

function tailOf(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Spawns `bin args` as the leader of its own process group, output appended to the log, pid recorded. */
function spawnServer(bin: string, args: string[], files: ServerFiles, env: NodeJS.ProcessEnv): number {
  const log = fs.openSync(files.logFile, 'a');
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', log, log], env });
  fs.closeSync(log);
  if (child.pid === undefined) throw new Error(`Could not start ${bin}`);
  fs.writeFileSync(files.pidFile, pidFileLine(child.pid));
  child.unref();
  return child.pid;
}

/** Waits until `url` is healthy; throws with the log's tail when the group exits or the time runs out. */
async function waitHealthy(o: {
  name: string;
  pid: number;
  url: string;
  timeoutMs: number;
  logFile: string;
}): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  while (Date.now() < deadline) {
    if (!groupAlive(o.pid)) {
      throw new Error(`${o.name} exited during start-up. Last lines of ${o.logFile}:\n${tailOf(o.logFile)}`);
    }
    if (await isHealthy(o.url)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `${o.name} did not answer ${o.url}/health within ${o.timeoutMs / 1000}s. Last lines of ` +
      `${o.logFile}:\n${tailOf(o.logFile)}`,
  );
}

/** Stops the whole process group recorded in `pidFile`; returns false when none was running. */
export async function stopServerGroup(pidFile: string, graceMs = 10_000): Promise<boolean> {
  const pid = readServerPid(pidFile);
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

/** Whether the group recorded in `pidFile` runs, and whether `url` answers. */
export async function processGroupStatus(pidFile: string, url: string): Promise<ServerStatus> {
  const pid = readServerPid(pidFile);
  const running = pid !== undefined && groupAlive(pid);
  return { running, healthy: running && (await isHealthy(url)), ...(running ? { pid } : {}), url };
}

export interface ManagedServer {
  /** For messages ("mlflow server", "label-studio"). */
  name: string;
  files: ServerFiles;
  host: string;
  port: number;
  url: string;
  timeoutMs: number;
  /** The error when the port is taken by something else (what to do about it). */
  portInUseMessage: string;
}

/**
 * Finds the server running (waiting until it answers) or starts it: a port taken by another process is refused,
 * `prepare` checks the install and readies its state and command line, and a group that never answers is stopped.
 */
export async function ensureServer(
  s: ManagedServer,
  prepare: () => { bin: string; args: string[]; env: NodeJS.ProcessEnv },
): Promise<StartResult> {
  const t0 = Date.now();
  const wait = (pid: number) =>
    waitHealthy({ name: s.name, pid, url: s.url, timeoutMs: s.timeoutMs, logFile: s.files.logFile });
  const status = await processGroupStatus(s.files.pidFile, s.url);
  if (status.running) {
    if (!status.healthy) await wait(status.pid!);
    return { ...status, healthy: true, alreadyRunning: true, startupMs: Date.now() - t0 };
  }
  if (fs.existsSync(s.files.pidFile)) fs.rmSync(s.files.pidFile); // stale: its process group is gone
  if (await portInUse(s.host, s.port)) throw new Error(s.portInUseMessage);
  const { bin, args, env } = prepare();
  const pid = spawnServer(bin, args, s.files, env);
  try {
    await wait(pid);
  } catch (err) {
    await stopServerGroup(s.files.pidFile);
    throw err;
  }
  return { running: true, healthy: true, pid, url: s.url, alreadyRunning: false, startupMs: Date.now() - t0 };
}
