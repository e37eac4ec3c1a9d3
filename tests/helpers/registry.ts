import { loadConfig } from '../../src/config';
import { prepareTask } from '../../src/data/prepare';
import { TASKS, type TaskName } from '../../src/data/tasks';
import { DEFAULT_BASELINE } from '../../src/kinds/tfidf-logreg/model';
import { runBaseline } from '../../src/kinds/tfidf-logreg/train';
import { withRun, type MlflowClient, type ModelVersion } from '../../src/mlflow';

/**
 * Registered model `name` with one version per entry of `epochs`: a TF-IDF baseline of `task` trained
 * for that many epochs on a small subset, each logged by its own run (so each version has another run id).
 */
export async function registerBaselines(
  client: MlflowClient,
  name: string,
  task: TaskName,
  epochs: number[],
  maxPerSplit: number,
): Promise<ModelVersion[]> {
  const spec = TASKS[task];
  const p = prepareTask(spec, loadConfig().paths.dataRaw, { maxPerSplit });
  const data = { train: p.splits.train, validation: p.splits.validation, test: p.splits.test, labelMap: p.labelMap };
  await client.getOrCreateRegisteredModel(name);
  const versions: ModelVersion[] = [];
  for (const n of epochs) {
    const runId = await withRun(client, { experiment: name, runName: `baseline-${n}` }, async (run) => {
      const config = { ...DEFAULT_BASELINE, logreg: { ...DEFAULT_BASELINE.logreg, epochs: n } };
      await runBaseline(spec, data, config, run, { progress: false });
      return run.runId;
    });
    const source = (await client.runModelSource(await client.getRun(runId)))!;
    versions.push(await client.createModelVersion({ name, source, runId }));
  }
  return versions;
}
