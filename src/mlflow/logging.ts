/**
 * Journal-backed logging: metrics, params, tags and run status never get lost. When the server
 * cannot be reached they go to the run's local journal (journal.ts holds its file format) and are
 * replayed in order once it is back, either by a later logging call or by flush/replayAll.
 */
import path from 'node:path';
import { isTransient } from './errors';
import { RunJournal, type JournalOp } from './journal';
import type { Run, RunStatus } from './schemas';
import { splitBatch, validateBatch, type BatchPayload } from './validation';
import { Empty, proxiedArtifactPath, toTags, type MlflowClientOptions } from './base';
import { TrackingClient } from './tracking';

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

export abstract class LoggingClient extends TrackingClient {
  readonly journal: RunJournal;
  private readonly reconnectIntervalMs: number;
  /** Runs with undelivered journal entries (cached; initialised from disk on first use). */
  private readonly offline = new Map<string, boolean>();
  private readonly lastReconnect = new Map<string, number>();

  constructor(opts: MlflowClientOptions) {
    super(opts);
    this.journal = new RunJournal(opts.journalDir ?? path.resolve('mlflow', '.journal'));
    this.reconnectIntervalMs = opts.reconnectIntervalMs ?? 5000;
  }

  // ---- run status (journaled, so a run still ends while the server is down) --------------

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
}
