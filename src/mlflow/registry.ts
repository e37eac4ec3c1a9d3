/**
 * Model registry: registered models, versions (created retry-safely, waited on until READY),
 * aliases (champion, challenger; not the deprecated stages), and downloading a model by any of
 * the URIs MLflow accepts.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { MlflowApiError, MlflowValidationError } from './errors';
import { ModelVersionSchema, RegisteredModelSchema, type ModelVersion, type RegisteredModel } from './schemas';
import { validateKey } from './validation';
import { Empty, paginate, proxiedArtifactPath, REQUEST_ID_TAG, toTags } from './base';
import { ArtifactClient } from './artifacts';

export abstract class RegistryClient extends ArtifactClient {
  // ---- registered models -----------------------------------------------------------------

  async getRegisteredModel(name: string): Promise<RegisteredModel | undefined> {
    try {
      return (
        await this.http.json(
          'GET',
          '/api/2.0/mlflow/registered-models/get',
          { name },
          z.object({ registered_model: RegisteredModelSchema }),
        )
      ).registered_model;
    } catch (err) {
      if (err instanceof MlflowApiError && err.errorCode === 'RESOURCE_DOES_NOT_EXIST') return undefined;
      throw err;
    }
  }

  async getOrCreateRegisteredModel(
    name: string,
    opts: { description?: string; tags?: Record<string, string> } = {},
  ): Promise<RegisteredModel> {
    const existing = await this.getRegisteredModel(name);
    if (existing) {
      if (opts.description !== undefined && opts.description !== existing.description) {
        await this.http.json(
          'PATCH',
          '/api/2.0/mlflow/registered-models/update',
          { name, description: opts.description },
          Empty,
        );
      }
      for (const [key, value] of Object.entries(opts.tags ?? {})) await this.setRegisteredModelTag(name, key, value);
      return (await this.getRegisteredModel(name))!;
    }
    try {
      return (
        await this.http.json(
          'POST',
          '/api/2.0/mlflow/registered-models/create',
          { name, description: opts.description, tags: toTags(opts.tags ?? {}) },
          z.object({ registered_model: RegisteredModelSchema }),
        )
      ).registered_model;
    } catch (err) {
      if (err instanceof MlflowApiError && err.errorCode === 'RESOURCE_ALREADY_EXISTS')
        return (await this.getRegisteredModel(name))!;
      throw err;
    }
  }

  async setRegisteredModelTag(name: string, key: string, value: string): Promise<void> {
    validateKey('tag', key);
    await this.http.json('POST', '/api/2.0/mlflow/registered-models/set-tag', { name, key, value }, Empty);
  }

  async deleteRegisteredModelTag(name: string, key: string): Promise<void> {
    validateKey('tag', key);
    await this.http.json('DELETE', '/api/2.0/mlflow/registered-models/delete-tag', { name, key }, Empty);
  }

  // ---- model versions --------------------------------------------------------------------

  /**
   * Registers `source` (e.g. `mlflow-artifacts:/1/<run>/artifacts/model`) as a new version and waits
   * until READY. Safe to retry, like createRun: the version carries a request id tag that is looked
   * up among the model's versions before a retry.
   */
  async createModelVersion(opts: {
    name: string;
    source: string;
    runId?: string;
    /** The MLflow 3 logged model being registered (defaults to the one a `models:/<id>` source names). */
    modelId?: string;
    tags?: Record<string, string>;
    description?: string;
    timeoutMs?: number;
  }): Promise<ModelVersion> {
    const requestId = randomUUID();
    const recover = async () => {
      const filter = `name = '${opts.name.replace(/'/g, "''")}'${opts.runId ? ` and run_id = '${opts.runId}'` : ''}`;
      const found = (await this.searchModelVersions(filter)).find((mv) =>
        mv.tags.some((t) => t.key === REQUEST_ID_TAG && t.value === requestId),
      );
      return found ? { model_version: found } : undefined;
    };
    const r = await this.http.json(
      'POST',
      '/api/2.0/mlflow/model-versions/create',
      {
        name: opts.name,
        source: opts.source,
        run_id: opts.runId,
        model_id: opts.modelId ?? /^models:\/(m-[0-9a-f]+)$/.exec(opts.source)?.[1],
        tags: toTags({ ...opts.tags, [REQUEST_ID_TAG]: requestId }),
        description: opts.description,
      },
      z.object({ model_version: ModelVersionSchema }),
      { recover },
    );
    return this.waitModelVersionReady(opts.name, r.model_version.version, opts.timeoutMs ?? 300_000);
  }

  async getModelVersion(name: string, version: string): Promise<ModelVersion> {
    return (
      await this.http.json(
        'GET',
        '/api/2.0/mlflow/model-versions/get',
        { name, version },
        z.object({ model_version: ModelVersionSchema }),
      )
    ).model_version;
  }

  async waitModelVersionReady(name: string, version: string, timeoutMs: number): Promise<ModelVersion> {
    const deadline = Date.now() + timeoutMs;
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      const mv = await this.getModelVersion(name, version);
      if (mv.status === 'READY') return mv;
      if (mv.status === 'FAILED_REGISTRATION')
        throw new Error(`Model version ${name}/${version} failed to register: ${mv.status_message ?? ''}`);
      if (Date.now() > deadline)
        throw new Error(`Model version ${name}/${version} still ${mv.status} after ${timeoutMs / 1000}s`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  async setModelVersionTag(name: string, version: string, key: string, value: string): Promise<void> {
    validateKey('tag', key);
    await this.http.json('POST', '/api/2.0/mlflow/model-versions/set-tag', { name, version, key, value }, Empty);
  }

  async searchModelVersions(filter: string): Promise<ModelVersion[]> {
    return paginate(async (pageToken) => {
      const r = await this.http.json(
        'GET',
        '/api/2.0/mlflow/model-versions/search',
        { filter, max_results: 1000, page_token: pageToken },
        z.object({ model_versions: z.array(ModelVersionSchema).default([]), next_page_token: z.string().optional() }),
      );
      return { items: r.model_versions as ModelVersion[], next: r.next_page_token };
    });
  }

  // ---- aliases ---------------------------------------------------------------------------

  /** Points `alias` (e.g. champion, challenger) at `version`, moving it if it pointed elsewhere. */
  async setAlias(name: string, alias: string, version: string): Promise<void> {
    if (!/^[\w-]{1,255}$/.test(alias) || /^v\d+$/i.test(alias) || alias.toLowerCase() === 'latest') {
      throw new MlflowValidationError(
        'alias',
        `alias "${alias}" is invalid: letters, digits, _ and -, at most 255, not "latest" or v<number>`,
      );
    }
    await this.http.json('POST', '/api/2.0/mlflow/registered-models/alias', { name, alias, version }, Empty);
  }

  async deleteAlias(name: string, alias: string): Promise<void> {
    await this.http.json('DELETE', '/api/2.0/mlflow/registered-models/alias', { name, alias }, Empty);
  }

  /** The version `alias` points at, or undefined when the alias is not set. */
  async getModelVersionByAlias(name: string, alias: string): Promise<ModelVersion | undefined> {
    try {
      return (
        await this.http.json(
          'GET',
          '/api/2.0/mlflow/registered-models/alias',
          { name, alias },
          z.object({ model_version: ModelVersionSchema }),
        )
      ).model_version;
    } catch (err) {
      if (
        err instanceof MlflowApiError &&
        (err.errorCode === 'RESOURCE_DOES_NOT_EXIST' || err.errorCode === 'INVALID_PARAMETER_VALUE')
      )
        return undefined;
      throw err;
    }
  }

  // ---- download by model URI -------------------------------------------------------------

  /**
   * Resolves a model URI to its version and downloads its files into `destDir`.
   * Accepts `models:/<name>@<alias>`, `models:/<name>/<version>`, `models:/<model id>` and
   * `runs:/<run_id>/<path>` (the run's logged model of that name, or its artifact folder).
   */
  async downloadModel(uri: string, destDir: string): Promise<{ dir: string; version?: ModelVersion }> {
    let version: ModelVersion | undefined;
    let source = uri;
    const runs = /^runs:\/([^/]+)\/(.+)$/.exec(uri);
    if (runs) {
      const resolved = await this.runModelSource(await this.getRun(runs[1]!), runs[2]!);
      if (!resolved) throw new Error(`${uri}: run ${runs[1]} logged no model "${runs[2]}"`);
      source = resolved;
    }
    const byAlias = /^models:\/([^@/]+)@([\w-]+)$/.exec(uri);
    const byVersion = /^models:\/([^@/]+)\/(\d+)$/.exec(uri);
    if (byAlias) {
      version = await this.getModelVersionByAlias(byAlias[1]!, byAlias[2]!);
      if (!version) throw new Error(`${uri}: registered model "${byAlias[1]}" has no alias "${byAlias[2]}"`);
      source = version.source;
    } else if (byVersion) {
      version = await this.getModelVersion(byVersion[1]!, byVersion[2]!);
      source = version.source;
    }
    return { dir: await this.downloadSource(source, version?.run_id, destDir, uri), version };
  }

  /**
   * Downloads a model version already in hand (from an alias lookup, say) without asking the registry
   * for it again: on a busy server every round trip counts when a replica swaps models.
   */
  downloadModelVersion(mv: ModelVersion, destDir: string): Promise<string> {
    return this.downloadSource(mv.source, mv.run_id, destDir, `models:/${mv.name}/${mv.version}`);
  }

  private async downloadSource(source: string, runId: string | undefined, destDir: string, uri: string) {
    const loggedModel = /^models:\/(m-[0-9a-f]+)$/.exec(source);
    if (loggedModel) return this.downloadLoggedModel(loggedModel[1]!, destDir);
    const runsUri = /^runs:\/([^/]+)\/(.+)$/.exec(source);
    if (runsUri) return this.downloadArtifacts(runsUri[1]!, runsUri[2]!, destDir);
    if (!runId) throw new Error(`Cannot download ${uri}: its source "${source}" is not tied to a run`);
    // A version registered from a run's artifact folder: its source is a path under the run's root.
    const root = await this.artifactRoot(runId);
    const rel = proxiedArtifactPath(source).slice(root.length + 1);
    return this.downloadArtifacts(runId, rel, destDir);
  }
}
