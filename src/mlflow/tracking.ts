/**
 * Tracking layer: experiments, run creation and lookup, run search, metric history and dataset
 * inputs. Everything here talks to the server directly; writes that must survive an outage
 * (metrics, params, tags, run status) are in the journaled layer above (logging.ts).
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { MlflowApiError, MlflowValidationError } from './errors';
import {
  ExperimentSchema,
  MetricSchema,
  RunSchema,
  type Dataset,
  type Experiment,
  type Metric,
  type Run,
  type RunTag,
} from './schemas';
import { validateBatch } from './validation';
import { Empty, MlflowBase, paginate, proxiedArtifactPath, REQUEST_ID_TAG, toTags } from './base';

export interface DatasetInput {
  dataset: Dataset;
  /** Shown in the UI as the dataset's role: train, validation, test, ... */
  context?: string;
  tags?: RunTag[];
}

export abstract class TrackingClient extends MlflowBase {
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

  async searchAllRuns(opts: Omit<Parameters<TrackingClient['searchRuns']>[0], 'pageToken'>): Promise<Run[]> {
    return paginate(async (pageToken) => {
      const page = await this.searchRuns({ ...opts, pageToken });
      return { items: page.runs, next: page.nextPageToken };
    });
  }

  /** Moves a run to the experiment's trash (restorable in the UI until garbage-collected). */
  async deleteRun(runId: string): Promise<void> {
    await this.http.json('POST', '/api/2.0/mlflow/runs/delete', { run_id: runId }, z.object({}).passthrough());
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
}
