/**
 * What every part of the MLflow client shares: the options, the one transport (a keep-alive pool)
 * and the run -> artifact root cache. The client is a chain of layers, each adding one concern on
 * top of the ones below: tracking < journaled logging < artifacts < registry < MlflowClient.
 */
import { z } from 'zod';
import type { RunTag } from './schemas';
import { Transport, type TransportOptions } from './transport';

export interface MlflowClientOptions extends TransportOptions {
  trackingUri: string;
  /** Where undeliverable tracking calls are kept (default: mlflow/.journal under the cwd). */
  journalDir?: string;
  /** While a run has undelivered entries, how often logging tries to reach the server again. */
  reconnectIntervalMs?: number;
  /** Progress and warnings (default: stderr). */
  log?: (msg: string) => void;
}

// experiments/create and registered-models/create need no request id: names are unique, so a retried
// create answers RESOURCE_ALREADY_EXISTS, which getOrCreate* turn into a lookup.
export const Empty = z.object({}).passthrough();
/** Tag holding the client-made id of the request that created a run or model version (retry safety). */
export const REQUEST_ID_TAG = 'mlops.request_id';

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

/** Follows MLflow's page tokens until the last page (an empty token ends it). */
export async function paginate<T>(
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

export function toTags(tags: Record<string, string>): RunTag[] {
  return Object.entries(tags).map(([key, value]) => ({ key, value }));
}

/** The bottom layer: abstract, since only MlflowClient (the top of the chain) is meant to be built. */
export abstract class MlflowBase {
  readonly trackingUri: string;
  protected readonly http: Transport;
  protected readonly log: (msg: string) => void;
  /**
   * Proxy path of each run's artifact root. Here rather than in the artifact layer because the run
   * layers below it already hold the run (createRun, resumeRun) and save artifact calls a getRun.
   */
  protected readonly artifactRoots = new Map<string, string>();

  constructor(opts: MlflowClientOptions) {
    this.trackingUri = opts.trackingUri;
    this.http = new Transport(opts.trackingUri, {
      ...opts,
      headers: { ...authorizationHeader(process.env), ...opts.headers },
    });
    this.log = opts.log ?? ((m) => process.stderr.write(`[mlflow] ${m}\n`));
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}
