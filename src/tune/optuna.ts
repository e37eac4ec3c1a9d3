/**
 * Optuna from TypeScript: a long-lived Python process (src/py/optuna_bridge.py) speaking JSON
 * lines, with Optuna's own samplers, pruners and RDB storage behind it. TypeScript asks for a
 * trial, trains, reports intermediate values (Optuna decides pruning) and tells the result.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { PROJECT_ROOT } from '../config';
import type { SearchParam, TrialParams } from './space';

export const BRIDGE_SCRIPT = path.join(PROJECT_ROOT, 'src', 'py', 'optuna_bridge.py');

export type SamplerName = 'tpe' | 'random' | 'grid';
export type PrunerName = 'median' | 'hyperband' | 'none';

export interface StudyOptions {
  /** The venv's Python, with optuna installed (make setup). */
  python: string;
  /** SQLAlchemy URL of the study storage: sqlite:///..., postgresql://... */
  storage: string;
  study: string;
  direction?: 'maximize' | 'minimize';
  space: readonly SearchParam[];
  sampler?: { name: SamplerName; seed?: number; startupTrials?: number };
  pruner?: {
    name: PrunerName;
    startupTrials?: number;
    warmupSteps?: number;
    minResource?: number;
    maxResource?: number;
  };
  /** Heartbeat of running trials (s): a trial silent for `grace` s is failed and retried by the next driver. */
  heartbeat?: { interval: number; grace: number };
  /** Study attributes set when absent (the MLflow experiment, the model kind...). */
  studyAttrs?: Record<string, string>;
}

const ParamValueSchema = z.union([z.string(), z.number(), z.boolean()]);
const TrialSchema = z.object({
  number: z.number().int(),
  state: z.enum(['running', 'complete', 'pruned', 'fail', 'waiting']),
  value: z.number().nullable(),
  params: z.record(z.string(), ParamValueSchema),
  intermediate: z.record(z.string(), z.number()),
  user_attrs: z.record(z.string(), z.unknown()),
  retry_of: z.number().int().nullable().optional(),
  duration_s: z.number().nullable(),
});
export type TrialRecord = z.infer<typeof TrialSchema>;

const SummarySchema = z.object({
  study: z.string(),
  counts: z.object({
    running: z.number(),
    complete: z.number(),
    pruned: z.number(),
    fail: z.number(),
    waiting: z.number(),
  }),
  best: z.object({ number: z.number(), value: z.number(), params: z.record(z.string(), ParamValueSchema) }).nullable(),
  user_attrs: z.record(z.string(), z.unknown()),
  trials: z.array(TrialSchema),
});
export type StudySummary = z.infer<typeof SummarySchema>;

const AskSchema = z.object({
  number: z.number().int(),
  params: z.record(z.string(), ParamValueSchema),
  retry_of: z.number().int().nullable(),
});
export type AskedTrial = { number: number; params: TrialParams; retryOf: number | null };

const ResponseSchema = z.object({
  id: z.number().nullable(),
  ok: z.boolean(),
  result: z.unknown().optional(),
  error: z.string().optional(),
});

export class OptunaError extends Error {
  override name = 'OptunaError';
}

/** Trials that finished (COMPLETE or PRUNED): what a budget of N trials counts. */
export const finishedCount = (s: StudySummary): number => s.counts.complete + s.counts.pruned;

