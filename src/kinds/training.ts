/**
 * How each model kind trains a challenger from a promoted run's logged hyper-parameters. Kept out
 * of ./index.ts so that serving, which imports the registry, never loads training code; the table is
 * typed by KindId, so a kind without a trainer does not compile.
 */
import { kindById } from './index';
import { trainFromParams as trainBert } from './bert/train';
import { trainFromParams as trainFrozen } from './frozen-encoder/train';
import { trainFromParams as trainHybrid } from './hybrid/train';
import { trainFromParams as trainTabular } from './tabular/runs';
import { trainFromParams as trainTfidf } from './tfidf-logreg/train';
import type { KindId, TabularTrainRequest, TextTrainRequest, Trainer, TrainRequest } from './types';

// A kind trains on its own input: a text kind given a feature table (or the reverse) is an error.
const forText =
  (t: (r: TextTrainRequest) => ReturnType<Trainer>): Trainer =>
  (req) => {
    if (req.input !== 'text') throw new Error('this model kind trains on texts, not on a feature table');
    return t(req);
  };
const forRecords =
  (t: (r: TabularTrainRequest) => ReturnType<Trainer>): Trainer =>
  (req) => {
    if (req.input !== 'record') throw new Error('this model kind trains on a feature table, not on texts');
    return t(req);
  };

const TRAINERS: Readonly<Record<KindId, Trainer>> = Object.freeze({
  'tfidf-logreg': forText(trainTfidf),
  'frozen-encoder-logreg': forText(trainFrozen),
  'bert-finetune': forText(trainBert),
  'tabular-onnx': forRecords(trainTabular),
  'hybrid-frozen-logreg': forRecords(trainHybrid),
});

/** Trains a model of kind `id` (an unknown kind is an error naming the known ones). */
export function trainKind(id: string, req: TrainRequest): ReturnType<Trainer> {
  return TRAINERS[kindById(id).id](req);
}
