import { execFile, execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
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

/**
 * Executes a notebook headless with the project's Jupyter (nbconvert, the tslab kernel) into `outDir`
 * and returns the executed notebook's path. Asynchronous, so the test worker stays responsive while a
 * notebook runs for a minute or more.
 */
export async function executeNotebook(notebook: string, outDir: string, env: NodeJS.ProcessEnv): Promise<string> {
  await promisify(execFile)(
    path.join(cfg.venv, 'bin/jupyter'),
    [
      'nbconvert',
      '--to',
      'notebook',
      '--execute',
      '--ExecutePreprocessor.timeout=600',
      '--output-dir',
      outDir,
      notebook,
    ],
    { env, maxBuffer: 64 * 1024 * 1024 },
  );
  return path.join(outDir, path.basename(notebook));
}
