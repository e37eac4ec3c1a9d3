/**
 * What every model kind declares: its run-param id, its MLmodel flavor, how a saved folder loads as a
 * Predictor (and is released) (the registry in ./index.ts), and how a challenger of that kind is
 * trained from a promoted run's logged hyper-parameters (./training.ts).
 */
import path from 'node:path';
import type { PreparedData } from '../data/prepare';
import type { AnyTaskSpec } from '../data/tasks';
import type { Evaluation } from '../evaluate/metrics';
import type { ActiveRun } from '../mlflow';
import type { ModelSignature } from '../mlflow/mlmodel';

/** Value of the `model` run param; also the `kind` recorded in a production config. */
export type KindId = 'tfidf-logreg' | 'frozen-encoder-logreg' | 'bert-finetune';

export interface Predictor {
  kind: KindId;
  flavor: string;
  labels: string[];
  /** Row-major [texts.length, labels.length]. */
  predictProba(texts: readonly string[]): Promise<Float32Array>;
  /** Frees native resources (ONNX Runtime sessions); the predictor must not be used after. */
  release(): Promise<void>;
}

export interface TrainPaths {
  /** Folder holding pretrained checkpoints by name (models/pretrained). */
  pretrained: string;
  /** Work folder for resumable fine-tuning checkpoints. */
  workDir: string;
}

/** Everything a kind needs to train a challenger from a promoted run's params, logged into `run`. */
export interface TrainRequest {
  spec: AnyTaskSpec;
  data: PreparedData;
  /** The promoted run's logged params (the recipe). */
  hyper: Record<string, string>;
  run: ActiveRun;
  paths: TrainPaths;
}

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
export function checkpointOf(req: TrainRequest): { name: string; dir: string } {
  const name = req.hyper.checkpoint;
  if (!name) throw new Error(`the promoted ${req.hyper.model ?? ''} run has no checkpoint param: cannot retrain it`);
  return { name, dir: path.join(req.paths.pretrained, name) };
}

/** The MLmodel signature every kind shares: a text in; the label and one probability per class out. */
export function classifierSignature(labels: readonly string[]): ModelSignature {
  return {
    inputs: [{ name: 'text', type: 'string' }],
    outputs: [{ name: 'label', type: 'string' }, ...labels.map((l) => ({ name: `p(${l})`, type: 'double' as const }))],
  };
}
