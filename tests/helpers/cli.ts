import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { loadConfig } from '../../src/config';

const cfg = loadConfig();
export const TS_NODE = path.join(cfg.root, 'node_modules/.bin/ts-node');

/** Runs scripts/<script> (a real entry point) and returns its stdout; throws on a non-zero exit. */
export const runScript = (script: string, args: string[], env: NodeJS.ProcessEnv): string =>
  execFileSync(TS_NODE, [path.join(cfg.root, 'scripts', script), ...args], {
    cwd: cfg.root,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });

/** Runs scripts/<script> and returns its exit status and output, for commands expected to fail or exit 2. */
export const spawnScript = (script: string, args: string[], env: NodeJS.ProcessEnv) =>
  spawnSync(TS_NODE, [path.join(cfg.root, 'scripts', script), ...args], { cwd: cfg.root, env, encoding: 'utf8' });
