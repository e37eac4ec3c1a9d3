/**
 * Artifacts and MLflow 3 logged models, all through the server's artifact proxy
 * (`--serve-artifacts`), so clients need no access to the artifact store itself. Uploads are
 * streamed file by file; downloads mirror a folder tree, a few files at once, each written to a
 * `.part` file first and renamed, so a half-fetched file never looks complete.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { MlflowApiError } from './errors';
import { writeMlmodel, type MlmodelOptions } from './mlmodel';
import { FileInfoSchema, LoggedModelSchema, type FileInfo, type LoggedModel, type Run } from './schemas';
import { Empty, proxiedArtifactPath, toTags } from './base';
import { LoggingClient } from './logging';

const PROXY = '/api/2.0/mlflow-artifacts/artifacts';
/** Artifact files fetched at once by downloadArtifacts. */
const DOWNLOAD_CONCURRENCY = 6;

/**
 * `dir`/`name` for one path segment a server named. A listing is the server's word: a hostile or
 * intercepted one could name `..`, `.` or a nested path, and basename lets those through, so every
 * destination is resolved and must stay inside `dir`.
 */
export function insideDir(dir: string, name: string): string {
  const base = path.resolve(dir);
  const target = path.resolve(base, name);
  if (!name || name === '.' || name === '..' || /[/\\\0]/.test(name) || path.dirname(target) !== base)
    throw new MlflowApiError(
      502,
      'INVALID_ARTIFACT_PATH',
      'artifacts',
      `refusing artifact name ${JSON.stringify(name)}: it would land outside ${base}`,
    );
  return target;
}

/** The child's own name, when the server listed it under the folder that was asked for. */
function childName(parent: string, child: string): string {
  const prefix = parent ? `${parent}/` : '';
  if (!child.startsWith(prefix))
    throw new MlflowApiError(
      502,
      'INVALID_ARTIFACT_PATH',
      'artifacts',
      `listing of "${parent}" names "${child}", outside it`,
    );
  return child.slice(prefix.length);
}

const encodePath = (p: string): string => p.split('/').filter(Boolean).map(encodeURIComponent).join('/');

export abstract class ArtifactClient extends LoggingClient {
  private version: Promise<string | undefined> | undefined;

  /** Proxy path of the run's artifact root, from the cache that createRun/resumeRun fill, else from getRun. */
  protected async artifactRoot(runId: string): Promise<string> {
    let root = this.artifactRoots.get(runId);
    if (!root) {
      root = proxiedArtifactPath((await this.getRun(runId)).info.artifact_uri);
      this.artifactRoots.set(runId, root);
    }
    return root;
  }

  // ---- upload ----------------------------------------------------------------------------

  /** Uploads one file, streamed (never read whole into memory), to `<artifactPath>/<basename>`. */
  async logArtifact(runId: string, localFile: string, artifactPath = ''): Promise<string> {
    return this.uploadFile(await this.artifactRoot(runId), localFile, artifactPath);
  }

  /** Uploads a directory tree under `artifactPath`; returns the uploaded artifact paths. */
  async logArtifacts(runId: string, localDir: string, artifactPath = ''): Promise<string[]> {
    return this.uploadTree(await this.artifactRoot(runId), localDir, artifactPath);
  }

  private async uploadFile(root: string, localFile: string, artifactPath: string): Promise<string> {
    const rel = path.posix.join(artifactPath, path.basename(localFile));
    const { size } = fs.statSync(localFile);
    await this.http.upload(
      `${PROXY}/${encodePath(`${root}/${rel}`)}`,
      () => fs.createReadStream(localFile, { highWaterMark: 1 << 20 }),
      size,
    );
    return rel;
  }

  private async uploadTree(root: string, localDir: string, artifactPath: string): Promise<string[]> {
    const uploaded: string[] = [];
    for (const entry of fs
      .readdirSync(localDir, { withFileTypes: true })
      .sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(localDir, entry.name);
      if (entry.isDirectory())
        uploaded.push(...(await this.uploadTree(root, full, path.posix.join(artifactPath, entry.name))));
      else if (entry.isFile()) uploaded.push(await this.uploadFile(root, full, artifactPath));
    }
    return uploaded;
  }

