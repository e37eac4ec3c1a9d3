/**
 * Lifecycle of a local `mlflow server` (SQLite backend, artifacts proxied by the server).
 * Used by `make mlflow-up/down/status` and by the integration tests, so both run the same code.
 * The process-group mechanics (pid file, health wait, stop) are io/server-process.ts's.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { MlflowServerConfig } from '../config';
import {
  ensureServer,
  processGroupStatus,
  stopServerGroup,
  type ServerFiles,
  type ServerStatus,
  type StartResult,
} from '../io/server-process';

export function serverFiles(cfg: MlflowServerConfig): ServerFiles {
  return { pidFile: path.join(cfg.stateDir, 'server.pid'), logFile: path.join(cfg.stateDir, 'server.log') };
}

export const serverStatus = (cfg: MlflowServerConfig): Promise<ServerStatus> =>
  processGroupStatus(serverFiles(cfg).pidFile, `http://${cfg.host}:${cfg.port}`);

export interface StartOptions {
  /** Path of the `mlflow` executable (the project venv's by default). */
  mlflowBin: string;
  /** How long to wait for /health. */
  timeoutMs?: number;
  /** Extra environment for the server process. */
  env?: NodeJS.ProcessEnv;
}

export function startServer(cfg: MlflowServerConfig, opts: StartOptions): Promise<StartResult> {
  return ensureServer(
    {
      name: 'mlflow server',
      files: serverFiles(cfg),
      host: cfg.host,
      port: cfg.port,
      url: `http://${cfg.host}:${cfg.port}`,
      timeoutMs: opts.timeoutMs ?? 90_000,
      portInUseMessage:
        `Port ${cfg.port} on ${cfg.host} is already in use by another process (not this project's MLflow server). ` +
        `Stop it, or choose another port: make mlflow-up MLFLOW_PORT=5001`,
    },
    () => {
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
      const env = {
        ...process.env,
        // GenAI job consumers (huey) are not used here and cost ~8 processes on a 2-core machine.
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION: process.env.MLFLOW_SERVER_ENABLE_JOB_EXECUTION ?? 'false',
        ...opts.env,
      };
      return { bin: opts.mlflowBin, args, env };
    },
  );
}

/** Stops the server's whole process group; returns false when none was running. */
export const stopServer = (cfg: MlflowServerConfig, graceMs = 10_000): Promise<boolean> =>
  stopServerGroup(serverFiles(cfg).pidFile, graceMs);
