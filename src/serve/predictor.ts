/**
 * The serving seam: a Predictor turns texts into class probabilities, whatever the model kind.
 * `loadPredictor` reads a model folder's MLmodel and picks the loader for its flavor, so new model
 * kinds plug in here without touching the server.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { loadBaseline, predictBaseline } from '../train/baseline';
import { loadFrozenModel } from '../train/frozen-encoder';
import { loadBertModel } from '../train/bert-run';

export interface Predictor {
  labels: string[];
  /** Row-major [texts.length, labels.length]. */
  predictProba(texts: readonly string[]): Promise<Float32Array>;
  flavor: string;
}

type Loader = (dir: string, flavorConfig: Record<string, unknown>) => Promise<Predictor>;

const LOADERS: Record<string, Loader> = {
  ts_tfidf_logreg: async (dir) => {
    const model = loadBaseline(dir);
    return { labels: model.labelMap.labels, flavor: 'ts_tfidf_logreg', predictProba: async (texts) => predictBaseline(model, texts).probs };
  },
  ts_frozen_encoder: async (dir) => {
    const m = await loadFrozenModel(dir);
    return { labels: m.labels, flavor: 'ts_frozen_encoder', predictProba: m.predictProba };
  },
  // Fine-tuned BERT: the ONNX graph the run chose (int8 when its measured accuracy loss was small enough).
  ts_bert: async (dir, flavor) => {
    const m = await loadBertModel(dir, typeof flavor.onnx === 'string' ? flavor.onnx : 'model.onnx');
    return { labels: m.labels, flavor: 'ts_bert', predictProba: m.predictProba };
  },
};

export function registerFlavor(name: string, loader: Loader): void {
  LOADERS[name] = loader;
}

export async function loadPredictor(dir: string): Promise<Predictor> {
  const mlmodelPath = path.join(dir, 'MLmodel');
  if (!fs.existsSync(mlmodelPath)) throw new Error(`${dir} is not a model folder (no MLmodel file)`);
  const mlmodel = YAML.parse(fs.readFileSync(mlmodelPath, 'utf8')) as { flavors?: Record<string, Record<string, unknown>> };
  const flavors = Object.keys(mlmodel.flavors ?? {});
  const flavor = flavors.find((f) => LOADERS[f]);
  if (!flavor) throw new Error(`No loader for the model's flavors (${flavors.join(', ') || 'none'}); known: ${Object.keys(LOADERS).join(', ')}`);
  return LOADERS[flavor]!(dir, mlmodel.flavors![flavor]!);
}
