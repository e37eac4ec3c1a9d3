/**
 * The local cache of registered models, keyed by what a model is (its run id and a digest of its
 * artifact source), never by a registry version number: version numbers restart after the
 * tracking database is recreated, and an alias moves, but a run id and a source name one set of
 * files. Every use is checked against what it claims to be: the folder's MLmodel must name the
 * registry version's run, and each file must still have the sha256 recorded when it was downloaded.
 *
 * Concurrent fetches of one model in a process share one download; a second process that finds the
 * folder completed meanwhile reuses it instead of failing on the rename.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { processAlive } from '../io/process-identity';
import type { MlflowClient, ModelVersion } from '../mlflow';
import { readMlmodel } from '../mlflow/mlmodel';
import { writeFileAtomic } from '../io/files';

const MANIFEST = '.cache-manifest.json';

const ManifestSchema = z.object({
  name: z.string(),
  version: z.string(),
  runId: z.string(),
  source: z.string(),
  downloadedAt: z.string(),
  files: z.record(z.string(), z.object({ sha256: z.string(), bytes: z.number() })),
});
export type CacheManifest = z.infer<typeof ManifestSchema>;

const ServedRecordSchema = z.object({
  name: z.string(),
  version: z.string(),
  run_id: z.string(),
  source: z.string(),
  servedAt: z.string(),
});
type ServedRecord = z.infer<typeof ServedRecordSchema>;

export class ModelCacheError extends Error {
  override name = 'ModelCacheError';
}

/** The cache key of a registry version: run id + digest of its source URI (pure). */
export function cacheKey(mv: Pick<ModelVersion, 'run_id' | 'source' | 'name' | 'version'>): string {
  if (!mv.run_id)
    throw new ModelCacheError(
      `models:/${mv.name}/${mv.version} is not tied to a run (source ${mv.source}); only run-logged models can be ` +
        `verified and cached`,
    );
  return `${mv.run_id}-${createHash('sha256').update(mv.source).digest('hex').slice(0, 12)}`;
}

function sha256File(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

function listFiles(dir: string, rel = ''): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (p === MANIFEST) return [];
    return e.isDirectory() ? listFiles(dir, p) : [p];
  });
}

