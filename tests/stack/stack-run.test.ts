import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import type { StackConfig } from '../../src/stack/team-stack';

const cfg = loadConfig();

/** Live processes whose command line names `dir` (PostgreSQL -D, SeaweedFS -dir, MLflow's stores, replicas). */
function processesUsing(dir: string): string[] {
  return fs.readdirSync('/proc').flatMap((pid) => {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) return [];
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      return cmd.includes(dir) && !cmd.includes('stack.ts') ? [`${pid}: ${cmd.slice(0, 120)}`] : [];
    } catch {
      return [];
    }
  });
}

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });

// make test-stack runs its tests inside `scripts/stack.ts run`. A CI time limit or Ctrl-C sends a signal to
// the whole process group; the stack's services run detached (their own groups) and never see it.
describe('a stack started for one command', () => {
  it('is taken down, ports and folder included, when the process group gets SIGTERM', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stack-run-'));
    const wait = "console.log('READY', process.env.MLFLOW_TRACKING_URI); setInterval(() => {}, 1000);";
    const child = spawn(
      path.join(cfg.root, 'node_modules/.bin/ts-node'),
      [
        path.join(cfg.root, 'scripts/stack.ts'),
        '--dir',
        dir,
        'run',
        '--remove-dir',
        '--',
        process.execPath,
        '-e',
        wait,
      ],
      { cwd: cfg.root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    for (let t = 0; t < 1800 && !/READY http/.test(out); t++) await new Promise((r) => setTimeout(r, 100));
    expect(out, out).toMatch(/READY http:\/\/127\.0\.0\.1:\d+/);

    const stack = JSON.parse(fs.readFileSync(path.join(dir, 'stack.json'), 'utf8')) as StackConfig;
    const ports = [stack.pgPort, stack.s3Port, stack.mlflowPort];
    expect(processesUsing(dir).length).toBeGreaterThanOrEqual(2); // PostgreSQL -D, SeaweedFS -dir (MLflow: by its port)
    expect(await Promise.all(ports.map(portOpen))).toEqual([true, true, true]);

    process.kill(-child.pid!, 'SIGTERM');
    expect(await exited).toBe(143);
    expect(out).toMatch(/SIGTERM: stopping the command, then the stack/);
    expect(out).toMatch(/stack down/);
    expect(processesUsing(dir)).toEqual([]);
    expect(await Promise.all(ports.map(portOpen))).toEqual([false, false, false]);
    expect(fs.existsSync(dir)).toBe(false);
  });
});
