import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, mlflowServerConfig } from '../../src/config';
import { freePort } from '../../src/io/server-process';
import { serverFiles, serverStatus, startServer, stopServer } from '../../src/mlflow/server';

// Its own server (not the shared one from global-setup), to test the lifecycle itself.
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-lifecycle-'));
const mlflowBin = path.join(loadConfig().venv, 'bin', 'mlflow');

function processesInGroup(pgid: number): string[] {
  const out = execFileSync('ps', ['-eo', 'pid=,pgid=,args='], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim().split(/\s+/)[1] === String(pgid));
}

afterAll(async () => {
  fs.rmSync(stateDir, { recursive: true, force: true });
});

describe('local mlflow server lifecycle', () => {
  it('starts once, refuses a second server, and stops leaving no process behind', async () => {
    const cfg = mlflowServerConfig(stateDir, { port: await freePort() });
    const first = await startServer(cfg, { mlflowBin });
    try {
      expect(first.alreadyRunning).toBe(false);
      expect(first.pid).toBeGreaterThan(0);
      const res = await fetch(`${first.url}/api/2.0/mlflow/experiments/search`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ max_results: 10 }),
      });
      expect(res.status).toBe(200);
      expect(processesInGroup(first.pid!).length).toBeGreaterThan(1); // server + uvicorn workers

      const second = await startServer(cfg, { mlflowBin });
      expect(second.alreadyRunning).toBe(true);
      expect(second.pid).toBe(first.pid);
      expect(fs.existsSync(path.join(stateDir, 'mlflow.db'))).toBe(true);
    } finally {
      expect(await stopServer(cfg)).toBe(true);
    }
    expect(processesInGroup(first.pid!)).toEqual([]);
    expect(fs.existsSync(serverFiles(cfg).pidFile)).toBe(false);
    expect((await serverStatus(cfg)).running).toBe(false);
    expect(await stopServer(cfg)).toBe(false);
  });

  it('refuses a port held by something else, with the fix in the message', async () => {
    const net = await import('node:net');
    const blocker = net.createServer();
    const port = await freePort();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
    try {
      const cfg = mlflowServerConfig(path.join(stateDir, 'b'), { port });
      await expect(startServer(cfg, { mlflowBin })).rejects.toThrow(new RegExp(`Port ${port}.*MLFLOW_PORT`));
    } finally {
      blocker.close();
    }
  });
});
