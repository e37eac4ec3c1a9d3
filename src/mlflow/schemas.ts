/**
 * MLflow REST 2.0 entities as zod schemas: every response is parsed at the boundary, so callers
 * get typed objects (numbers as numbers, missing lists as empty lists) instead of raw JSON.
 */
import { z } from 'zod';

/** MLflow serialises int64 fields (timestamps, steps) as strings in some responses. */
const int64 = z.union([z.number(), z.string()]).transform((v) => Number(v));

export const MetricSchema = z.object({
  key: z.string(),
  value: z.union([z.number(), z.string()]).transform((v) => Number(v)),
  timestamp: int64,
  step: int64.default(0),
  model_id: z.string().optional(),
  dataset_name: z.string().optional(),
  dataset_digest: z.string().optional(),
});
/**
 * A metric point. `model_id` links it to an MLflow 3 logged model (its Models tab), `dataset_*` to the
 * dataset it was measured on.
 */
export type Metric = {
  key: string;
  value: number;
  timestamp: number;
  step: number;
  model_id?: string;
  dataset_name?: string;
  dataset_digest?: string;
};

export const ParamSchema = z.object({ key: z.string(), value: z.string().default('') });
export type Param = { key: string; value: string };

export const TagSchema = z.object({ key: z.string(), value: z.string().default('') });
export type RunTag = { key: string; value: string };

export const RunStatus = z.enum(['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED']);
export type RunStatus = z.infer<typeof RunStatus>;

export const ExperimentSchema = z.object({
  experiment_id: z.string(),
  name: z.string(),
  artifact_location: z.string().optional(),
  lifecycle_stage: z.string().optional(),
  tags: z.array(TagSchema).default([]),
});
export type Experiment = z.infer<typeof ExperimentSchema>;

export const RunInfoSchema = z.object({
  run_id: z.string(),
  run_name: z.string().optional(),
  experiment_id: z.string(),
  status: RunStatus,
  start_time: int64.optional(),
  end_time: int64.optional(),
  artifact_uri: z.string(),
  lifecycle_stage: z.string().optional(),
  user_id: z.string().optional(),
});

export const DatasetSchema = z.object({
  name: z.string(),
  digest: z.string(),
  source_type: z.string(),
  source: z.string(),
  schema: z.string().optional(),
  profile: z.string().optional(),
});
export type Dataset = z.infer<typeof DatasetSchema>;

export const RunSchema = z.object({
  info: RunInfoSchema,
  data: z
    .object({
      metrics: z.array(MetricSchema).default([]),
      params: z.array(ParamSchema).default([]),
      tags: z.array(TagSchema).default([]),
    })
    .default({ metrics: [], params: [], tags: [] }),
  inputs: z
    .object({
      dataset_inputs: z.array(z.object({ tags: z.array(TagSchema).default([]), dataset: DatasetSchema })).default([]),
    })
    .default({ dataset_inputs: [] }),
  /** MLflow 3: the logged models a run produced, with the step each was logged at. */
  outputs: z
    .object({
      model_outputs: z.array(z.object({ model_id: z.string(), step: int64.default(0) })).default([]),
    })
    .default({ model_outputs: [] }),
});
export type Run = z.infer<typeof RunSchema>;

export const LoggedModelStatus = z.enum([
  'LOGGED_MODEL_STATUS_UNSPECIFIED',
  'LOGGED_MODEL_PENDING',
  'LOGGED_MODEL_READY',
  'LOGGED_MODEL_UPLOAD_FAILED',
]);

/** An MLflow 3 logged model: its own entity (Models tab), artifacts, params and linked metrics. */
export const LoggedModelSchema = z.object({
  info: z.object({
    model_id: z.string(),
    experiment_id: z.string(),
    name: z.string(),
    artifact_uri: z.string(),
    status: LoggedModelStatus.default('LOGGED_MODEL_STATUS_UNSPECIFIED'),
    model_type: z.string().optional(),
    source_run_id: z.string().optional(),
    creation_timestamp_ms: int64.optional(),
    tags: z.array(TagSchema).default([]),
  }),
  data: z
    .object({
      params: z.array(ParamSchema).default([]),
      metrics: z.array(MetricSchema).default([]),
    })
    .default({ params: [], metrics: [] }),
});
export type LoggedModel = z.infer<typeof LoggedModelSchema>;

export const FileInfoSchema = z.object({
  path: z.string(),
  is_dir: z.boolean().default(false),
  file_size: int64.optional(),
});
export type FileInfo = z.infer<typeof FileInfoSchema>;

export const ModelVersionStatus = z.enum(['PENDING_REGISTRATION', 'FAILED_REGISTRATION', 'READY']);

export const ModelVersionSchema = z.object({
  name: z.string(),
  version: z.string(),
  creation_timestamp: int64.optional(),
  last_updated_timestamp: int64.optional(),
  current_stage: z.string().optional(),
  description: z.string().optional(),
  source: z.string(),
  run_id: z.string().optional(),
  /** MLflow 3: the logged model this version registers. */
  model_id: z.string().optional(),
  status: ModelVersionStatus.default('READY'),
  status_message: z.string().optional(),
  tags: z.array(TagSchema).default([]),
  aliases: z.array(z.string()).default([]),
});
export type ModelVersion = z.infer<typeof ModelVersionSchema>;

export const RegisteredModelSchema = z.object({
  name: z.string(),
  creation_timestamp: int64.optional(),
  last_updated_timestamp: int64.optional(),
  description: z.string().optional(),
  latest_versions: z.array(ModelVersionSchema).default([]),
  tags: z.array(TagSchema).default([]),
  aliases: z.array(z.object({ alias: z.string(), version: z.string() })).default([]),
});
export type RegisteredModel = z.infer<typeof RegisteredModelSchema>;

export const ErrorBodySchema = z.object({ error_code: z.string().default('UNKNOWN'), message: z.string().default('') });
