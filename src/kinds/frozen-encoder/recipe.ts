// AUTO-GENERATED from notebooks/03_experiments.ipynb - edit the notebook, then run `make promote`.
// Checked by `make promote-check`: hand edits to this file are reported.

// cell exp-r2
import { encodeLabels, type LabelMap } from '../../data/labels';
import type { Example } from '../../data/tasks';
import { DEFAULT_LOGREG, trainLogReg } from '../../estimators/logreg';
import { dense, type FrozenEncoderModel } from './model';

/**
 * The frozen-encoder head: mean-pooled, L2-normalised embeddings of the pretrained encoder, then a
 * logistic regression trained without weight decay (the embeddings are already normalised).
 */
export const FROZEN_HEAD = { maxLength: 64, epochs: 40, learningRate: 0.01, l2: 0, pooling: 'mean' as const };

/** Fits the head on embeddings of the training texts (class weights optional). */
export function trainFrozenHead(
  embeddings: Float32Array[],
  train: readonly Example[],
  labelMap: LabelMap,
  classWeights: number[] | undefined,
  opts = { ...DEFAULT_LOGREG, epochs: FROZEN_HEAD.epochs, learningRate: FROZEN_HEAD.learningRate, l2: FROZEN_HEAD.l2 },
): FrozenEncoderModel {
  const ys = encodeLabels(
    train.map((e) => e.label),
    labelMap,
  );
  const logreg = trainLogReg(embeddings.map(dense), ys, embeddings[0]!.length, labelMap.labels.length, {
    ...opts,
    classWeights,
  });
  return { kind: 'frozen-encoder-logreg', labelMap, logreg };
}