  /** Writes `content` as an artifact file (text, HTML, JSON...). */
  async logText(runId: string, content: string, artifactFile: string): Promise<string> {
    // Staged in a temporary folder so the upload streams a real file with the artifact's own name.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-text-'));
    try {
      const file = path.join(tmp, path.posix.basename(artifactFile));
      fs.writeFileSync(file, content);
      return await this.logArtifact(
        runId,
        file,
        path.posix.dirname(artifactFile) === '.' ? '' : path.posix.dirname(artifactFile),
      );
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }

  // ---- logged models (MLflow 3) ----------------------------------------------------------

  /**
   * Logs a model folder as an MLflow 3 logged model: creates the model entity (linked to the run, with
   * the run's params), writes its MLmodel (flavors, signature, input example, model id, run id),
   * uploads the folder to the model's own artifact location, records it as the run's output and marks
   * it READY. Returns the model id; `models:/<id>` is the URI to register or load.
   */
  async logModel(
    runId: string,
    localDir: string,
    opts: Omit<MlmodelOptions, 'runId' | 'modelUuid'> & { modelType?: string; tags?: Record<string, string> },
  ): Promise<string> {
    const run = await this.getRun(runId);
    const created = await this.http.json(
      'POST',
      '/api/2.0/mlflow/logged-models',
      {
        experiment_id: run.info.experiment_id,
        name: opts.artifactPath,
        source_run_id: runId,
        model_type: opts.modelType,
        params: run.data.params.map((p) => ({ key: p.key, value: p.value })),
        tags: toTags(opts.tags ?? {}),
      },
      z.object({ model: LoggedModelSchema }),
    );
    const { model_id: modelId, artifact_uri: artifactUri } = created.model.info;
    try {
      writeMlmodel(localDir, {
        mlflowVersion: await this.serverVersion(),
        ...opts,
        artifactPath: artifactUri,
        modelUuid: modelId,
        modelId,
        runId,
      });
      await this.uploadTree(proxiedArtifactPath(artifactUri), localDir, '');
    } catch (err) {
      await this.finalizeLoggedModel(modelId, 'LOGGED_MODEL_UPLOAD_FAILED').catch(() => undefined);
      throw err;
    }
    await this.http.json(
      'POST',
      '/api/2.0/mlflow/runs/outputs',
      { run_id: runId, models: [{ model_id: modelId, step: 0 }] },
      Empty,
    );
    await this.finalizeLoggedModel(modelId, 'LOGGED_MODEL_READY');
    return modelId;
  }

  private async finalizeLoggedModel(modelId: string, status: LoggedModel['info']['status']): Promise<void> {
    await this.http.json(
      'PATCH',
      `/api/2.0/mlflow/logged-models/${encodeURIComponent(modelId)}`,
      { model_id: modelId, status },
      Empty,
    );
  }

  async getLoggedModel(modelId: string): Promise<LoggedModel> {
    const r = await this.http.json(
      'GET',
      `/api/2.0/mlflow/logged-models/${encodeURIComponent(modelId)}`,
      undefined,
      z.object({ model: LoggedModelSchema }),
    );
    return r.model;
  }

  /** Files of a logged model under `dir` (paths relative to the model's root). */
  async listLoggedModelArtifacts(modelId: string, dir = ''): Promise<FileInfo[]> {
    const r = await this.http.json(
      'GET',
      `/api/2.0/mlflow/logged-models/${encodeURIComponent(modelId)}/artifacts/directories`,
      dir ? { artifact_directory_path: dir } : undefined,
      z.object({ files: z.array(FileInfoSchema).default([]) }),
    );
    return r.files;
  }

  /**
   * The URI of the model a run logged at `name` (default `model`): its MLflow 3 logged model
   * (`models:/<id>`, the latest if it logged several), or for runs logged before logged models
   * existed, the run's `<name>/` artifact folder. Undefined when the run logged no such model.
   */
  async runModelSource(run: Run, name = 'model'): Promise<string | undefined> {
    for (const out of [...run.outputs.model_outputs].reverse()) {
      const m = await this.getLoggedModel(out.model_id).catch(() => undefined);
      if (m && m.info.name === name && m.info.status === 'LOGGED_MODEL_READY') return `models:/${m.info.model_id}`;
    }
    const files = await this.listArtifacts(run.info.run_id, name).catch(() => []);
    if (files.some((f) => f.path === `${name}/MLmodel`)) return `${run.info.artifact_uri.replace(/\/+$/, '')}/${name}`;
    return undefined;
  }

  protected async downloadLoggedModel(modelId: string, destDir: string): Promise<string> {
    const model = await this.getLoggedModel(modelId);
    const target = insideDir(destDir, modelId);
    await this.downloadTree(
      proxiedArtifactPath(model.info.artifact_uri),
      (rel) => this.listLoggedModelArtifacts(modelId, rel),
      '',
      target,
    );
    return target;
  }

  /** The tracking server's MLflow version (GET /version), undefined when it does not say. */
  serverVersion(): Promise<string | undefined> {
    // Asked once per client: every logged model's MLmodel records it.
    this.version ??= (async () => {
      let text = '';
      await this.http.download('/version', async (body) => {
        for await (const chunk of body) text += String(chunk);
      });
      return /^\d+\.\d+[\w.+-]*$/.test(text.trim()) ? text.trim() : undefined;
    })().catch(() => undefined);
    return this.version;
  }

  // ---- download --------------------------------------------------------------------------

  async listArtifacts(runId: string, artifactPath = ''): Promise<FileInfo[]> {
    const r = await this.http.json(
      'GET',
      '/api/2.0/mlflow/artifacts/list',
      { run_id: runId, path: artifactPath || undefined },
      z.object({ files: z.array(FileInfoSchema).default([]) }),
    );
    return r.files;
  }

  /** Downloads a file or a directory tree of the run into `destDir`; returns the local path. */
  async downloadArtifacts(runId: string, artifactPath: string, destDir: string): Promise<string> {
    const root = await this.artifactRoot(runId);
    const parent = path.posix.dirname(artifactPath) === '.' ? '' : path.posix.dirname(artifactPath);
    const listing = await this.listArtifacts(runId, parent);
    const self = listing.find((f) => f.path === artifactPath);
    const isDir = artifactPath === '' || self?.is_dir === true;
    if (!isDir && !self)
      throw new MlflowApiError(
        404,
        'RESOURCE_DOES_NOT_EXIST',
        'artifacts',
        `run ${runId} has no artifact "${artifactPath}"`,
      );
    const target = insideDir(destDir, path.posix.basename(artifactPath));
    if (isDir) await this.downloadTree(root, (rel) => this.listArtifacts(runId, rel), artifactPath, target);
    else await this.downloadFile(`${root}/${artifactPath}`, target);
    return target;
  }

  /**
   * Mirrors the artifact folder `rel` (listed by `list`, served under the proxy path `root`) into
   * `local`: the listing walks the tree first, then the files come a few at once. A model is a dozen
   * small files, and one at a time each waits a full round trip through a busy server; MLflow's own
   * client downloads with a thread pool for the same reason.
   */
  private async downloadTree(
    root: string,
    list: (rel: string) => Promise<FileInfo[]>,
    rel: string,
    local: string,
  ): Promise<void> {
    const files: { remote: string; local: string }[] = [];
    const walk = async (dirRel: string, dirLocal: string): Promise<void> => {
      fs.mkdirSync(dirLocal, { recursive: true });
      for (const child of await list(dirRel)) {
        const target = insideDir(dirLocal, childName(dirRel, child.path));
        if (child.is_dir) await walk(child.path, target);
        else files.push({ remote: child.path, local: target });
      }
    };
    await walk(rel, local);
    let next = 0;
    let failed: unknown;
    const worker = async (): Promise<void> => {
      // After one failure no worker starts another file, and the caller hears of it only once every
      // worker has stopped: nothing writes into a folder the caller is about to remove.
      while (next < files.length && failed === undefined) {
        const f = files[next++]!;
        try {
          await this.downloadFile(`${root}/${f.remote}`, f.local);
        } catch (err) {
          failed ??= err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DOWNLOAD_CONCURRENCY, files.length) }, worker));
    if (failed !== undefined) throw failed;
  }

  private async downloadFile(proxyPath: string, localFile: string): Promise<void> {
    fs.mkdirSync(path.dirname(localFile), { recursive: true });
    const part = `${localFile}.part`;
    await this.http.download(`${PROXY}/${encodePath(proxyPath)}`, (body) => pipeline(body, fs.createWriteStream(part)));
    fs.renameSync(part, localFile);
  }
}
