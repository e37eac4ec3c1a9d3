/**
 * Background services of the team stack (SeaweedFS, model-server replicas, Prometheus): each runs
 * detached in its own process group, with a pid file and a log file in the stack's folder, so
 * `make stack-down` (another process) can stop it.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { pidFileLine, processAlive, readPidFile } from '../io/process-identity';

/** The pid recorded in `pidFile` if that process (the same one: pid and start time) still runs. */
export function runningPid(pidFile: string): number | undefined {
  const rec = readPidFile(pidFile);
  return rec && processAlive(rec.pid, rec.start) ? rec.pid : undefined;
}

export interface DetachedSpec {
  cmd: string;
  args: string[];
  pidFile: string;
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Starts `cmd` as the leader of its own process group, outliving this process; returns its pid. */
export function spawnDetached(s: DetachedSpec): number {
  const log = fs.openSync(s.logFile, 'a');
  const child = spawn(s.cmd, s.args, { detached: true, stdio: ['ignore', log, log], env: s.env, cwd: s.cwd });
  fs.closeSync(log);
  fs.writeFileSync(s.pidFile, pidFileLine(child.pid!));
  child.unref();
  return child.pid!;
}

/** SIGTERM to the process group in `pidFile`, SIGKILL after `graceMs`; removes the pid file. */
export async function stopDetached(pidFile: string, graceMs = 10_000): Promise<void> {
  const rec = readPidFile(pidFile);
  // A recorded leader whose pid now names another process (same pid, other start time) is gone, and
  // its number belongs to a stranger: signal nothing.
  if (rec && !(processAlive(rec.pid) && !processAlive(rec.pid, rec.start))) {
    const { pid } = rec;
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    const alive = () => processAlive(pid, rec.start);
    for (let waited = 0; waited < graceMs && alive(); waited += 100) await new Promise((r) => setTimeout(r, 100));
    if (alive()) process.kill(-pid, 'SIGKILL');
  }
  fs.rmSync(pidFile, { force: true });
}

/**
 * Polls `ready` until it is true; fails early when the process in `pid` exited (naming its log), or
 * after `timeoutMs`.
 */
export async function waitReady(
  what: string,
  pid: number,
  logFile: string,
  ready: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!processAlive(pid)) throw new Error(`${what} exited; see ${logFile}`);
    if (await ready().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} was not ready within ${timeoutMs / 1000} s; see ${logFile}`);
}

/** True when GET `url` answers 2xx within a second. */
export const answers = (url: string, headers: Record<string, string> = {}): Promise<boolean> =>
  fetch(url, { headers, signal: AbortSignal.timeout(1000) })
    .then((r) => r.ok)
    .catch(() => false);
