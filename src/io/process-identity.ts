/**
 * Who a pid is. A pid alone does not name a process: after a crash and a reboot (or enough new
 * processes) the number is handed to someone else, and a lock or pid file judged by it alone stays
 * "alive" forever, or makes a stop command signal a stranger. So a pid is recorded with the
 * process's start time (Linux: field 22 of /proc/<pid>/stat, clock ticks since boot), and a recorded
 * process is alive only while a process with that pid *and* that start time exists.
 */
import fs from 'node:fs';

/** The start time of `pid` as the kernel reports it; undefined where /proc does not say (not Linux, gone). */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19]; // field 22 overall: fields 3.. start at index 0
  } catch {
    return undefined;
  }
}

/**
 * Is the process `pid` (started at `start`, when recorded) alive? EPERM means it exists but is not
 * ours to signal: alive. A recorded start time that differs from the running one is a reused pid: not alive.
 */
export function processAlive(pid: number, start?: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (start === undefined) return true;
  const now = processStartTime(pid);
  return now === undefined || now === start;
}

/** A pid file's line: the pid and, where the system tells it, its start time. */
export const pidFileLine = (pid: number): string => `${[pid, processStartTime(pid)].filter(Boolean).join(' ')}\n`;

/** The pid and start time a pid file records (files written before start times read as pid only). */
export function readPidFile(file: string): { pid: number; start?: string } | undefined {
  try {
    const [pid, start] = fs.readFileSync(file, 'utf8').trim().split(/\s+/);
    const n = Number.parseInt(pid ?? '', 10);
    return Number.isInteger(n) && n > 0 ? { pid: n, ...(start ? { start } : {}) } : undefined;
  } catch {
    return undefined;
  }
}
