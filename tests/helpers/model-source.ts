import type { Predictor } from '../../src/kinds';
import type { ModelSource } from '../../src/serve/champion';

/** A server's model source that always serves `predictor` as version 1 of `name` (no registry behind it). */
export function fixedModelSource(name: string, predictor: Predictor): ModelSource {
  const served = {
    name,
    alias: 'champion',
    version: '1',
    runId: 'r'.repeat(32),
    predictor,
    loadedAt: new Date().toISOString(),
  };
  return {
    name,
    alias: 'champion',
    loaded: true,
    reloads: 0,
    releases: 0,
    draining: 0,
    model: served,
    use: (fn) => fn(served),
    registry: { reachable: true, servedFrom: 'registry' },
    failing: undefined,
  };
}
