/**
 * Label Studio on this machine, for `make label-studio-up/down/status`: started on 127.0.0.1 from its own
 * venv, with its database and uploads under one folder (never ~/.local), no version check against the
 * internet, and one admin account whose API token is made on first start and kept in a file only its
 * owner can read. Label Studio moves to the next port when its port is busy, without saying so; this
 * refuses a busy port instead, so the URL a client was given is the one that answers.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { LabelStudioConfig } from '../config';
import {
  ensureServer,
  processGroupStatus,
  stopServerGroup,
  type ServerFiles,
  type ServerStatus,
  type StartResult,
} from '../io/server-process';

export const LABEL_STUDIO_USER = 'review@convo-mlops.local';

export const labelStudioFiles = (
  c: LabelStudioConfig,
): ServerFiles & { tokenFile: string; passwordFile: string; secretKeyFile: string } => ({
  pidFile: path.join(c.dataDir, 'server.pid'),
  logFile: path.join(c.dataDir, 'server.log'),
  tokenFile: path.join(c.dataDir, 'api-token'),
  passwordFile: path.join(c.dataDir, 'admin-password'),
  secretKeyFile: path.join(c.dataDir, 'django-secret-key'),
});

/** A secret kept in a file of mode 600, made on first use. */
function secretFile(file: string, bytes: number): string {
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, randomBytes(bytes).toString('hex'), { mode: 0o600 });
  }
  return fs.readFileSync(file, 'utf8').trim();
}

/** The API token clients use (Authorization: Token ...): LABEL_STUDIO_TOKEN, else the token file. */
export function labelStudioToken(c: LabelStudioConfig, env: NodeJS.ProcessEnv = process.env): string {
  if (env.LABEL_STUDIO_TOKEN) return env.LABEL_STUDIO_TOKEN;
  const { tokenFile } = labelStudioFiles(c);
  if (!fs.existsSync(tokenFile))
    throw new Error(
      `no Label Studio token at ${tokenFile}: start it with make label-studio-up (or set LABEL_STUDIO_TOKEN)`,
    );
  return fs.readFileSync(tokenFile, 'utf8').trim();
}

export const labelStudioStatus = (c: LabelStudioConfig): Promise<ServerStatus> =>
  processGroupStatus(labelStudioFiles(c).pidFile, c.url);

/** Starts Label Studio (or finds it running); returns its URL and how long the start took. */
export function startLabelStudio(c: LabelStudioConfig, timeoutMs = 180_000): Promise<StartResult> {
  const files = labelStudioFiles(c);
  return ensureServer(
    {
      name: 'label-studio',
      files,
      host: c.host,
      port: c.port,
      url: c.url,
      timeoutMs,
      portInUseMessage:
        `port ${c.port} on ${c.host} is in use; choose another: ` + 'make label-studio-up LABEL_STUDIO_PORT=<port>',
    },
    () => {
      if (!fs.existsSync(c.bin))
        throw new Error(`Label Studio is not installed at ${c.bin}. Run \`make label-studio-venv\`.`);
      fs.mkdirSync(c.dataDir, { recursive: true, mode: 0o700 });
      const args = [
        'start',
        '--data-dir',
        c.dataDir,
        '--internal-host',
        c.host,
        '--port',
        String(c.port),
        '--username',
        LABEL_STUDIO_USER,
        '--password',
        secretFile(files.passwordFile, 16),
        '--user-token',
        secretFile(files.tokenFile, 20),
        '--enable-legacy-api-token',
        '--no-browser',
      ];
      const env = {
        // It reads plain HOST, PORT, USERNAME and PASSWORD too: a stray one in the caller's environment must not
        // move it or make another account.
        ...Object.fromEntries(
          Object.entries(process.env).filter(([k]) => !['HOST', 'PORT', 'USERNAME', 'PASSWORD'].includes(k)),
        ),
        LABEL_STUDIO_BASE_DATA_DIR: c.dataDir,
        // Its own, kept across restarts (else a random one per start logs every annotator out).
        SECRET_KEY: secretFile(files.secretKeyFile, 32),
        LATEST_VERSION_CHECK: 'false',
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK: 'true',
        // Local file serving stays off: tasks carry their text, nothing is read from disk by URL.
        LOCAL_FILES_SERVING_ENABLED: 'false',
      };
      return { bin: c.bin, args, env };
    },
  );
}

export const stopLabelStudio = (c: LabelStudioConfig): Promise<boolean> => stopServerGroup(labelStudioFiles(c).pidFile);
