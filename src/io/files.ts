/**
 * File side effects shared by the fetch steps: hashing, verified streaming downloads, atomic writes.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fetch } from 'undici';
import { SingleBar, Presets } from 'cli-progress';

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}

/** True when `file` exists and, if `sha256` is given, has that digest. */
export async function fileMatches(file: string, sha256?: string): Promise<boolean> {
  if (!fs.existsSync(file)) return false;
  return sha256 === undefined || (await sha256File(file)) === sha256;
}

export class ChecksumError extends Error {
  constructor(
    readonly file: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`Checksum mismatch for ${file}: expected sha256 ${expected}, got ${actual}`);
    this.name = 'ChecksumError';
  }
}

export interface DownloadOptions {
  sha256?: string;
  headers?: Record<string, string>;
  /** Show a progress bar on stderr (default: when stderr is a terminal). */
  progress?: boolean;
  timeoutMs?: number;
}

/**
 * Streams `url` to `dest` (never buffering the whole body), verifying the sha256 when given.
 * Writes to `dest.part` and renames, so an interrupted download never leaves a truncated file.
 */
export async function downloadFile(
  url: string,
  dest: string,
  opts: DownloadOptions = {},
): Promise<{ bytes: number; sha256: string }> {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const res = await fetch(url, {
    headers: opts.headers,
    redirect: 'follow',
    signal: AbortSignal.timeout(opts.timeoutMs ?? 30 * 60_000),
  });
  if (!res.ok || !res.body) throw new Error(`GET ${url} answered HTTP ${res.status} ${res.statusText}`);
  const total = Number(res.headers.get('content-length') ?? 0);
  const showBar = (opts.progress ?? process.stderr.isTTY) && total > 1_000_000;
  const bar = showBar
    ? new SingleBar(
        { format: `  ${path.basename(dest)} [{bar}] {percentage}% {value}/{total} bytes`, stream: process.stderr },
        Presets.shades_classic,
      )
    : undefined;
  bar?.start(total, 0);
  const hash = createHash('sha256');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      bar?.update(bytes);
      cb(null, chunk);
    },
  });
  const part = `${dest}.part`;
  try {
    await pipeline(
      Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
      meter,
      fs.createWriteStream(part),
    );
  } finally {
    bar?.stop();
  }
  const digest = hash.digest('hex');
  if (opts.sha256 && digest !== opts.sha256) {
    fs.rmSync(part, { force: true });
    throw new ChecksumError(url, opts.sha256, digest);
  }
  fs.renameSync(part, dest);
  return { bytes, sha256: digest };
}

/** Copies `src` to `dest` via a temporary file, verifying the sha256 when given. */
export async function copyVerified(src: string, dest: string, sha256?: string): Promise<void> {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  fs.copyFileSync(src, part);
  if (sha256) {
    const actual = await sha256File(part);
    if (actual !== sha256) {
      fs.rmSync(part, { force: true });
      throw new ChecksumError(src, sha256, actual);
    }
  }
  fs.renameSync(part, dest);
}

/** Writes `text` to `file` atomically: a temp file beside it, renamed over it, so no reader sees half a file. */
export function writeFileAtomic(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}
