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
export function readServerPid(pidFile: string): number | undefined {
  const rec = readPidFile(pidFile);
  if (!rec || (processAlive(rec.pid) && !processAlive(rec.pid, rec.start))) return undefined;
  return rec.pid;
}

/** True while any process of the group led by `pgid` exists. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when GET `url` + `healthPath` answers 2xx within the timeout. */
export async function isHealthy(url: string, timeoutMs = 2000, healthPath = '/health'): Promise<boolean> {
  try {
    const res = await fetch(new URL(healthPath, url), { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

export function portInUse(host: string, port: number): Promise<boolean> {
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

export function tailOf(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Spawns `bin args` as the leader of its own process group, output appended to the log, pid recorded. */
export function spawnServer(bin: string, args: string[], files: ServerFiles, env: NodeJS.ProcessEnv): number {
  const log = fs.openSync(files.logFile, 'a');
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', log, log], env });
  fs.closeSync(log);
  if (child.pid === undefined) throw new Error(`Could not start ${bin}`);
  fs.writeFileSync(files.pidFile, pidFileLine(child.pid));
  child.unref();
  return child.pid;
}

/** Waits until `url` is healthy; throws with the log's tail when the group exits or the time runs out. */
export async function waitHealthy(o: {
  name: string;
  pid: number;
  url: string;
  timeoutMs: number;
  logFile: string;
  healthPath?: string;
}): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  while (Date.now() < deadline) {
    if (!groupAlive(o.pid)) {
      throw new Error(`${o.name} exited during start-up. Last lines of ${o.logFile}:\n${tailOf(o.logFile)}`);
    }
    if (await isHealthy(o.url, 2000, o.healthPath)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `${o.name} did not answer ${o.url}${o.healthPath ?? '/health'} within ${o.timeoutMs / 1000}s. Last lines of ` +
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
