import path from 'node:path';
import { expect } from 'vitest';
import type { LoggedModel, MlflowClient } from '../../src/mlflow';
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
  const { dir } = await client.downloadModel(`runs:/${runId}/model`, path.resolve(destDir));
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

/** The MLflow 3 logged model a run produced (fails the test when it logged none). */
export async function loggedModelOf(client: MlflowClient, runId: string): Promise<LoggedModel> {
  const source = await client.runModelSource(await client.getRun(runId));
  const id = /^models:\/(m-[0-9a-f]+)$/.exec(source ?? '')?.[1];
  expect(id, `run ${runId} logged no MLflow 3 model (its model source is ${String(source)})`).toBeDefined();
  return client.getLoggedModel(id!);
}

/** Paths (relative to the model's root) of a run's logged-model files under `dir`, sorted. */
export async function loggedModelFiles(client: MlflowClient, runId: string, dir = ''): Promise<string[]> {
  const model = await loggedModelOf(client, runId);
  return (await client.listLoggedModelArtifacts(model.info.model_id, dir)).map((f) => f.path).sort();
}

/**
 * What the MLflow UI shows for a text training run: the task's train, validation and test splits as
 * dataset inputs, and a READY logged model linked to the run whose test scores name the test split.
 */
export async function expectNativeTrainingRun(client: MlflowClient, runId: string, task: string): Promise<void> {
  const run = await client.getRun(runId);
  const inputs = run.inputs.dataset_inputs.map((d) => ({
    name: d.dataset.name,
    context: d.tags.find((t) => t.key === 'mlflow.data.context')?.value,
  }));
  expect(inputs).toEqual(
    expect.arrayContaining(['train', 'validation', 'test'].map((s) => ({ name: `${task}-${s}`, context: s }))),
  );
  const model = await loggedModelOf(client, runId);
  expect(model.info).toMatchObject({ status: 'LOGGED_MODEL_READY', source_run_id: runId, name: 'model' });
  expect(run.outputs.model_outputs.map((o) => o.model_id)).toContain(model.info.model_id);
  const test = model.data.metrics.find((m) => m.key === 'test_macro_f1');
  expect(test).toMatchObject({ dataset_name: `${task}-test`, model_id: model.info.model_id });
  const testInput = run.inputs.dataset_inputs.find((d) => d.dataset.name === `${task}-test`);
  expect(test!.dataset_digest).toBe(testInput!.dataset.digest);
  // Held-out scores are scalars: one point each, not a series.
  for (const key of ['test_macro_f1', 'val_macro_f1'])
    expect((await client.getMetricHistory(runId, key)).length, key).toBe(1);
}
