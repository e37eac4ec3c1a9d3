import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { processAlive, processStartTime } from '../../src/io/process-identity';
import { acquireLock, breakStale, LockBusyError, type LockContent } from '../../src/production/lock';

const root = path.resolve(__dirname, '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lock-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const deadPid = (): number => {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout); // exited already: its pid is free
};
const staleLock = (file: string) =>
  fs.writeFileSync(
    file,
    JSON.stringify({
      pid: deadPid(),
      host: os.hostname(),
      token: 'crashed',
      purpose: 'retrain',
      since: '2026-01-01T00:00:00Z',
    }),
  );

describe('production lock', () => {
  it('is exclusive, names its holder, and is released by its owner', () => {
    const file = path.join(tmp, 'a.lock');
    const lock = acquireLock(file, 'retrain');
    expect(() => acquireLock(file, 'promote')).toThrow(LockBusyError);
    expect(() => acquireLock(file, 'promote')).toThrow(new RegExp(`held \\(retrain, pid ${process.pid}`));
    lock.release();
    acquireLock(file, 'promote').release();
    expect(fs.existsSync(file)).toBe(false);
  });

  it('takes over the lock of a process that is gone', () => {
    const file = path.join(tmp, 'b.lock');
    staleLock(file);
    const lock = acquireLock(file, 'retrain');
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).pid).toBe(process.pid);
    lock.release();
  });

  it('a release by a former owner does not remove the lock another process holds now', () => {
    const file = path.join(tmp, 'c.lock');
    const mine = acquireLock(file, 'retrain');
    const theirs = {
      pid: process.pid,
      host: os.hostname(),
      token: 'someone-else',
      purpose: 'promote',
      since: new Date().toISOString(),
    };
    fs.writeFileSync(file, JSON.stringify(theirs)); // ours was broken and retaken meanwhile
    mine.release();
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).token).toBe('someone-else');
    fs.rmSync(file);
  });

  it('takes over a lock whose pid now names another process (a reused pid)', () => {
    // The holder crashed; its number went to a process that is alive now (here: this test's own pid),
    // started at another time than the one the lock recorded.
    const file = path.join(tmp, 'reused.lock');
    const now = processStartTime(process.pid);
    expect(now).toMatch(/^\d+$/);
    const reused: LockContent = {
      pid: process.pid,
      start: String(Number(now) - 1),
      host: os.hostname(),
      token: 'crashed-long-ago',
      purpose: 'retrain',
      since: '2026-01-01T00:00:00Z',
    };
    fs.writeFileSync(file, JSON.stringify(reused));
    const lock = acquireLock(file, 'promote');
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({
      pid: process.pid,
      start: now,
      purpose: 'promote',
    });
    lock.release();
    // The same pid with its own start time is the holder: busy.
    fs.writeFileSync(file, JSON.stringify({ ...reused, start: now }));
    expect(() => acquireLock(file, 'promote')).toThrow(LockBusyError);
    fs.rmSync(file);
  });

  it('counts a live process of another user (EPERM) as alive', () => {
    // As an unprivileged user, signalling pid 1 fails with EPERM: the process exists.
    const script = `console.log(JSON.stringify([require('./src/io/process-identity').processAlive(1), require('./src/io/process-identity').processAlive(${deadPid()})]))`;
    const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], {
      cwd: root,
      encoding: 'utf8',
      ...(process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}),
    });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual([true, false]);
    expect(processAlive(process.pid)).toBe(true);
  });

  it('a contender that judged the lock stale does not break the lock another contender has taken since', () => {
    const file = path.join(tmp, 'd.lock');
    staleLock(file);
    const seenByLateContender = JSON.parse(fs.readFileSync(file, 'utf8')) as LockContent;
    const winner = acquireLock(file, 'promote'); // broke the stale lock and took it
    breakStale(file, seenByLateContender); // the late contender acts on what it saw before
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).pid).toBe(process.pid);
    expect(() => acquireLock(file, 'retrain')).toThrow(LockBusyError);
    winner.release();
  });

  it('of 8 processes racing for one stale lock, exactly one takes it', async () => {
    const file = path.join(tmp, 'race.lock');
    staleLock(file);
    const script = `
      const { acquireLock } = require('./src/production/lock');
      const start = Number(process.argv[1]);
      while (Date.now() < start) {}
      try { const l = acquireLock(${JSON.stringify(file)}, 'retrain'); console.log('took'); setTimeout(() => l.release(), 1500); }
      catch (e) { console.log(e.name); }`;
    const start = String(Date.now() + 1500);
    const outs = await Promise.all(
      Array.from(
        { length: 8 },
        () =>
          new Promise<string>((resolve) => {
            const c = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script, start], {
              cwd: root,
            });
            let out = '';
            c.stdout.on('data', (d: Buffer) => (out += d.toString()));
            c.on('close', () => resolve(out.trim()));
          }),
      ),
    );
    expect(outs.filter((o) => o === 'took')).toHaveLength(1);
    expect(outs.filter((o) => o === 'LockBusyError')).toHaveLength(7);
  });
});
