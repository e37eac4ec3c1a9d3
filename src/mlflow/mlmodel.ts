/**
 * The MLmodel file: MLflow's description of a model directory (flavors, signature, input example),
 * which makes the UI show a logged folder as a model and lets the registry serve it. Ours carries
 * a `ts_bert` flavor for the TypeScript runtime (ONNX Runtime / tfjs), beside MLflow's metadata.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

export interface ColumnSpec {
  name?: string;
  type: 'string' | 'double' | 'float' | 'long' | 'integer' | 'boolean';
  required?: boolean;
}

export interface ModelSignature {
  inputs: ColumnSpec[];
  outputs: ColumnSpec[];
}

export interface MlmodelOptions {
  runId: string;
  artifactPath: string;
  /** Flavor name -> its configuration (e.g. files, runtime, label map location). */
  flavors: Record<string, Record<string, unknown>>;
  signature: ModelSignature;
  /** Rows of input, written as input_example.json in pandas "split" orientation. */
  inputExample?: Record<string, string | number | boolean>[];
  metadata?: Record<string, string>;
  modelUuid?: string;
  /** MLflow 3 logged model id (`models:/<id>`). */
  modelId?: string;
  now?: Date;
  /** MLflow version the model is logged with (the tracking server's); pyfunc loaders compare it with theirs. */
  mlflowVersion?: string;
}

const specJson = (cols: ColumnSpec[]): string =>
  JSON.stringify(
    cols.map((c) => ({ type: c.type, ...(c.name ? { name: c.name } : {}), required: c.required ?? true })),
  );

/** The MLmodel document as an object (pure). */
export function buildMlmodel(opts: MlmodelOptions): Record<string, unknown> {
  const now = opts.now ?? new Date();
  return {
    artifact_path: opts.artifactPath,
    flavors: opts.flavors,
    ...(opts.mlflowVersion ? { mlflow_version: opts.mlflowVersion } : {}),
    ...(opts.modelId ? { model_id: opts.modelId } : {}),
    model_uuid: opts.modelId ?? (opts.modelUuid ?? randomUUID()).replace(/-/g, ''),
    run_id: opts.runId,
    ...(opts.inputExample
      ? { saved_input_example_info: { artifact_path: 'input_example.json', type: 'dataframe', pandas_orient: 'split' } }
      : {}),
    signature: { inputs: specJson(opts.signature.inputs), outputs: specJson(opts.signature.outputs), params: null },
    utc_time_created: now.toISOString().replace('T', ' ').replace('Z', ''),
    ...(opts.metadata ? { metadata: opts.metadata } : {}),
  };
}

/** Writes MLmodel (and input_example.json) into `dir`. */
export function writeMlmodel(dir: string, opts: MlmodelOptions): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'MLmodel'), YAML.stringify(buildMlmodel(opts)));
  if (opts.inputExample) {
    const columns = Object.keys(opts.inputExample[0] ?? {});
    const data = opts.inputExample.map((row) => columns.map((c) => row[c]));
    fs.writeFileSync(path.join(dir, 'input_example.json'), JSON.stringify({ columns, data }));
  }
}

export function readMlmodel(dir: string): Record<string, unknown> {
  return YAML.parse(fs.readFileSync(path.join(dir, 'MLmodel'), 'utf8')) as Record<string, unknown>;
}
