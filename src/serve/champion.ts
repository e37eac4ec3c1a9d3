/**
 * Keeps the served model in step with the registry: resolves `models:/<name>@<alias>`, fetches the
 * version through the content-addressed model cache and swaps it in when the alias moves.
 * Requests run on the model they started with (`use`); once the last of them has finished, the
 * replaced model's ONNX Runtime sessions are released, so hot swaps do not accumulate memory.
 */
import { loadModel, type Predictor } from '../kinds';
import type { MlflowClient, ModelVersion } from '../mlflow';
import { ModelCache } from '../production/model-cache';

export interface ServedModel {
  name: string;
  alias: string;
  version: string;
  runId: string;
  predictor: Predictor;
  loadedAt: string;
}

/** What the server reads of the holder (the `models` decorator); tests may pass a stand-in. */
export type ModelSource = Pick<
  ChampionHolder,
  'model' | 'loaded' | 'name' | 'alias' | 'reloads' | 'releases' | 'draining' | 'use'
>;

export interface ChampionHolderOptions {
  log?: (msg: string) => void;
  /** How a cached model folder becomes a predictor (default: the kind registry's loadModel). */
  load?: (dir: string) => Promise<Predictor>;
  /** Called after a replaced model was released (the server runs a full GC here). */
  afterRelease?: () => void;
}

export class ChampionHolder {
  private current: ServedModel | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Map<ServedModel, number>();
  private readonly retired = new Set<ServedModel>();
  private refreshing: Promise<boolean> | undefined;
  private readonly log: (msg: string) => void;
  private readonly load: (dir: string) => Promise<Predictor>;
  private readonly afterRelease: () => void;
  reloads = 0;
  releases = 0;

  constructor(
    private readonly client: MlflowClient,
    readonly name: string,
    readonly alias: string,
    readonly cache: ModelCache,
    opts: ChampionHolderOptions = {},
  ) {
    this.log = opts.log ?? (() => {});
    this.load = opts.load ?? loadModel;
    this.afterRelease = opts.afterRelease ?? (() => {});
  }

  get model(): ServedModel {
    if (!this.current) throw new Error('no model loaded yet');
    return this.current;
  }

  get loaded(): boolean {
    return this.current !== undefined;
  }

  /** Models replaced by a swap whose last requests have not finished yet. */
  get draining(): number {
    return this.retired.size;
  }

  /** Runs `fn` on the current model; that model stays loaded until `fn` settles, even across a swap. */
  async use<T>(fn: (model: ServedModel) => Promise<T>): Promise<T> {
    const model = this.model;
    this.inFlight.set(model, (this.inFlight.get(model) ?? 0) + 1);
    try {
      return await fn(model);
    } finally {
      const left = this.inFlight.get(model)! - 1;
      if (left > 0) this.inFlight.set(model, left);
      else {
        this.inFlight.delete(model);
        if (this.retired.has(model)) await this.release(model);
      }
    }
  }

  private async release(model: ServedModel): Promise<void> {
    this.retired.delete(model);
    try {
      await model.predictor.release();
      this.releases++;
      this.afterRelease();
    } catch (err) {
      this.log(`releasing ${model.name} version ${model.version} failed: ${(err as Error).message}`);
    }
  }

  private async loadVersion(mv: ModelVersion): Promise<{ model: ServedModel; timing: string }> {
    const t0 = performance.now();
    const dir = await this.cache.fetch(mv);
    const t1 = performance.now();
    const predictor = await this.load(dir);
    const t2 = performance.now();
    const model = {
      name: this.name,
      alias: this.alias,
      version: mv.version,
      runId: mv.run_id!,
      predictor,
      loadedAt: new Date().toISOString(),
    };
    // Operators (and the replicas test) read where a slow swap spent its time.
    return { model, timing: `fetched in ${Math.round(t1 - t0)} ms, loaded in ${Math.round(t2 - t1)} ms` };
  }

  /** Loads the alias's version if it differs from the one served; returns true when it swapped. */
  refresh(): Promise<boolean> {
    // One refresh at a time: a slow load and the next poll must not both load (and leak) a model.
    this.refreshing ??= this.refreshOnce().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async refreshOnce(): Promise<boolean> {
    const mv = await this.client.getModelVersionByAlias(this.name, this.alias);
    if (!mv) {
      if (!this.current)
        throw new Error(
          `models:/${this.name}@${this.alias} is not set. Promote a model first (make promote RUN=... and set ` +
            `@${this.alias}).`,
        );
      return false;
    }
    // Same version and same run: nothing to do. A version number reused by a recreated registry has another run.
    if (this.current?.version === mv.version && this.current.runId === mv.run_id) return false;
    const { model: next, timing } = await this.loadVersion(mv);
    const prev = this.current;
    this.current = next; // atomic swap: requests take `model` once, at their start
    if (prev) {
      this.reloads++;
      if (this.inFlight.has(prev)) this.retired.add(prev);
      else await this.release(prev);
    }
    this.log(
      prev === undefined
        ? `serving ${this.name} version ${mv.version} (@${this.alias}, run ${mv.run_id}; ${timing})`
        : `@${this.alias} moved: ${this.name} version ${prev.version} -> ${mv.version} (run ${mv.run_id}; ${timing})`,
    );
    return true;
  }

  /** Polls the registry; errors (server briefly down) keep the current model. */
  watch(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.refresh().catch((err: Error) =>
        this.log(`alias check failed, keeping version ${this.current?.version}: ${err.message}`),
      );
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops polling and releases every loaded model. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const models = [...this.retired, ...(this.current ? [this.current] : [])];
    this.current = undefined;
    for (const m of models) await this.release(m);
  }
}
