/**
 * Keeps the served model in step with the registry: resolves `models:/<name>@<alias>`, fetches the
 * version through the content-addressed model cache and swaps it in when the alias moves.
 * Requests run on the model they started with (`use`); once the last of them has finished, the
 * replaced model's ONNX Runtime sessions are released, so hot swaps do not accumulate memory.
 * When the registry cannot be reached at start, it serves the last champion this cache served and
 * verified (`start`), says so (`registry`), and keeps polling: the registry's answer wins once it is back.
 */
import { loadModel, type Predictor } from '../kinds';
import { isTransient, type MlflowClient, type ModelVersion } from '../mlflow';
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
  'model' | 'loaded' | 'name' | 'alias' | 'reloads' | 'releases' | 'draining' | 'use' | 'registry' | 'failing'
>;

/** Whether the served model is the registry's current answer, or the cached one served while it is unreachable. */
export interface RegistryState {
  reachable: boolean;
  /** When the registry was last found unreachable (while `reachable` is false). */
  unreachableSince?: string;
  /** Where the served model came from: the registry's alias, or the cache's record of the last one served. */
  servedFrom: 'registry' | 'cache';
}

export interface ChampionHolderOptions {
  log?: (msg: string) => void;
  /** How a cached model folder becomes a predictor (default: the kind registry's loadModel). */
  load?: (dir: string) => Promise<Predictor>;
  /** Called after a replaced model was released (the server runs a full GC here). */
  afterRelease?: () => void;
  /** First wait before a version that failed to load is tried again; it doubles per failure, up to 30 min. */
  retryAfterMs?: number;
}

/** A version the alias names that could not be loaded: retried with back-off, not re-fetched on every poll. */
export interface FailingVersion {
  version: string;
  runId: string;
  error: string;
  attempts: number;
  retryAt: string;
}

const MAX_RETRY_MS = 30 * 60_000;

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
  registry: RegistryState = { reachable: true, servedFrom: 'registry' };
  /** The alias's version that failed to load, while it does (the server keeps the model it has). */
  failing: FailingVersion | undefined;
  private readonly retryAfterMs: number;

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
    this.retryAfterMs = opts.retryAfterMs ?? 30_000;
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

  private async modelOf(mv: ModelVersion, dir: string): Promise<ServedModel> {
    return {
      name: this.name,
      alias: this.alias,
      version: mv.version,
      runId: mv.run_id!,
      predictor: await this.load(dir),
      loadedAt: new Date().toISOString(),
    };
  }

  private async loadVersion(mv: ModelVersion): Promise<{ model: ServedModel; timing: string }> {
    const t0 = performance.now();
    const dir = await this.cache.fetch(mv);
    const t1 = performance.now();
    const model = await this.modelOf(mv, dir);
    const t2 = performance.now();
    this.cache.rememberServed(this.alias, mv);
    // Operators (and the replicas test) read where a slow swap spent its time.
    return { model, timing: `fetched in ${Math.round(t1 - t0)} ms, loaded in ${Math.round(t2 - t1)} ms` };
  }

  /**
   * The first load. With the registry unreachable (isTransient: no answer, or a retryable one), the last
   * version this cache served and still verifies is served instead; with no such copy, the error stands.
   */
  async start(): Promise<void> {
    try {
      await this.refresh();
    } catch (err) {
      // Only an unreachable registry: a model that fails to load, or an alias that is not set, stands.
      if (!isTransient(err) || this.current || this.registry.reachable) throw err;
      const last = this.cache.lastServed(this.name, this.alias);
      if ('problem' in last)
        throw new Error(`${(err as Error).message}; and no verified copy to start from (${last.problem})`);
      this.current = await this.modelOf(last.mv, last.dir);
      this.registry = { reachable: false, unreachableSince: new Date().toISOString(), servedFrom: 'cache' };
      this.log(
        `MLflow unreachable (${(err as Error).message}): serving ${this.name} version ${last.mv.version} ` +
          `(@${this.alias} when last served, run ${last.mv.run_id}) from the model cache; checking the registry again`,
      );
    }
  }

  /** Loads the alias's version if it differs from the one served; returns true when it swapped. */
  refresh(): Promise<boolean> {
    // One refresh at a time: a slow load and the next poll must not both load (and leak) a model.
    this.refreshing ??= this.refreshOnce().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async refreshOnce(): Promise<boolean> {
    let mv: ModelVersion | undefined;
    try {
      mv = await this.client.getModelVersionByAlias(this.name, this.alias);
    } catch (err) {
      if (isTransient(err) && this.registry.reachable)
        this.registry = { ...this.registry, reachable: false, unreachableSince: new Date().toISOString() };
      throw err;
    }
    if (!this.registry.reachable) {
      this.log(`MLflow is reachable again: following models:/${this.name}@${this.alias}`);
      this.registry = { reachable: true, servedFrom: this.registry.servedFrom };
    }
    if (!mv) {
      if (!this.current)
        throw new Error(
          `models:/${this.name}@${this.alias} is not set. Promote a model first (make promote RUN=... and set ` +
            `@${this.alias}).`,
        );
      return false;
    }
    // Same version and same run: nothing to do. A version number reused by a recreated registry has another run.
    if (this.current?.version === mv.version && this.current.runId === mv.run_id) {
      this.registry = { reachable: true, servedFrom: 'registry' }; // the cached start was the champion still
      this.failing = undefined; // the alias went back to the model being served
      return false;
    }
    const f = this.failing;
    const same = f?.version === mv.version && f.runId === mv.run_id;
    if (same && Date.now() < Date.parse(f.retryAt)) return false; // backing off: no fetch, no hash, no load
    let loaded: Awaited<ReturnType<ChampionHolder['loadVersion']>>;
    try {
      loaded = await this.loadVersion(mv);
    } catch (err) {
      const attempts = same ? f.attempts + 1 : 1;
      const wait = Math.min(this.retryAfterMs * 2 ** (attempts - 1), MAX_RETRY_MS);
      const error = (err as Error).message;
      this.failing = {
        version: mv.version,
        runId: mv.run_id!,
        error,
        attempts,
        retryAt: new Date(Date.now() + wait).toISOString(),
      };
      this.log(
        `${this.name} version ${mv.version} (@${this.alias}) failed to load (attempt ${attempts}): ${error}; ` +
          `${this.current ? `keeping version ${this.current.version}, ` : ''}next try in ${Math.round(wait / 1000)} s`,
      );
      throw err;
    }
    this.failing = undefined;
    const { model: next, timing } = loaded;
    const prev = this.current;
    this.current = next; // atomic swap: requests take `model` once, at their start
    this.registry = { reachable: true, servedFrom: 'registry' };
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
