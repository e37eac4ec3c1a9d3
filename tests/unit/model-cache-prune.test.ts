import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cacheKey, pruneModelCache } from '../../src/production/model-cache';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cache-prune-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const version = (n: number) => ({ name: 'm', version: String(n), run_id: `run${n}`, source: `models:/m-${n}` });
const folder = (n: number) => path.join(root, 'm', cacheKey(version(n)));

describe('make cache-prune', () => {
  it('keeps the newest per model, the aliased and the last-served versions; removes the rest and dead partials', () => {
    for (let n = 1; n <= 5; n++) {
      fs.mkdirSync(folder(n), { recursive: true });
      const manifest = { ...version(n), runId: `run${n}`, downloadedAt: `2026-0${n}-01T00:00:00Z`, files: {} };
      fs.writeFileSync(path.join(folder(n), '.cache-manifest.json'), JSON.stringify(manifest));
    }
    // @champion last served version 1 (a server starts from it while MLflow is down).
    fs.writeFileSync(path.join(root, 'm', '@champion.json'), JSON.stringify({ ...version(1), servedAt: 'x' }));
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    fs.mkdirSync(path.join(root, 'm', `${cacheKey(version(6))}.partial-${dead.stdout}-ab12`));
    fs.mkdirSync(path.join(root, 'm', `${cacheKey(version(7))}.partial-${process.pid}-cd34`)); // still downloading

    const removed = pruneModelCache(root, 2, new Set([folder(2)])).map((p) => path.relative(root, p));
    expect(removed).toEqual(
      [`m/${cacheKey(version(3))}`, `m/${cacheKey(version(6))}.partial-${dead.stdout}-ab12`].sort(),
    );
    expect(fs.readdirSync(path.join(root, 'm')).sort()).toEqual(
      [
        '@champion.json',
        cacheKey(version(1)),
        cacheKey(version(2)),
        cacheKey(version(4)),
        cacheKey(version(5)),
        `${cacheKey(version(7))}.partial-${process.pid}-cd34`,
      ].sort(),
    );
    expect(pruneModelCache(root, 2, new Set([folder(2)]))).toEqual([]); // nothing more to do
  });
});
