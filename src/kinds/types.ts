/**
 * What every model kind declares: its run-param id, its MLmodel flavor, how a saved folder loads as a
 * Predictor (and is released) (the registry in ./index.ts), and how a challenger of that kind is
 * trained from a promoted run's logged hyper-parameters (./training.ts).
 */
import path from 'node:path';
import type { PreparedData } from '../data/prepare';
import type { ColumnDecl, FeatureRecord, TabularTaskSpec } from '../data/tabular-tasks';
import type { FeatureRow } from '../data/feature-table';
import type { LabelMap } from '../data/labels';
import type { AnyTaskSpec } from '../data/tasks';
import type { Evaluation } from '../evaluate/metrics';
import type { ActiveRun } from '../mlflow';
import type { ModelSignature } from '../mlflow/mlmodel';

/** Value of the `model` run param; also the `kind` recorded in a production config. */
export type KindId =
  'tfidf-logreg' | 'frozen-encoder-logreg' | 'bert-finetune' | 'tabular-onnx' | 'hybrid-frozen-logreg';

interface PredictorBase {
  kind: KindId;
  flavor: string;
  labels: string[];
  /** Frees native resources (ONNX Runtime sessions); the predictor must not be used after. */
  release(): Promise<void>;
}

/** What a text model computes before its softmax: out-of-scope scores need more than probabilities. */
export interface RawOutputs {
  /** Row-major [texts, labels]; softmax of a row gives the uncalibrated probabilities. */
  logits: Float32Array;
  /** The pooled encoder features the head reads, row-major [texts, dim] (absent for TF-IDF). */
  features?: { data: Float32Array; dim: number };
  /**
   * The same texts in the pretrained encoder's space (L2-normalised mean-pooled embeddings, [texts, dim]):
   * the second view the `mahalanobis+knn` out-of-scope score reads. Set by the scope, not by the model.
   */
  view?: { data: Float32Array; dim: number };
  /** The view's cosine similarity to the nearest bank row, when a served index computed it (else from `view`). */
  nearest?: Float64Array;
}

/** A model that scores texts (the conversation kinds). */
export interface TextPredictor extends PredictorBase {
  input: 'text';
  /** Row-major [texts.length, labels.length]; calibrated when the model folder has a scope.json. */
  predictProba(texts: readonly string[]): Promise<Float32Array>;
  /** Logits and pooled features, uncalibrated. */
  predictRaw(texts: readonly string[]): Promise<RawOutputs>;
  /** The out-of-scope rule saved with the model (scope.json), when it has one. */
  scope?: Scope;
}

/** One input column's share of a prediction: how much p(positive) drops when it takes its typical value. */
export interface Attribution {
  column: string;
  value: string | number;
  /** Typical training value it was replaced with. */
  reference: string | number;
  /** p(positive) with the actual value minus p(positive) with the reference: > 0 pushed towards positive. */
  effect: number;
}

/** A model that scores records of named feature columns (the tabular kinds). */
export interface RecordPredictor extends PredictorBase {
  input: 'record';
  /** The input columns, as the model was trained on them (the serving schema). */
  columns: readonly ColumnDecl[];
  positiveLabel: string;
  /** The column that identifies a row (a customer id): echoed and logged when a request sends it, never a feature. */
  idColumn?: string;
  /** Validates one input row; issues name the column. */
  parseRecord(value: unknown): { record: FeatureRecord } | { issues: { path: string; message: string }[] };
  /** Row-major [records.length, labels.length]. */
  predictProba(records: readonly FeatureRecord[]): Promise<Float32Array>;
  /** Per record, the columns by |effect| (largest first). */
  explain(records: readonly FeatureRecord[]): Promise<Attribution[][]>;
}

export type Predictor = TextPredictor | RecordPredictor;

export class InputKindError extends Error {
  override name = 'InputKindError';
}

