import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// make pastes variables into recipes that /bin/sh runs; a caller's value (an Airflow trigger's conf did)
// must never reach the shell as a command. Each call is an argument list, as a DAG passes it.
const root = path.resolve(__dirname, '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'make-inputs-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const marker = path.join(tmp, 'pwned');
const make = (...args: string[]) =>
  spawnSync('make', ['--no-print-directory', '-n', ...args], { cwd: root, encoding: 'utf8' });

describe('make refuses what a recipe would hand to the shell', () => {
  it.each([
    ['TASK', `x; touch ${marker} #`],
    ['TASK', 'support-intent; touch x'],
    ['TASK', `$(shell touch ${marker})`],
    ['MODEL', `bert && touch ${marker}`],
    ['RUN', `$$(touch ${marker})`],
    ['STACK_DIR', `/tmp/x\ntouch ${marker}`],
    ['ARGS', `--epochs 1; touch ${marker}`],
    ['ARGS', `\`touch ${marker}\``],
    ['ARGS', `$(shell touch ${marker})`],
  ])('%s=%j stops make before any recipe, and runs nothing', (name, value) => {
    const r = make('baseline', `${name}=${value}`);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${name}[= ]`));
    expect(r.stdout).toBe('');
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('accepts the declared tasks and the arguments the docs show', () => {
    expect(make('baseline', 'TASK=support-intent').status).toBe(0);
    expect(make('baseline', 'TASK=support-category support-intent').status).toBe(0);
    expect(make('finetune', 'TASK=support-intent', 'ARGS=--epochs 3 --group-by-length').status).toBe(0);
    expect(make('bench-grouping', 'ARGS=--finetune-args "--epochs 1"').status).toBe(0);
    expect(make('eval-open', 'TASK=support-intent', 'KNOWN=0.75,0.5', 'SEEDS=0,1,2', 'MODEL=bert').status).toBe(0);
    const unknown = make('baseline', 'TASK=no-such-task');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/not a declared task; tasks: support-category/);
  });
});
