// AUTO-GENERATED from notebooks/03_experiments.ipynb - edit the notebook, then run `make promote`.
// Checked by `make promote-check`: hand edits to this file are reported.

// cell exp-r2
import { encodeLabels, type LabelMap } from '../../data/labels';
import type { Example } from '../../data/tasks';
import { DEFAULT_LOGREG, type EpochLog, type LogRegOptions } from '../../estimators/logreg';
import { denseLogRegEpochs } from '../../estimators/logreg-dense';
import type { FrozenEncoderModel } from './model';

/**
 * The frozen-encoder head: mean-pooled, L2-normalised embeddings of the pretrained encoder, then a
 * logistic regression trained without weight decay (the embeddings are already normalised).
 */
export const FROZEN_HEAD = { maxLength: 64, epochs: 40, learningRate: 0.01, l2: 0, pooling: 'mean' as const };

/** The head's training options: Adam on the logistic regression (FROZEN_HEAD's epochs, rate and penalty). */
export const FROZEN_LOGREG: LogRegOptions = {
  ...DEFAULT_LOGREG,
  epochs: FROZEN_HEAD.epochs,
  learningRate: FROZEN_HEAD.learningRate,
  l2: FROZEN_HEAD.l2,
};

/** Fits the head on embeddings of the training texts (class weights optional). */
export async function trainFrozenHead(
  embeddings: Float32Array[],
  train: readonly Example[],
  labelMap: LabelMap,
  classWeights: number[] | undefined,
  opts: LogRegOptions = FROZEN_LOGREG,
): Promise<FrozenEncoderModel> {
  const epochs = frozenHeadEpochs(embeddings, train, labelMap, classWeights, opts);
  for (;;) {
    const r = await epochs.next();
    // `=== true`: the notebook kernel's TypeScript (no strict null checks) narrows IteratorResult only so.
    if (r.done === true) return r.value;
  }
}

/**
 * The same fit one epoch per `next()`, so a tuning trial can be scored and pruned between epochs.
 * Each mini-batch runs on ONNX Runtime (denseLogRegEpochs), the same model as the sparse trainer.
 */
export async function* frozenHeadEpochs(
  embeddings: Float32Array[],
  train: readonly Example[],
  labelMap: LabelMap,
  classWeights: number[] | undefined,
  opts: LogRegOptions = FROZEN_LOGREG,
): AsyncGenerator<EpochLog, FrozenEncoderModel, void> {
  const ys = encodeLabels(
    train.map((e) => e.label),
    labelMap,
  );
  const k = labelMap.labels.length;
  const logreg = yield* denseLogRegEpochs(embeddings, ys, embeddings[0]!.length, k, { ...opts, classWeights });
  return { kind: 'frozen-encoder-logreg', labelMap, logreg };
}
