/**
 * Lifecycle of a local `mlflow server` (SQLite backend, artifacts proxied by the server).
 * Used by `make mlflow-up/down/status` and by the integration tests, so both run the same code.
 * The process-group mechanics (pid file, health wait, stop) are io/server-process.ts's.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { MlflowServerConfig } from '../config';
import {
  groupAlive,
  isHealthy,
  portInUse,
  readServerPid,
  spawnServer,
  stopServerGroup,
  waitHealthy,
  type ServerFiles,
} from '../io/server-process';

export interface ServerStatus {
  running: boolean;
  healthy: boolean;
  pid?: number;
  url: string;
}

export interface StartResult extends ServerStatus {
  alreadyRunning: boolean;
  startupMs: number;
}

export function serverFiles(cfg: MlflowServerConfig): ServerFiles {
  return { pidFile: path.join(cfg.stateDir, 'server.pid'), logFile: path.join(cfg.stateDir, 'server.log') };
}

export async function serverStatus(cfg: MlflowServerConfig): Promise<ServerStatus> {
  const { pidFile } = serverFiles(cfg);
  const pid = readServerPid(pidFile);
  const url = `http://${cfg.host}:${cfg.port}`;
  const running = pid !== undefined && groupAlive(pid);
  return { running, healthy: running && (await isHealthy(url)), pid: running ? pid : undefined, url };
}

export interface StartOptions {
  /** Path of the `mlflow` executable (the project venv's by default). */
  mlflowBin: string;
  /** How long to wait for /health. */
  timeoutMs?: number;
  /** Extra environment for the server process. */
  env?: NodeJS.ProcessEnv;
}

export async function startServer(cfg: MlflowServerConfig, opts: StartOptions): Promise<StartResult> {
  const t0 = Date.now();
  const { pidFile, logFile } = serverFiles(cfg);
  const status = await serverStatus(cfg);
  if (status.running) {
    if (!status.healthy)
      await waitHealthy({
        name: 'mlflow server',
        pid: status.pid!,
        url: status.url,
        timeoutMs: opts.timeoutMs ?? 90_000,
        logFile,
      });
    return { ...status, healthy: true, alreadyRunning: true, startupMs: Date.now() - t0 };
  }
  if (fs.existsSync(pidFile)) fs.rmSync(pidFile); // stale: its process group is gone
  if (await portInUse(cfg.host, cfg.port)) {
    throw new Error(
      `Port ${cfg.port} on ${cfg.host} is already in use by another process (not this project's MLflow server). ` +
        `Stop it, or choose another port: make mlflow-up MLFLOW_PORT=5001`,
    );
  }
  if (!fs.existsSync(opts.mlflowBin)) {
    throw new Error(`MLflow is not installed at ${opts.mlflowBin}. Run \`make setup\` first.`);
  }
  fs.mkdirSync(cfg.stateDir, { recursive: true });
  if (!cfg.artifactsDestination.includes('://')) fs.mkdirSync(cfg.artifactsDestination, { recursive: true });
  const args = [
    'server',
    '--backend-store-uri',
    cfg.backendStoreUri,
    '--artifacts-destination',
    cfg.artifactsDestination,
    '--serve-artifacts',
    '--host',
    cfg.host,
    '--port',
    String(cfg.port),
    '--workers',
    String(cfg.workers),
    ...(cfg.appName ? ['--app-name', cfg.appName] : []),
  ];
  const pid = spawnServer(opts.mlflowBin, args, serverFiles(cfg), {
    ...process.env,
    // GenAI job consumers (huey) are not used here and cost ~8 processes on a 2-core machine.
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION: process.env.MLFLOW_SERVER_ENABLE_JOB_EXECUTION ?? 'false',
    ...opts.env,
  });
  try {
    await waitHealthy({
      name: 'mlflow server',
      pid,
      url: `http://${cfg.host}:${cfg.port}`,
      timeoutMs: opts.timeoutMs ?? 90_000,
      logFile,
    });
  } catch (err) {
    await stopServer(cfg);
    throw err;
  }
  return {
    running: true,
    healthy: true,
    pid,
    url: `http://${cfg.host}:${cfg.port}`,
    alreadyRunning: false,
    startupMs: Date.now() - t0,
  };
}

/** Stops the server's whole process group; returns false when none was running. */
export const stopServer = (cfg: MlflowServerConfig, graceMs = 10_000): Promise<boolean> =>
  stopServerGroup(serverFiles(cfg).pidFile, graceMs);