/** The predictor as a text model, or a clear error for a model that takes records. */
export function textPredictor(p: Predictor): TextPredictor {
  if (p.input !== 'text') throw new InputKindError(`a ${p.kind} model scores records of feature columns, not texts`);
  return p;
}

export interface TrainPaths {
  /** Folder holding pretrained checkpoints by name (models/pretrained). */
  pretrained: string;
  /** Work folder for resumable fine-tuning checkpoints. */
  workDir: string;
  /** The venv's Python, for the tabular learners (default: the project's). */
  python?: string;
}

interface TrainRequestBase {
  /** The promoted run's logged params (the recipe). */
  hyper: Record<string, string>;
  run: ActiveRun;
  paths: TrainPaths;
}

/** Everything a text kind needs to train a challenger from a promoted run's params, logged into `run`. */
export interface TextTrainRequest extends TrainRequestBase {
  input: 'text';
  spec: AnyTaskSpec;
  data: PreparedData;
}

/** A tabular kind's: the task and its feature table (training checks the table's digest). */
export interface TabularTrainRequest extends TrainRequestBase {
  input: 'record';
  tabular: { spec: TabularTaskSpec; data: TabularData; tableFile: string };
}

export type TrainRequest = TextTrainRequest | TabularTrainRequest;

export interface ModelKind {
  id: KindId;
  flavor: string;
  description: string;
  /** Loads a folder written by the kind's save (its MLmodel flavor entry given). */
  load(dir: string, flavorConfig: Record<string, unknown>): Promise<Predictor>;
}

/** Trains and logs a model of a kind from a promoted run's params (see ./training.ts). */
export type Trainer = (req: TrainRequest) => Promise<{ test: Evaluation }>;

/** The pretrained checkpoint a promoted run was trained from (its `checkpoint` param). */
/** A logged param read back as a number (a run's params are strings), or `fallback` when absent or not numeric. */
export function loggedNumber(params: Readonly<Record<string, string>>, key: string, fallback: number): number {
  const v = params[key];
  return v !== undefined && Number.isFinite(Number(v)) ? Number(v) : fallback;
}

export function checkpointOf(req: TextTrainRequest): { name: string; dir: string } {
  const name = req.hyper.checkpoint;
  if (!name) throw new Error(`the promoted ${req.hyper.model ?? ''} run has no checkpoint param: cannot retrain it`);
  return { name, dir: path.join(req.paths.pretrained, name) };
}

/**
 * The MLmodel signature every kind shares: a text in; out the label (the fallback label when out of
 * scope), the top label, its calibrated probability, whether the text is in scope, and one
 * probability per class.
 */
export function classifierSignature(labels: readonly string[]): ModelSignature {
  return {
    inputs: [{ name: 'text', type: 'string' }],
    outputs: [
      { name: 'label', type: 'string' },
      { name: 'top_label', type: 'string' },
      { name: 'confidence', type: 'double' },
      { name: 'in_scope', type: 'boolean' },
      ...labels.map((l) => ({ name: `p(${l})`, type: 'double' as const })),
    ],
  };
}

/** A tabular task's feature rows, as the tabular kinds train on them. */
export interface TabularData {
  rows: readonly FeatureRow[];
  labelMap: LabelMap;
  /** Digest of the feature table the rows come from. */
  digest: string;
}

export const SCOPE_SCORES = ['msp', 'energy', 'mahalanobis', 'mahalanobis+knn', 'none'] as const;
export type ScopeScore = (typeof SCOPE_SCORES)[number];

/** Per text: calibrated probabilities (row-major) and the in-scope score. */
export interface ScopeVerdicts {
  probs: Float32Array;
  scores: Float64Array;
}

/** A served model's out-of-scope rule, with the deployment's overrides applied. */
export interface Scope {
  score: ScopeScore;
  temperature: number;
  threshold: number;
  /** The threshold saved with the model (differs from `threshold` when a deployment overrides it). */
  modelThreshold: number;
  recall: number;
  fallbackLabel: string;
  judge(texts: readonly string[]): Promise<ScopeVerdicts>;
}
