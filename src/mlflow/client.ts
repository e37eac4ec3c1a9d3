/**
 * Typed MLflow client over REST 2.0: tracking, dataset inputs, artifacts through the server's
 * proxy, and the model registry with aliases. Logging never loses data: when the server cannot
 * be reached, metrics/params/tags/status go to a local journal and are replayed in order later.
 *
 * MlflowClient is the one public entry point. Its methods come from a chain of layers, one per
 * concern and each in its own module, sharing one transport (base.ts): tracking.ts (experiments,
 * runs, search) < logging.ts (journaled metrics/params/tags/status) < artifacts.ts (artifacts,
 * logged models) < registry.ts (registered models, versions, aliases). A chain rather than
 * per-concern objects, so every method is declared (and documented) once and calls between
 * concerns (registry -> artifacts -> tracking) stay plain `this` calls.
 */
import type { MlflowClientOptions } from './base';
import { RegistryClient } from './registry';

export { authorizationHeader, proxiedArtifactPath, REQUEST_ID_TAG, type MlflowClientOptions } from './base';
export type { DatasetInput } from './tracking';
export type { LogResult, MetricLink } from './logging';

export class MlflowClient extends RegistryClient {
  /** A client for MLFLOW_TRACKING_URI (default http://127.0.0.1:5000). */
  static fromEnv(overrides: Partial<MlflowClientOptions> = {}): MlflowClient {
    return new MlflowClient({
      trackingUri: process.env.MLFLOW_TRACKING_URI ?? `http://127.0.0.1:${process.env.MLFLOW_PORT ?? 5000}`,
      ...overrides,
    });
  }
}
