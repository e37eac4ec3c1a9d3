/**
 * The one registry of model kinds. Retrain, serve, promote and reports find a kind here, by its
 * run-param id or by its MLmodel flavor, and nowhere else. Loading a model goes through
 * `loadModel(dir)`, which reads the MLmodel contract and picks the kind's loader. Each kind's
 * training is in its train.ts, reached through ./training.ts, which this file does not import: a
 * serving process never loads training code.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { BERT_FLAVOR, loadBertPredictor } from './bert/model';
import { FROZEN_FLAVOR, loadFrozenPredictor } from './frozen-encoder/model';
import { HYBRID_FLAVOR, loadHybridPredictor } from './hybrid/model';
import { loadTabularPredictor, TABULAR_FLAVOR } from './tabular/model';
import { loadTfidfPredictor, TFIDF_FLAVOR } from './tfidf-logreg/model';
import { readScope, withScope, type ScopeOverrides } from './scope/rule';
import { loadScopeView } from './scope/view';
import type { KindId, ModelKind, Predictor } from './types';

export type {
  Attribution,
  KindId,
  ModelKind,
  Predictor,
  RecordPredictor,
  TextPredictor,
  TrainPaths,
  TabularTrainRequest,
  TextTrainRequest,
  TrainRequest,
} from './types';
export { InputKindError, textPredictor } from './types';
export type { ScopeOverrides } from './scope/rule';
export type { Scope } from './types';

export const MODEL_KINDS: Readonly<Record<KindId, ModelKind>> = Object.freeze({
  'tfidf-logreg': {
    id: 'tfidf-logreg',
    flavor: TFIDF_FLAVOR,
    description: 'TF-IDF n-grams + multinomial logistic regression',
    load: loadTfidfPredictor,
  },
  'frozen-encoder-logreg': {
    id: 'frozen-encoder-logreg',
    flavor: FROZEN_FLAVOR,
    description: 'frozen pretrained encoder (ONNX Runtime) + logistic-regression head',
    load: loadFrozenPredictor,
  },
  'bert-finetune': {
    id: 'bert-finetune',
    flavor: BERT_FLAVOR,
    description: 'fine-tuned BERT-family encoder + classification head (ONNX graphs)',
    load: loadBertPredictor,
  },
  'tabular-onnx': {
    id: 'tabular-onnx',
    flavor: TABULAR_FLAVOR,
    description: 'promoted feature transform + logistic regression, random forest or LightGBM, as ONNX',
    load: loadTabularPredictor,
  },
  'hybrid-frozen-logreg': {
    id: 'hybrid-frozen-logreg',
    flavor: HYBRID_FLAVOR,
    description: 'frozen encoder embedding of the conversation + account features, one logistic-regression head',
    load: loadHybridPredictor,
  },
});

const KNOWN = Object.keys(MODEL_KINDS).join(', ');

export class UnknownKindError extends Error {
  override name = 'UnknownKindError';
}

/** The kind a run's `model` param names; an unknown one is an error, never a silent default. */
export function kindById(id: string | undefined): ModelKind {
  const kind = id !== undefined ? MODEL_KINDS[id as KindId] : undefined;
  if (!kind) throw new UnknownKindError(`unknown model kind "${id ?? '(none)'}" (known: ${KNOWN})`);
  return kind;
}

/** The kind whose flavor a model's MLmodel lists. */
export function kindOfFlavors(flavors: readonly string[]): ModelKind {
  const kind = Object.values(MODEL_KINDS).find((k) => flavors.includes(k.flavor));
  if (!kind)
    throw new UnknownKindError(
      `no model kind serves the flavors ${flavors.join(', ') || '(none)'} (known flavors: ${Object.values(MODEL_KINDS)
        .map((k) => k.flavor)
        .join(', ')})`,
    );
  return kind;
}

export interface ModelFolder {
  kind: ModelKind;
  runId: string | undefined;
  flavorConfig: Record<string, unknown>;
}

/** Reads a model folder's MLmodel: which kind it is and which run logged it. */
export function readModelFolder(dir: string): ModelFolder {
  const file = path.join(dir, 'MLmodel');
  if (!fs.existsSync(file)) throw new Error(`${dir} is not a model folder (no MLmodel file)`);
  const mlmodel = YAML.parse(fs.readFileSync(file, 'utf8')) as {
    run_id?: string;
    flavors?: Record<string, Record<string, unknown>>;
  };
  const kind = kindOfFlavors(Object.keys(mlmodel.flavors ?? {}));
  return { kind, runId: mlmodel.run_id, flavorConfig: mlmodel.flavors![kind.flavor] ?? {} };
}

/**
 * Loads any model folder this project saved, through its kind's loader. A text model saved with a
 * scope.json serves calibrated probabilities and carries its out-of-scope rule (`overrides` are a
 * deployment's own threshold or fallback label).
 */
export async function loadModel(dir: string, overrides?: ScopeOverrides): Promise<Predictor> {
  const { kind, flavorConfig } = readModelFolder(dir);
  const p = await kind.load(dir, flavorConfig);
  const scope = p.input === 'text' ? readScope(dir) : undefined;
  if (p.input !== 'text' || !scope) return p;
  try {
    return withScope(p, scope, overrides, await loadScopeView(dir, scope));
  } catch (e) {
    await p.release();
    throw e;
  }
}
