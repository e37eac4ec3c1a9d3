/**
 * How each model kind trains a challenger from a promoted run's logged hyper-parameters. Kept out
 * of ./index.ts so that serving, which imports the registry, never loads training code; the table is
 * typed by KindId, so a kind without a trainer does not compile.
 */
import { kindById } from './index';
import { trainFromParams as trainBert } from './bert/train';
import { trainFromParams as trainFrozen } from './frozen-encoder/train';
import { trainFromParams as trainTabular } from './tabular/train';
import { trainFromParams as trainTfidf } from './tfidf-logreg/train';
import type { KindId, Trainer, TrainRequest } from './types';

const TRAINERS: Readonly<Record<KindId, Trainer>> = Object.freeze({
  'tfidf-logreg': trainTfidf,
  'frozen-encoder-logreg': trainFrozen,
  'bert-finetune': trainBert,
  'tabular-onnx': trainTabular,
});

/** Trains a model of kind `id` (an unknown kind is an error naming the known ones). */
export function trainKind(id: string, req: TrainRequest): ReturnType<Trainer> {
  return TRAINERS[kindById(id).id](req);
}
