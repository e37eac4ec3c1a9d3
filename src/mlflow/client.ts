/**
 * Typed MLflow client over REST 2.0: tracking, dataset inputs, artifacts through the server's
 * proxy, and the model registry with aliases. Logging never loses data: when the server cannot
 * be reached, metrics/params/tags/status go to a local journal and are replayed in order later.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { isTransient, MlflowApiError, MlflowValidationError } from './errors';
import { RunJournal, type JournalOp } from './journal';
import { writeMlmodel, type MlmodelOptions } from './mlmodel';
import {
  ExperimentSchema,
  FileInfoSchema,
  LoggedModelSchema,
  MetricSchema,
  ModelVersionSchema,
  RegisteredModelSchema,
  RunSchema,
  type Dataset,
  type Experiment,
  type FileInfo,
  type LoggedModel,
  type Metric,
  type ModelVersion,
  type RegisteredModel,
  type Run,
  type RunStatus,
  type RunTag,
} from './schemas';
import { Transport, type TransportOptions } from './transport';
import { splitBatch, validateBatch, validateKey, type BatchPayload } from './validation';

export interface MlflowClientOptions extends TransportOptions {
  trackingUri: string;
  /** Where undeliverable tracking calls are kept (default: mlflow/.journal under the cwd). */
  journalDir?: string;
  /** While a run has undelivered entries, how often logging tries to reach the server again. */
  reconnectIntervalMs?: number;
  /** Progress and warnings (default: stderr). */
  log?: (msg: string) => void;
}

export interface LogResult {
  /** Requests delivered now. */
  sent: number;
  /** Requests kept in the journal for later. */
  journaled: number;
}

/** What a metric was measured on: a logged model and the dataset (name + digest) it was scored on. */
export interface MetricLink {
  modelId?: string;
  dataset?: { name: string; digest: string };
}

export interface DatasetInput {
  dataset: Dataset;
  /** Shown in the UI as the dataset's role: train, validation, test, ... */
  context?: string;
  tags?: RunTag[];
}

// experiments/create and registered-models/create need no request id: names are unique, so a retried
// create answers RESOURCE_ALREADY_EXISTS, which getOrCreate* turn into a lookup.
const Empty = z.object({}).passthrough();
/** Tag holding the client-made id of the request that created a run or model version (retry safety). */
export const REQUEST_ID_TAG = 'mlops.request_id';
const PROXY = '/api/2.0/mlflow-artifacts/artifacts';
/** Artifact files fetched at once by downloadArtifacts. */
const DOWNLOAD_CONCURRENCY = 6;

const encodePath = (p: string): string => p.split('/').filter(Boolean).map(encodeURIComponent).join('/');

/** `mlflow-artifacts:/1/abc/artifacts` or `mlflow-artifacts://host:port/1/abc/artifacts` -> `1/abc/artifacts`. */
export function proxiedArtifactPath(uri: string): string {
  const m = /^mlflow-artifacts:(?:\/\/[^/]+)?\/?(.*)$/.exec(uri);
  if (!m) {
    throw new Error(
      `Artifact location "${uri}" is not served through the tracking server. Start the server with --serve-artifacts ` +
        `(make mlflow-up does) so clients need no direct access to the artifact store.`,
    );
  }
  return m[1]!.replace(/\/+$/, '');
}

/**
 * Credentials MLflow's own clients read: a bearer token (MLFLOW_TRACKING_TOKEN) or the basic-auth
 * user of a server started with `--app-name basic-auth` (MLFLOW_TRACKING_USERNAME / _PASSWORD).
 */
export function authorizationHeader(env: NodeJS.ProcessEnv): Record<string, string> {
  if (env.MLFLOW_TRACKING_TOKEN) return { authorization: `Bearer ${env.MLFLOW_TRACKING_TOKEN}` };
  if (env.MLFLOW_TRACKING_USERNAME && env.MLFLOW_TRACKING_PASSWORD) {
    const basic = Buffer.from(`${env.MLFLOW_TRACKING_USERNAME}:${env.MLFLOW_TRACKING_PASSWORD}`).toString('base64');
    return { authorization: `Basic ${basic}` };
  }
  return {};
}

