import { execFile } from 'node:child_process';
import path from 'node:path';
import { loadConfig } from '../../src/config';

const cfg = loadConfig();
export const TS_NODE = path.join(cfg.root, 'node_modules/.bin/ts-node');

export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

// Every command a test runs is asynchronous: a worker blocked in a synchronous call of a minute
// misses vitest's RPC deadline when two workers share the machine ("Timeout calling onTaskUpdate").

/** Runs a command and returns its exit status and output; never throws for a non-zero exit. */
export function spawnCommand(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd: options.cwd ?? cfg.root, env: options.env ?? process.env, encoding: 'utf8', maxBuffer: 64 << 20 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number' && error.signal === null) reject(error);
        else resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
      },
    );
  });
}

/** Runs a command and returns its stdout; throws, with its stderr, on a non-zero exit. */
export async function runCommand(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<string> {
  const r = await spawnCommand(command, args, options);
  if (r.status !== 0) {
    throw new Error(`${path.basename(command)} ${args.join(' ')} exited ${r.status}\n${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

/** Runs scripts/<script> (a real entry point) and returns its stdout; throws on a non-zero exit. */
export const runScript = (script: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> =>
  runCommand(TS_NODE, [path.join(cfg.root, 'scripts', script), ...args], { env });

/** Runs scripts/<script> and returns its exit status and output, for commands expected to fail or exit 2. */
export const spawnScript = (script: string, args: string[], env: NodeJS.ProcessEnv): Promise<CommandResult> =>
  spawnCommand(TS_NODE, [path.join(cfg.root, 'scripts', script), ...args], { env });

/**
 * Executes a notebook headless with the project's Jupyter (nbconvert, the tslab kernel) into `outDir`
 * and returns the executed notebook's path.
 */
export async function executeNotebook(notebook: string, outDir: string, env: NodeJS.ProcessEnv): Promise<string> {
  await runCommand(
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
    { env },
  );
  return path.join(outDir, path.basename(notebook));
}