/** One open study, through one bridge process. `close()` ends the process. */
export class OptunaStudy {
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private stderr: string[] = [];
  private exited: Error | undefined;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly options: StudyOptions,
  ) {
    let partial = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (line.trim()) this.onLine(line);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr.push(...chunk.split('\n').filter(Boolean));
      this.stderr = this.stderr.slice(-30);
    });
    child.on('close', (code) => {
      this.exited = new OptunaError(`the Optuna bridge exited (${code}):\n${this.stderr.join('\n')}`);
      for (const p of this.pending.values()) p.reject(this.exited);
      this.pending.clear();
    });
  }

  /** Creates the study, or loads it with its finished trials; fails trials whose driver died. */
  static async open(o: StudyOptions): Promise<{ study: OptunaStudy; failedStale: number[]; summary: StudySummary }> {
    if (!fs.existsSync(o.python)) throw new OptunaError(`${o.python} does not exist: run \`make setup\``);
    const child = spawn(o.python, [BRIDGE_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    const study = new OptunaStudy(child, o);
    try {
      const r = z
        .object({ failed_stale: z.array(z.number()) })
        .passthrough()
        .parse(
          await study.call('open', {
            storage: o.storage,
            study: o.study,
            direction: o.direction ?? 'maximize',
            space: o.space,
            owner_pid: process.pid,
            sampler: {
              name: o.sampler?.name ?? 'tpe',
              seed: o.sampler?.seed,
              startup_trials: o.sampler?.startupTrials,
            },
            pruner: {
              name: o.pruner?.name ?? 'median',
              startup_trials: o.pruner?.startupTrials,
              warmup_steps: o.pruner?.warmupSteps,
              min_resource: o.pruner?.minResource,
              max_resource: o.pruner?.maxResource,
            },
            heartbeat: o.heartbeat ?? { interval: 10, grace: 60 },
            study_attrs: o.studyAttrs ?? {},
          }),
        );
      return { study, failedStale: r.failed_stale, summary: SummarySchema.parse(r) };
    } catch (e) {
      study.close();
      throw e;
    }
  }

  /** Queues these parameters as a coming trial, unless a trial with them exists already. */
  async enqueue(params: TrialParams): Promise<void> {
    await this.call('enqueue', { params });
  }

  async ask(): Promise<AskedTrial> {
    const r = AskSchema.parse(await this.call('ask', { space: this.options.space }));
    return { number: r.number, params: r.params, retryOf: r.retry_of };
  }

  /** Reports an intermediate value; true when the pruner says stop. */
  async report(trial: number, step: number, value: number): Promise<boolean> {
    return z.object({ prune: z.boolean() }).parse(await this.call('report', { number: trial, step, value })).prune;
  }

  async tell(trial: number, state: 'complete' | 'pruned' | 'fail', value?: number): Promise<TrialRecord> {
    return TrialSchema.parse(await this.call('tell', { number: trial, state, value }));
  }

  async setTrialAttr(trial: number, key: string, value: string): Promise<void> {
    await this.call('set_attr', { number: trial, key, value });
  }

  /** Sets a study attribute unless it is set; returns the value that holds (another driver's, maybe). */
  async setStudyAttrIfAbsent(key: string, value: string): Promise<string> {
    return z.object({ value: z.string() }).parse(await this.call('set_study_attr', { key, value })).value;
  }

  async setStudyAttr(key: string, value: string): Promise<void> {
    await this.call('set_study_attr', { key, value, overwrite: true });
  }

  async summary(): Promise<StudySummary> {
    return SummarySchema.parse(await this.call('summary', {}));
  }

  /** Fails running trials whose driver is gone (they are retried with the same params); their numbers. */
  async failStale(): Promise<number[]> {
    return z.array(z.number()).parse(await this.call('fail_stale', {}));
  }

  /** Optuna's parameter importances (fANOVA) over the complete trials; empty with fewer than two. */
  async importances(): Promise<Record<string, number>> {
    return z.record(z.string(), z.number()).parse(await this.call('importances', {}));
  }

  close(): void {
    if (!this.child.killed && this.child.exitCode === null) this.child.stdin.end();
  }

  private call(op: string, body: Record<string, unknown>): Promise<unknown> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin.write(`${JSON.stringify({ id, op, ...body })}\n`);
    });
  }

  private onLine(line: string): void {
    let msg: z.infer<typeof ResponseSchema>;
    try {
      msg = ResponseSchema.parse(JSON.parse(line));
    } catch {
      this.stderr.push(`(bridge stdout) ${line}`);
      return;
    }
    const p = msg.id === null ? undefined : this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id!);
    if (msg.ok) p.resolve(msg.result ?? null);
    else p.reject(new OptunaError(`optuna: ${msg.error ?? 'unknown error'}`));
  }
}