/** Why `dir` is not a complete, unaltered copy of the model run `runId` logged; undefined when it is. */
export function verifyCachedModel(dir: string, runId: string): string | undefined {
  if (!fs.existsSync(path.join(dir, 'MLmodel'))) return 'no MLmodel file';
  const mlRun = readMlmodel(dir).run_id;
  if (mlRun !== runId) return `its MLmodel names run ${String(mlRun)}, the registry names run ${runId}`;
  let manifest: CacheManifest;
  try {
    manifest = ManifestSchema.parse(JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8')));
  } catch {
    return 'no valid cache manifest (not written by this cache, or the download did not finish)';
  }
  const present = listFiles(dir).sort();
  const expected = Object.keys(manifest.files).sort();
  if (present.join('\n') !== expected.join('\n')) return 'its files differ from the ones downloaded';
  for (const f of expected) {
    const want = manifest.files[f]!;
    const full = path.join(dir, f);
    if (fs.statSync(full).size !== want.bytes || sha256File(full) !== want.sha256)
      return `${f} changed since it was downloaded`;
  }
  return undefined;
}

export class ModelCache {
  private readonly inFlight = new Map<string, Promise<string>>();
  /** Downloads this cache started (a reused or shared download does not count). */
  downloads = 0;

  constructor(
    private readonly client: MlflowClient,
    readonly root: string,
    private readonly log: (msg: string) => void = () => {},
  ) {}

  /** The folder (under root/<name>/<run id>-<source digest>) holding registry version `mv`'s files, verified. */
  dirFor(mv: ModelVersion): string {
    return path.join(this.root, mv.name, cacheKey(mv));
  }

  private servedFile(name: string, alias: string): string {
    if (!/^[\w.-]+$/.test(name) || !/^[\w-]+$/.test(alias)) throw new ModelCacheError(`invalid model ${name}@${alias}`);
    return path.join(this.root, name, `@${alias}.json`);
  }

  /**
   * Records `mv` as the version `alias` pointed at when it was last loaded from this cache, verified. A
   * server that finds the registry unreachable at start serves it (`lastServed`) until the registry is back.
   */
  rememberServed(alias: string, mv: ModelVersion): void {
    const file = this.servedFile(mv.name, alias);
    const record: ServedRecord = {
      name: mv.name,
      version: mv.version,
      run_id: mv.run_id!,
      source: mv.source,
      servedAt: new Date().toISOString(),
    };
    writeFileAtomic(file, `${JSON.stringify(record, null, 2)}\n`);
  }

  /**
   * The version `name@alias` last served from this cache, with its folder, if that folder still verifies
   * against the run it claims (what `fetch` checks); otherwise why not.
   */
  lastServed(name: string, alias: string): { mv: ModelVersion; dir: string } | { problem: string } {
    const file = this.servedFile(name, alias);
    if (!fs.existsSync(file)) return { problem: `no version of ${name}@${alias} was served from ${this.root} before` };
    const parsed = ServedRecordSchema.safeParse(JSON.parse(fs.readFileSync(file, 'utf8')));
    if (!parsed.success) return { problem: `${file} is not a served-version record` };
    const { servedAt: _at, ...mv } = parsed.data;
    const dir = this.dirFor(mv as ModelVersion);
    const problem = fs.existsSync(dir) ? verifyCachedModel(dir, mv.run_id) : 'its folder is gone';
    return problem ? { problem: `version ${mv.version} in the cache: ${problem}` } : { mv: mv as ModelVersion, dir };
  }

  /** The local, verified copy of `mv`, downloaded when missing or not what it should be. */
  fetch(mv: ModelVersion): Promise<string> {
    const dir = this.dirFor(mv);
    let p = this.inFlight.get(dir);
    if (!p) {
      p = this.fetchUncached(mv, dir).finally(() => this.inFlight.delete(dir));
      this.inFlight.set(dir, p);
    }
    return p;
  }

  private async fetchUncached(mv: ModelVersion, dir: string): Promise<string> {
    const runId = mv.run_id!;
    if (fs.existsSync(dir)) {
      const problem = verifyCachedModel(dir, runId);
      if (!problem) return dir;
      this.log(
        `model cache: ${path.relative(this.root, dir)} is not models:/${mv.name}/${mv.version} (${problem}); ` +
          `downloading it again`,
      );
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const staging = `${dir}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.downloads++;
    try {
      const downloaded = await this.client.downloadModelVersion(mv, staging);
      const mlRun = readMlmodel(downloaded).run_id;
      if (mlRun !== runId)
        throw new ModelCacheError(
          `models:/${mv.name}/${mv.version}: the registry names run ${runId} but the artifact's MLmodel names run ` +
            `${String(mlRun)}; refusing to use it`,
        );
      const files = Object.fromEntries(
        listFiles(downloaded).map((f) => [
          f,
          { sha256: sha256File(path.join(downloaded, f)), bytes: fs.statSync(path.join(downloaded, f)).size },
        ]),
      );
      const manifest: CacheManifest = {
        name: mv.name,
        version: mv.version,
        runId,
        source: mv.source,
        downloadedAt: new Date().toISOString(),
        files,
      };
      fs.writeFileSync(path.join(downloaded, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
      fs.mkdirSync(path.dirname(dir), { recursive: true });
      try {
        fs.renameSync(downloaded, dir);
      } catch (err) {
        // Another process finished the same download first: use its copy if it is the right model.
        const code = (err as NodeJS.ErrnoException).code;
        if ((code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'EPERM') && !verifyCachedModel(dir, runId))
          return dir;
        throw err;
      }
      return dir;
    } finally {
      fs.rmSync(staging, { recursive: true, force: true });
    }
  }
}

/**
 * make cache-prune: per model under `root`, keeps the `keep` most recently downloaded versions, every
 * folder in `protect` (the versions an alias names now) and the last version each alias served (what a
 * server starts from while MLflow is down); removes the other versions and partial downloads whose process
 * is gone. Returns what it removed (pure but for the file system).
 */
export function pruneModelCache(root: string, keep: number, protect: ReadonlySet<string>): string[] {
  if (!fs.existsSync(root)) return [];
  const removed: string[] = [];
  for (const model of fs.readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory())) {
    const dir = path.join(root, model.name);
    const entries = fs.readdirSync(dir, { withFileTypes: true });
    const served = new Set(
      entries
        .filter((e) => e.isFile() && /^@[\w-]+\.json$/.test(e.name))
        .flatMap((e) => {
          const rec = ServedRecordSchema.safeParse(JSON.parse(fs.readFileSync(path.join(dir, e.name), 'utf8')));
          return rec.success ? [path.join(dir, cacheKey(rec.data))] : [];
        }),
    );
    const versions: { path: string; at: number }[] = [];
    for (const e of entries.filter((x) => x.isDirectory())) {
      const full = path.join(dir, e.name);
      const partial = /\.partial-(\d+)-[0-9a-f]+$/.exec(e.name);
      if (partial) {
        if (!processAlive(Number(partial[1]))) removed.push(full);
        continue;
      }
      let at = fs.statSync(full).mtimeMs;
      try {
        at = Date.parse(
          ManifestSchema.parse(JSON.parse(fs.readFileSync(path.join(full, MANIFEST), 'utf8'))).downloadedAt,
        );
      } catch {
        /* no manifest: judged by its folder's time */
      }
      versions.push({ path: full, at });
    }
    versions.sort((a, b) => b.at - a.at);
    versions.forEach((v, i) => {
      if (i >= keep && !protect.has(v.path) && !served.has(v.path)) removed.push(v.path);
    });
  }
  for (const p of removed) fs.rmSync(p, { recursive: true, force: true });
  return removed.sort();
}
