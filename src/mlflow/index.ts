/** Public API of the MLflow client: `import { MlflowClient, withRun } from './src/mlflow'`. */
export {
  MlflowClient,
  proxiedArtifactPath,
  type MlflowClientOptions,
  type LogResult,
  type DatasetInput,
} from './client';
export {
  withRun,
  openRun,
  closeRun,
  ActiveRun,
  systemTags,
  dataExperiment,
  experimentNote,
  type RunOptions,
} from './run-context';
export { MlflowApiError, MlflowUnavailableError, MlflowValidationError, isTransient } from './errors';
export { RunJournal } from './journal';
export { LIMITS, splitBatch, validateBatch } from './validation';
export { buildMlmodel, writeMlmodel, readMlmodel, type ModelSignature } from './mlmodel';
export type {
  Run,
  Experiment,
  Metric,
  Param,
  RunTag,
  ModelVersion,
  RegisteredModel,
  LoggedModel,
  Dataset,
  FileInfo,
  RunStatus,
} from './schemas';
