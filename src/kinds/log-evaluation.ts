/**
 * What every text training run records about its data and its held-out scores, in MLflow 3's terms:
 * the three splits as dataset inputs, and the validation and test scores logged once, linked to the
 * logged model and to the split they were measured on.
 */
import { trainingInputs, splitDataset } from '../data/tracking';
import type { Example } from '../data/tasks';
import { evaluationMetrics, type Evaluation } from '../evaluate/metrics';
import type { ActiveRun } from '../mlflow/run-context';

export interface HeldOutSplits {
  train: readonly Example[];
  validation: readonly Example[];
  test: readonly Example[];
}

export const logTrainingInputs = (run: ActiveRun, task: string, data: HeldOutSplits): Promise<void> =>
  run.logInputs(trainingInputs(task, data));

export async function logHeldOutScores(
  run: ActiveRun,
  modelId: string,
  task: string,
  data: HeldOutSplits,
  scores: { validation: Evaluation; test: Evaluation },
): Promise<void> {
  await run.logEvaluation(
    modelId,
    evaluationMetrics(scores.validation, 'val_'),
    splitDataset(task, 'validation', data.validation),
  );
  await run.logEvaluation(modelId, evaluationMetrics(scores.test, 'test_'), splitDataset(task, 'test', data.test));
}
