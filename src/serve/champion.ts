/**
 * Keeps the served model in step with the registry: resolves `models:/<task>@<alias>`, downloads a
 * version once into a cache keyed by version, and swaps it in when the alias moves. In-flight
 * requests finish on the model they started with; no request is dropped by a reload.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { MlflowClient, ModelVersion } from '../mlflow';
import { loadPredictor, type Predictor } from './predictor';

/**
 * The folder of registered model `name` version `version` in the local cache, downloaded once.
 * The download is staged beside its final place and renamed in, so a crash never leaves half a model.
 */
export async function cachedModelVersion(client: MlflowClient, name: string, version: string, cacheDir: string): Promise<string> {
  const dir = path.join(cacheDir, name, version);
  if (fs.existsSync(path.join(dir, 'MLmodel'))) return dir;
  const staging = `${dir}.partial-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  const { dir: downloaded } = await client.downloadModel(`models:/${name}/${version}`, staging);
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  fs.renameSync(downloaded, dir);
  fs.rmSync(staging, { recursive: true, force: true });
  return dir;
}

export interface ServedModel {
  name: string;
  alias: string;
  version: string;
  runId?: string;
  predictor: Predictor;
  loadedAt: string;
}

export class ChampionHolder {
  private current: ServedModel | undefined;
  private timer: NodeJS.Timeout | undefined;
  reloads = 0;

  constructor(
    private readonly client: MlflowClient,
    readonly name: string,
    readonly alias: string,
    private readonly cacheDir: string,
    private readonly log: (msg: string) => void = () => {},
  ) {}

  get model(): ServedModel {
    if (!this.current) throw new Error('no model loaded yet');
    return this.current;
  }

  get loaded(): boolean {
    return this.current !== undefined;
  }

  private async load(mv: ModelVersion): Promise<ServedModel> {
    const dir = await cachedModelVersion(this.client, this.name, mv.version, this.cacheDir);
    return { name: this.name, alias: this.alias, version: mv.version, runId: mv.run_id, predictor: await loadPredictor(dir), loadedAt: new Date().toISOString() };
  }

  /** Loads the alias's version if it differs from the one served; returns true when it swapped. */
  async refresh(): Promise<boolean> {
    const mv = await this.client.getModelVersionByAlias(this.name, this.alias);
    if (!mv) {
      if (!this.current) throw new Error(`models:/${this.name}@${this.alias} is not set. Promote a model first (make promote RUN=... and set @${this.alias}).`);
      return false;
    }
    if (this.current?.version === mv.version) return false;
    const next = await this.load(mv);
    const prev = this.current?.version;
    this.current = next; // atomic swap: requests read `model` once at their start
    if (prev !== undefined) this.reloads++;
    this.log(prev === undefined ? `serving ${this.name} version ${mv.version} (@${this.alias})` : `@${this.alias} moved: ${this.name} version ${prev} -> ${mv.version}`);
    return true;
  }

  /** Polls the registry; errors (server briefly down) keep the current model. */
  watch(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.refresh().catch((err: Error) => this.log(`alias check failed, keeping version ${this.current?.version}: ${err.message}`));
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