export class MlflowClient {
  readonly trackingUri: string;
  readonly journal: RunJournal;
  private readonly http: Transport;
  private readonly reconnectIntervalMs: number;
  private readonly log: (msg: string) => void;
  private readonly artifactRoots = new Map<string, string>();
  /** Runs with undelivered journal entries (cached; initialised from disk on first use). */
  private readonly offline = new Map<string, boolean>();
  private readonly lastReconnect = new Map<string, number>();

  constructor(opts: MlflowClientOptions) {
    this.trackingUri = opts.trackingUri;
    this.http = new Transport(opts.trackingUri, {
      ...opts,
      headers: { ...authorizationHeader(process.env), ...opts.headers },
    });
    this.journal = new RunJournal(opts.journalDir ?? path.resolve('mlflow', '.journal'));
    this.reconnectIntervalMs = opts.reconnectIntervalMs ?? 5000;
    this.log = opts.log ?? ((m) => process.stderr.write(`[mlflow] ${m}\n`));
  }

  /** A client for MLFLOW_TRACKING_URI (default http://127.0.0.1:5000). */
  static fromEnv(overrides: Partial<MlflowClientOptions> = {}): MlflowClient {
    return new MlflowClient({
      trackingUri: process.env.MLFLOW_TRACKING_URI ?? `http://127.0.0.1:${process.env.MLFLOW_PORT ?? 5000}`,
      ...overrides,
    });
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  // ---- experiments -----------------------------------------------------------------------

  async getExperimentByName(name: string): Promise<Experiment | undefined> {
    try {
      const r = await this.http.json(
        'GET',
        '/api/2.0/mlflow/experiments/get-by-name',
        { experiment_name: name },
        z.object({ experiment: ExperimentSchema }),
      );
      return r.experiment;
    } catch (err) {
      if (err instanceof MlflowApiError && err.errorCode === 'RESOURCE_DOES_NOT_EXIST') return undefined;
      throw err;
    }
  }

  async getExperiment(experimentId: string): Promise<Experiment> {
    return (
      await this.http.json(
        'GET',
        '/api/2.0/mlflow/experiments/get',
        { experiment_id: experimentId },
        z.object({ experiment: ExperimentSchema }),
      )
    ).experiment;
  }

  /** The experiment called `name`, created (with `tags`) if it does not exist yet; safe under races. */
  async getOrCreateExperiment(name: string, tags: Record<string, string> = {}): Promise<Experiment> {
    const existing = await this.getExperimentByName(name);
    if (existing) return existing;
    try {
      const { experiment_id } = await this.http.json(
        'POST',
        '/api/2.0/mlflow/experiments/create',
        { name, tags: toTags(tags) },
        z.object({ experiment_id: z.string() }),
      );
      return await this.getExperiment(experiment_id);
    } catch (err) {
      if (err instanceof MlflowApiError && err.errorCode === 'RESOURCE_ALREADY_EXISTS')
        return (await this.getExperimentByName(name))!;
      throw err;
    }
  }

  async setExperimentTag(experimentId: string, key: string, value: string): Promise<void> {
    await this.http.json(
      'POST',
      '/api/2.0/mlflow/experiments/set-experiment-tag',
      { experiment_id: experimentId, key, value },
      Empty,
    );
  }

  /** Active experiments, most recently created first. */
  async searchExperiments(): Promise<Experiment[]> {
    return paginate(async (pageToken) => {
      const r = await this.http.json(
        'POST',
        '/api/2.0/mlflow/experiments/search',
        { max_results: 1000, order_by: ['creation_time DESC'], page_token: pageToken },
        z.object({ experiments: z.array(ExperimentSchema).default([]), next_page_token: z.string().optional() }),
      );
      return { items: r.experiments as Experiment[], next: r.next_page_token };
    });
  }

  // ---- runs ------------------------------------------------------------------------------

  /**
   * Creates a run. Safe to retry: the run carries a client-made request id (tag
   * `mlops.request_id`), and before a retry the experiment is searched for it, so a create whose
   * response was lost never leaves a second run.
   */
  async createRun(opts: {
    experimentId: string;
    runName?: string;
    tags?: Record<string, string>;
    startTime?: number;
  }): Promise<Run> {
    const requestId = randomUUID();
    const tags = {
      ...opts.tags,
      ...(opts.runName ? { 'mlflow.runName': opts.runName } : {}),
      [REQUEST_ID_TAG]: requestId,
    };
    validateBatch({ tags: toTags(tags) });
    const recover = async () => {
      const { runs } = await this.searchRuns({
        experimentIds: [opts.experimentId],
        filter: `tags.\`${REQUEST_ID_TAG}\` = '${requestId}'`,
        maxResults: 1,
        viewType: 'ALL',
      });
      return runs[0] ? { run: runs[0] } : undefined;
    };
    const r = await this.http.json(
      'POST',
      '/api/2.0/mlflow/runs/create',
      {
        experiment_id: opts.experimentId,
        run_name: opts.runName,
        start_time: opts.startTime ?? Date.now(),
        tags: toTags(tags),
      },
      z.object({ run: RunSchema }),
      { recover },
    );
    this.artifactRoots.set(r.run.info.run_id, proxiedArtifactPath(r.run.info.artifact_uri));
    return r.run;
  }

  async getRun(runId: string): Promise<Run> {
    return (await this.http.json('GET', '/api/2.0/mlflow/runs/get', { run_id: runId }, z.object({ run: RunSchema })))
      .run;
  }

  /** One page of runs; use `searchAllRuns` to follow page tokens. */
  async searchRuns(opts: {
    experimentIds: string[];
    filter?: string;
    orderBy?: string[];
    maxResults?: number;
    pageToken?: string;
    viewType?: 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';
  }): Promise<{ runs: Run[]; nextPageToken?: string }> {
    const r = await this.http.json(
      'POST',
      '/api/2.0/mlflow/runs/search',
      {
        experiment_ids: opts.experimentIds,
        filter: opts.filter ?? '',
        order_by: opts.orderBy ?? [],
        max_results: opts.maxResults ?? 1000,
        page_token: opts.pageToken,
        run_view_type: opts.viewType ?? 'ACTIVE_ONLY',
      },
      z.object({ runs: z.array(RunSchema).default([]), next_page_token: z.string().optional() }),
    );
    return { runs: r.runs, nextPageToken: r.next_page_token || undefined };
  }

  async searchAllRuns(opts: Omit<Parameters<MlflowClient['searchRuns']>[0], 'pageToken'>): Promise<Run[]> {
    return paginate(async (pageToken) => {
      const page = await this.searchRuns({ ...opts, pageToken });
      return { items: page.runs, next: page.nextPageToken };
    });
  }

  /** Moves a run to the experiment's trash (restorable in the UI until garbage-collected). */
  async deleteRun(runId: string): Promise<void> {
    await this.http.json('POST', '/api/2.0/mlflow/runs/delete', { run_id: runId }, z.object({}).passthrough());
  }

  /** Sets status/end time/name; journaled when the server is unreachable. */
  async updateRun(
    runId: string,
    update: { status?: RunStatus; endTime?: number; runName?: string },
  ): Promise<LogResult> {
    const body = { status: update.status ?? 'RUNNING', end_time: update.endTime, run_name: update.runName };
    return this.deliver(runId, [{ op: 'update-run', body }]);
  }

  /** Ends a run: delivers its journal if any, then marks it FINISHED/FAILED/KILLED. */
  async endRun(runId: string, status: RunStatus = 'FINISHED'): Promise<LogResult> {
    return this.updateRun(runId, { status, endTime: Date.now() });
  }

  /**
   * Continues a run after a crash or restart: replays anything journaled for it and marks it
   * RUNNING again. Metrics logged afterwards continue its history.
   */
  async resumeRun(runId: string): Promise<Run> {
    await this.flush(runId);
    const run = await this.getRun(runId);
    if (run.info.status !== 'RUNNING') await this.updateRun(runId, { status: 'RUNNING' });
    this.artifactRoots.set(runId, proxiedArtifactPath(run.info.artifact_uri));
    return run;
  }

  // ---- logging (journaled) ---------------------------------------------------------------

  /**
   * Logs metrics, params and tags, split to the server's limits. Everything is validated first,
   * so a bad name or value throws before any request. If the server is unreachable the data is
   * journaled and `journaled` counts the requests kept for later.
   */
  async logBatch(runId: string, batch: Partial<BatchPayload>): Promise<LogResult> {
    const parts = splitBatch(validateBatch(batch));
    return this.deliver(
      runId,
      parts.map((body) => ({ op: 'log-batch' as const, body })),
    );
  }

  async logMetrics(
    runId: string,
    values: Record<string, number>,
    step = 0,
    timestamp = Date.now(),
    link: MetricLink = {},
  ): Promise<LogResult> {
    const linked = {
      ...(link.modelId ? { model_id: link.modelId } : {}),
      ...(link.dataset ? { dataset_name: link.dataset.name, dataset_digest: link.dataset.digest } : {}),
    };
    return this.logBatch(runId, {
      metrics: Object.entries(values).map(([key, value]) => ({ key, value, step, timestamp, ...linked })),
    });
  }

  async logMetric(runId: string, key: string, value: number, step = 0, timestamp = Date.now()): Promise<LogResult> {
    return this.logBatch(runId, { metrics: [{ key, value, step, timestamp }] });
  }

  async logParams(runId: string, params: Record<string, string | number | boolean>): Promise<LogResult> {
    return this.logBatch(runId, {
      params: Object.entries(params).map(([key, value]) => ({ key, value: String(value) })),
    });
  }

  async setTags(runId: string, tags: Record<string, string>): Promise<LogResult> {
    return this.logBatch(runId, { tags: toTags(tags) });
  }

  private isOffline(runId: string): boolean {
    let v = this.offline.get(runId);
    if (v === undefined) {
      v = this.journal.hasPending(runId);
      this.offline.set(runId, v);
    }
    return v;
  }

  private async send(runId: string, entry: JournalOp, singleTry = false): Promise<void> {
    const retry = singleTry ? { retries: 0 } : undefined;
    if (entry.op === 'log-batch') {
      await this.http.json('POST', '/api/2.0/mlflow/runs/log-batch', { run_id: runId, ...entry.body }, Empty, {
        retry,
      });
    } else {
      await this.http.json('POST', '/api/2.0/mlflow/runs/update', { run_id: runId, ...entry.body }, Empty, { retry });
    }
  }

  /** Sends ops in order; from the first transient failure on, keeps them in the journal. */
  private async deliver(runId: string, ops: JournalOp[]): Promise<LogResult> {
    if (this.isOffline(runId)) {
      for (const op of ops) this.journal.append(runId, op);
      await this.reconnect(runId, false);
      return { sent: 0, journaled: ops.length };
    }
    for (const [i, op] of ops.entries()) {
      try {
        await this.send(runId, op);
      } catch (err) {
        if (!isTransient(err)) throw err;
        for (const rest of ops.slice(i)) this.journal.append(runId, rest);
        this.offline.set(runId, true);
        this.lastReconnect.set(runId, Date.now());
        this.log(
          `server unreachable (${(err as Error).message}); keeping run ${runId}'s data in ` +
            `${this.journal.file(runId)} until it is back`,
        );
        return { sent: i, journaled: ops.length - i };
      }
    }
    return { sent: ops.length, journaled: 0 };
  }

  /** Replays the run's journal in order; returns true when nothing is left undelivered. */
  private async reconnect(runId: string, force: boolean): Promise<boolean> {
    const now = Date.now();
    if (!force && now - (this.lastReconnect.get(runId) ?? 0) < this.reconnectIntervalMs) return false;
    this.lastReconnect.set(runId, now);
    const pending = this.journal.pending(runId);
    for (const entry of pending) {
      try {
        await this.send(runId, entry, !force);
      } catch (err) {
        if (isTransient(err)) return false;
        throw err;
      }
      this.journal.ack(runId, entry.seq);
    }
    this.journal.compact(runId);
    this.offline.set(runId, false);
    if (pending.length > 0)
      this.log(`server reachable again; replayed ${pending.length} journaled request(s) for run ${runId}`);
    return true;
  }

  /**
   * Delivers everything journaled for `runId` (with retries). Throws MlflowUnavailableError if the
   * server is still down; the journal is kept, so nothing is lost.
   */
  async flush(runId: string): Promise<void> {
    if (!this.journal.hasPending(runId)) {
      this.offline.set(runId, false);
      return;
    }
    const pending = this.journal.pending(runId);
    for (const entry of pending) {
      await this.send(runId, entry);
      this.journal.ack(runId, entry.seq);
    }
    this.journal.compact(runId);
    this.offline.set(runId, false);
    this.log(`replayed ${pending.length} journaled request(s) for run ${runId}`);
  }

  /** Replays the journal of every run that has one (e.g. after a crash); returns the run ids. */
  async replayAll(): Promise<string[]> {
    const runs = this.journal.runsWithPending();
    for (const runId of runs) await this.flush(runId);
    return runs;
  }

  async getMetricHistory(runId: string, key: string): Promise<Metric[]> {
    return paginate(async (pageToken) => {
      const r = await this.http.json(
        'GET',
        '/api/2.0/mlflow/metrics/get-history',
        { run_id: runId, metric_key: key, max_results: 25000, page_token: pageToken },
        z.object({ metrics: z.array(MetricSchema).default([]), next_page_token: z.string().optional() }),
      );
      // Explicit type: older TypeScript (tslab's 5.0) infers zod 4 defaults as optional.
      return { items: r.metrics as Metric[], next: r.next_page_token };
    });
  }

  /** Records the datasets a run used (name, digest, source, schema), shown in the UI's Datasets column. */
  async logInputs(runId: string, inputs: DatasetInput[]): Promise<void> {
    for (const [i, input] of inputs.entries()) {
      const d = input.dataset;
      if (!d.name || d.name.length > 500)
        throw new MlflowValidationError(`datasets[${i}].name`, `dataset name must have 1-500 characters`);
      if (!d.digest || d.digest.length > 36)
        throw new MlflowValidationError(
          `datasets[${i}].digest`,
          `dataset digest must have 1-36 characters (MLflow's limit); got ${d.digest.length}`,
        );
    }
    const datasets = inputs.map((input) => ({
      tags: [...(input.context ? [{ key: 'mlflow.data.context', value: input.context }] : []), ...(input.tags ?? [])],
      dataset: input.dataset,
    }));
    await this.http.json('POST', '/api/2.0/mlflow/runs/log-inputs', { run_id: runId, datasets }, Empty);
  }

  // ---- artifacts (through the server's proxy) --------------------------------------------

  private async artifactRoot(runId: string): Promise<string> {
    let root = this.artifactRoots.get(runId);
    if (!root) {
      root = proxiedArtifactPath((await this.getRun(runId)).info.artifact_uri);
      this.artifactRoots.set(runId, root);
    }
    return root;
  }

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

  private async downloadLoggedModel(modelId: string, destDir: string): Promise<string> {
    const model = await this.getLoggedModel(modelId);
    const target = path.join(destDir, modelId);
    await this.downloadTree(
      proxiedArtifactPath(model.info.artifact_uri),
      (rel) => this.listLoggedModelArtifacts(modelId, rel),
      '',
      target,
    );
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
        const target = path.join(dirLocal, path.posix.basename(child.path));
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

  private version: Promise<string | undefined> | undefined;
  /** The tracking server's MLflow version (GET /version), undefined when it does not say. */
  serverVersion(): Promise<string | undefined> {
    this.version ??= (async () => {
      let text = '';
      await this.http.download('/version', async (body) => {
        for await (const chunk of body) text += String(chunk);
      });
      return /^\d+\.\d+[\w.+-]*$/.test(text.trim()) ? text.trim() : undefined;
    })().catch(() => undefined);
    return this.version;
  }

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
    const target = path.join(destDir, path.posix.basename(artifactPath));
    if (isDir) await this.downloadTree(root, (rel) => this.listArtifacts(runId, rel), artifactPath, target);
    else await this.downloadFile(`${root}/${artifactPath}`, target);
    return target;
  }

  private async downloadFile(proxyPath: string, localFile: string): Promise<void> {
    fs.mkdirSync(path.dirname(localFile), { recursive: true });
    const part = `${localFile}.part`;
    await this.http.download(`${PROXY}/${encodePath(proxyPath)}`, (body) => pipeline(body, fs.createWriteStream(part)));
    fs.renameSync(part, localFile);
  }

  // ---- model registry (aliases, not deprecated stages) -----------------------------------

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
    const root = await this.artifactRoot(runId);
    const rel = proxiedArtifactPath(source).slice(root.length + 1);
    return this.downloadArtifacts(runId, rel, destDir);
  }
}

/** Follows MLflow's page tokens until the last page (an empty token ends it). */
async function paginate<T>(
  page: (pageToken: string | undefined) => Promise<{ items: T[]; next?: string }>,
): Promise<T[]> {
  const all: T[] = [];
  let token: string | undefined;
  do {
    const p = await page(token);
    all.push(...p.items);
    token = p.next || undefined;
  } while (token);
  return all;
}

function toTags(tags: Record<string, string>): RunTag[] {
  return Object.entries(tags).map(([key, value]) => ({ key, value }));
}
