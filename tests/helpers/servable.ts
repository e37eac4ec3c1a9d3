import path from 'node:path';
import { expect } from 'vitest';
import type { MlflowClient } from '../../src/mlflow';
import { loadModel, textPredictor, type Predictor } from '../../src/kinds';

/**
 * Downloads a run's logged model and checks that it serves through `flavor`: one probability row
 * per text, each summing to 1. Returns the local folder and the predictor for further checks.
 */
export async function expectServable(
  client: MlflowClient,
  runId: string,
  flavor: string,
  destDir: string,
): Promise<{ dir: string; predictor: Predictor }> {
  const dir = await client.downloadArtifacts(runId, 'model', path.resolve(destDir));
  const predictor = await loadModel(dir);
  expect(predictor.flavor).toBe(flavor);
  const probs = await textPredictor(predictor).predictProba([
    'my card was charged twice',
    'how do I verify my identity?',
  ]);
  expect(probs).toHaveLength(2 * predictor.labels.length);
  expect(Array.from(probs.subarray(0, predictor.labels.length)).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  return { dir, predictor };
}
