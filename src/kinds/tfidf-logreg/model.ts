/**
 * The baseline every model must beat: TF-IDF + multinomial logistic regression. Pure training and
 * evaluation; saving writes a self-describing model folder (weights, vocabulary, label map).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LabelMap } from '../../data/labels';
import { encodeLabels } from '../../data/labels';
import type { Example } from '../../data/tasks';
import { crossEntropy, evaluate, type Evaluation } from '../../evaluate/metrics';
import {
  argmaxRows,
  logRegFromJson,
  logRegToJson,
  logRegEpochs,
  predictLogits,
  predictProba,
  softmaxRows,
  type EpochLog,
  type LogRegState,
} from '../../estimators/logreg';
import type { TextPredictor } from '../types';
import { fitTfidf, TfidfVectorizer, type SparseVector, type TfidfState } from '../../estimators/tfidf';
import { DEFAULT_BASELINE, type BaselineConfig } from './recipe';

// The recipe (defaults, candidates) is authored in notebooks/03_experiments.ipynb and promoted to ./recipe.ts.
export { baselineCandidates, DEFAULT_BASELINE, type BaselineConfig } from './recipe';

export interface BaselineModel {
  kind: 'tfidf-logreg';
  labelMap: LabelMap;
  tfidf: TfidfState;
  logreg: LogRegState;
}

/** An epoch of training, with the validation loss when a validation set was given. */
export type BaselineEpoch = Omit<EpochLog, 'model'> & { valLoss?: number };

export function trainBaseline(
  train: readonly Example[],
  labelMap: LabelMap,
  classWeights: number[],
  cfg: BaselineConfig = DEFAULT_BASELINE,
  onEpoch?: (e: BaselineEpoch) => void,
  validation?: readonly Example[],
): BaselineModel {
  const epochs = baselineEpochs(train, labelMap, classWeights, cfg, validation);
  for (;;) {
    const r = epochs.next();
    if (r.done === true) return r.value;
    const { valProbs: _probs, ...e } = r.value;
    onEpoch?.(e);
  }
}

/** Vectorised splits for one vectoriser config, reusable across trainings (hyper-parameter trials). */
export type FeatureCache = Map<string, { tfidf: TfidfState; xs: SparseVector[]; valXs?: SparseVector[] }>;

/**
 * The same training one epoch per `next()` (with the validation probabilities when a validation set
 * is given), so a caller can stop early or await a pruner between epochs. `cache` keeps the fitted
 * vectoriser and transformed texts per vectoriser config.
 */
export function* baselineEpochs(
  train: readonly Example[],
  labelMap: LabelMap,
  classWeights: number[],
  cfg: BaselineConfig = DEFAULT_BASELINE,
  validation?: readonly Example[],
  cache?: FeatureCache,
): Generator<BaselineEpoch & { valProbs?: Float32Array }, BaselineModel, void> {
  const key = `${JSON.stringify(cfg.tfidf)}|${validation ? 'val' : ''}`;
  let features = cache?.get(key);
  if (!features) {
    const tfidf = fitTfidf(
      train.map((e) => e.text),
      cfg.tfidf,
    );
    const vec = new TfidfVectorizer(tfidf);
    features = {
      tfidf,
      xs: train.map((e) => vec.transform(e.text)),
      valXs: validation?.map((e) => vec.transform(e.text)),
    };
    cache?.set(key, features);
  }
  const { tfidf, xs, valXs } = features;
  const ys = encodeLabels(
    train.map((e) => e.label),
    labelMap,
  );
  const weights = cfg.useClassWeights ? classWeights : undefined;
  const valYs = validation
    ? encodeLabels(
        validation.map((e) => e.label),
        labelMap,
      )
    : undefined;
  const k = labelMap.labels.length;
  const epochs = logRegEpochs(xs, ys, tfidf.vocabulary.length, k, { ...cfg.logreg, classWeights: weights });
  for (;;) {
    const r = epochs.next();
    if (r.done === true) return { kind: 'tfidf-logreg', labelMap, tfidf, logreg: r.value };
    const e = r.value;
    const valProbs = valXs ? predictProba(e.model, valXs) : undefined;
    yield {
      epoch: e.epoch,
      loss: e.loss,
      // Same class weights as the training loss, so the two curves compare.
      ...(valProbs && valYs ? { valLoss: crossEntropy(valProbs, valYs, k, weights), valProbs } : {}),
    };
  }
}

export function predictBaseline(
  model: BaselineModel,
  texts: readonly string[],
): { probs: Float32Array; predictions: number[] } {
  const vec = new TfidfVectorizer(model.tfidf);
  const probs = predictProba(
    model.logreg,
    texts.map((t) => vec.transform(t)),
  );
  return { probs, predictions: argmaxRows(probs, model.labelMap.labels.length) };
}

export function evaluateBaseline(
  model: BaselineModel,
  examples: readonly Example[],
  positiveLabel?: string,
): Evaluation & { probs: Float32Array; predictions: number[] } {
  const { probs, predictions } = predictBaseline(
    model,
    examples.map((e) => e.text),
  );
  const yTrue = encodeLabels(
    examples.map((e) => e.label),
    model.labelMap,
  );
  const pos = positiveLabel !== undefined ? model.labelMap.label2id[positiveLabel] : undefined;
  return { ...evaluate(yTrue, predictions, model.labelMap.labels, probs, pos), probs, predictions };
}

/** Writes model.json (weights as base64 float32) and label_map.json into `dir`. */
export function saveBaseline(model: BaselineModel, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'model.json'),
    JSON.stringify({ kind: model.kind, tfidf: model.tfidf, logreg: logRegToJson(model.logreg) }),
  );
  fs.writeFileSync(path.join(dir, 'label_map.json'), `${JSON.stringify(model.labelMap, null, 2)}\n`);
}

export function loadBaseline(dir: string): BaselineModel {
  const raw = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  return {
    kind: 'tfidf-logreg',
    labelMap: JSON.parse(fs.readFileSync(path.join(dir, 'label_map.json'), 'utf8')),
    tfidf: raw.tfidf,
    logreg: logRegFromJson(raw.logreg),
  };
}

export const TFIDF_FLAVOR = 'ts_tfidf_logreg';

export async function loadTfidfPredictor(dir: string): Promise<TextPredictor> {
  const model = loadBaseline(dir);
  const vec = new TfidfVectorizer(model.tfidf);
  const predictRaw = async (texts: readonly string[]) => ({
    logits: predictLogits(
      model.logreg,
      texts.map((t) => vec.transform(t)),
    ),
  });
  const k = model.labelMap.labels.length;
  return {
    input: 'text',
    kind: 'tfidf-logreg',
    flavor: TFIDF_FLAVOR,
    labels: model.labelMap.labels,
    predictProba: async (texts) => softmaxRows((await predictRaw(texts)).logits, k),
    predictRaw,
    release: async () => {},
  };
}
