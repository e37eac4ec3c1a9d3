/**
 * The production lock of a task, taken by make retrain, make promote and make rollback, so no two
 * of them move a task's aliases at once. Acquisition is one atomic exclusive create. A lock whose
 * owner is gone is broken only under a second exclusive "break" lock, after checking again that it
 * is still the same stale lock, so two contenders can never both take it over. The holder is named by
 * pid and start time (a reused pid is not the holder: ../io/process-identity.ts). Only the owner's token
 * releases it.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { processAlive, processStartTime } from '../io/process-identity';

export class LockBusyError extends Error {
  override name = 'LockBusyError';
}

export interface LockContent {
  pid: number;
  /** The holder's start time (absent in locks written before it was recorded, and off Linux). */
  start?: string;
  host: string;
  token: string;
  purpose: string;
  since: string;
}

/** A break lock older than this belongs to a breaker that died inside the few lines it guards. */
const BREAK_STALE_MS = 30_000;

function readLock(file: string): LockContent | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as LockContent;
  } catch {
    return undefined; // gone, or being written (the creator writes right after the exclusive create)
  }
}

const startOf = (pid: number): { start?: string } => {
  const start = processStartTime(pid);
  return start ? { start } : {};
};

function tryCreate(file: string, content: LockContent): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    fs.writeSync(fd, JSON.stringify(content));
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

function isStale(held: LockContent | undefined, file: string): boolean {
  if (held) return held.host === os.hostname() && !processAlive(held.pid, held.start);
  // Unreadable: a creator between its create and its write, or a torn file. Stale only when old.
  try {
    return Date.now() - fs.statSync(file).mtimeMs > BREAK_STALE_MS;
  } catch {
    return false;
  }
}

/** Removes `file` if it is still exactly the stale lock `seen`; serialised by `<file>.break`. */
export function breakStale(file: string, seen: LockContent | undefined): void {
  const guard = `${file}.break`;
  const me: LockContent = {
    pid: process.pid,
    ...startOf(process.pid),
    host: os.hostname(),
    token: randomBytes(8).toString('hex'),
    purpose: 'break',
    since: new Date().toISOString(),
  };
  if (!tryCreate(guard, me)) {
    try {
      if (Date.now() - fs.statSync(guard).mtimeMs > BREAK_STALE_MS) fs.rmSync(guard, { force: true });
    } catch {
      /* the other breaker finished */
    }
    return;
  }
  try {
    const now = readLock(file);
    if (JSON.stringify(now) === JSON.stringify(seen) && isStale(now, file)) fs.rmSync(file, { force: true });
  } finally {
    fs.rmSync(guard, { force: true });
  }
}

export interface Lock {
  file: string;
  release(): void;
}

/** Takes the lock or throws LockBusyError naming the holder. */
export function acquireLock(file: string, purpose: string): Lock {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const mine: LockContent = {
    pid: process.pid,
    ...startOf(process.pid),
    host: os.hostname(),
    token: randomBytes(16).toString('hex'),
    purpose,
    since: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    if (tryCreate(file, mine)) {
      return {
        file,
        release() {
          // Only the owner releases: a lock broken and retaken by another process is theirs now.
          if (readLock(file)?.token === mine.token) fs.rmSync(file, { force: true });
        },
      };
    }
    const held = readLock(file);
    if (!isStale(held, file)) {
      const who = held
        ? `${held.purpose}, pid ${held.pid} on ${held.host}, since ${held.since}`
        : 'a process that is taking it now';
      throw new LockBusyError(
        `${path.basename(file)} is held (${who}); not starting a second one. If that process is gone, it is taken ` +
          `over automatically.`,
      );
    }
    breakStale(file, held);
  }
  throw new LockBusyError(`could not take the lock ${file}: another process keeps taking it`);
}

/** Runs `fn` holding the lock; releases it however `fn` ends. */
export async function withLock<T>(file: string, purpose: string, fn: () => Promise<T>): Promise<T> {
  const lock = acquireLock(file, purpose);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

/** The production lock file of a task. */
export const productionLockFile = (stateDir: string, task: string): string => path.join(stateDir, `${task}.lock`);
