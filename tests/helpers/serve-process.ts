import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { request } from 'undici';
import { loadConfig } from '../../src/config';
import { freePort } from '../../src/io/server-process';

const cfg = loadConfig();

/** Starts `scripts/serve.ts` (the real CLI) on a free port with `args`, and waits until /health says ready. */
export async function startServeProcess(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ url: string; server: ChildProcess }> {
  const port = await freePort();
  const server = spawn(
    path.join(cfg.root, 'node_modules/.bin/ts-node'),
    [path.join(cfg.root, 'scripts/serve.ts'), '--port', String(port), ...args],
    { cwd: cfg.root, env, stdio: 'ignore' },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 120; i++) {
    const ok = await request(`${url}/health`)
      .then((r) => r.body.dump().then(() => r.statusCode === 200))
      .catch(() => false);
    if (ok) return { url, server };
    await new Promise((r) => setTimeout(r, 500));
  }
  server.kill('SIGTERM');
  throw new Error(`make serve ${args.join(' ')} was not ready within 60 s`);
}
