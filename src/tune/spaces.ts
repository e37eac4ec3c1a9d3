// AUTO-GENERATED from notebooks/04_tuning.ipynb - edit the notebook, then run `make promote`.
// Checked by `make promote-check`: hand edits to this file are reported.

// cell tune-s1
import type { LogRegOptions } from '../estimators/logreg';
import { FROZEN_LOGREG } from '../kinds/frozen-encoder/recipe';
import { DEFAULT_BASELINE, type BaselineConfig } from '../kinds/tfidf-logreg/recipe';
import type { FineTuneConfig } from '../train/config';
import { DEFAULT_FINETUNE } from '../train/recipe';
import { numberParam, type SearchParam, type TrialParams } from './space';

/** A model kind's search space, the trial that reproduces today's default, and how a trial becomes a config. */
export interface TuningSpace<C> {
  space: SearchParam[];
  /** Enqueued as the first trial, so every study measures the default it has to beat. */
  defaults: TrialParams;
  config: (p: TrialParams) => C;
}

/** TF-IDF + logistic regression: n-gram range, vocabulary floor, tf scaling, then the classifier. */
export const TFIDF_TUNING: TuningSpace<BaselineConfig> = {
  space: [
    { name: 'ngram_max', type: 'int', low: 1, high: 3 },
    { name: 'min_df', type: 'int', low: 1, high: 5 },
    { name: 'sublinear_tf', type: 'categorical', choices: [true, false] },
    { name: 'learning_rate', type: 'float', low: 0.005, high: 0.2, log: true },
    { name: 'l2', type: 'categorical', choices: [0, 1e-6, 1e-5, 1e-4] },
    { name: 'epochs', type: 'int', low: 10, high: 40, step: 5 },
    { name: 'class_weights', type: 'categorical', choices: [true, false] },
  ],
  defaults: {
    ngram_max: DEFAULT_BASELINE.tfidf.ngramRange[1],
    min_df: DEFAULT_BASELINE.tfidf.minDf,
    sublinear_tf: DEFAULT_BASELINE.tfidf.sublinearTf,
    learning_rate: DEFAULT_BASELINE.logreg.learningRate,
    l2: DEFAULT_BASELINE.logreg.l2,
    epochs: DEFAULT_BASELINE.logreg.epochs,
    class_weights: DEFAULT_BASELINE.useClassWeights,
  },
  config: (p) => ({
    tfidf: {
      ...DEFAULT_BASELINE.tfidf,
      ngramRange: [1, numberParam(p, 'ngram_max')],
      minDf: numberParam(p, 'min_df'),
      sublinearTf: p.sublinear_tf === true,
    },
    logreg: {
      ...DEFAULT_BASELINE.logreg,
      learningRate: numberParam(p, 'learning_rate'),
      l2: numberParam(p, 'l2'),
      epochs: numberParam(p, 'epochs'),
    },
    useClassWeights: p.class_weights === true,
  }),
};

/** Frozen encoder + logistic-regression head: rate, penalty, epochs and batch size (the texts are embedded once). */
export const FROZEN_TUNING: TuningSpace<LogRegOptions> = {
  space: [
    { name: 'learning_rate', type: 'float', low: 0.001, high: 0.1, log: true },
    { name: 'l2', type: 'categorical', choices: [0, 1e-6, 1e-5, 1e-4] },
    { name: 'epochs', type: 'int', low: 10, high: 60, step: 10 },
    { name: 'batch_size', type: 'categorical', choices: [16, 32, 64, 128] },
  ],
  defaults: {
    learning_rate: FROZEN_LOGREG.learningRate,
    l2: FROZEN_LOGREG.l2,
    epochs: FROZEN_LOGREG.epochs,
    batch_size: FROZEN_LOGREG.batchSize,
  },
  config: (p) => ({
    ...FROZEN_LOGREG,
    learningRate: numberParam(p, 'learning_rate'),
    l2: numberParam(p, 'l2'),
    epochs: numberParam(p, 'epochs'),
    batchSize: numberParam(p, 'batch_size'),
  }),
};

/** BERT fine-tuning: optimiser, schedule, regularisation and the layers left frozen. */
export const BERT_TUNING: TuningSpace<FineTuneConfig> = {
  space: [
    { name: 'learning_rate', type: 'float', low: 2e-5, high: 3e-4, log: true },
    { name: 'warmup_ratio', type: 'float', low: 0, high: 0.2 },
    { name: 'weight_decay', type: 'float', low: 0, high: 0.1 },
    { name: 'epochs', type: 'int', low: 2, high: 5 },
    { name: 'batch_size', type: 'categorical', choices: [16, 32] },
    { name: 'max_length', type: 'categorical', choices: [48, 64] },
    { name: 'freeze_layers', type: 'int', low: 0, high: 3 },
    { name: 'dropout', type: 'float', low: 0, high: 0.2 },
  ],
  defaults: {
    learning_rate: DEFAULT_FINETUNE.learningRate,
    warmup_ratio: DEFAULT_FINETUNE.warmupRatio,
    weight_decay: DEFAULT_FINETUNE.weightDecay,
    epochs: DEFAULT_FINETUNE.epochs,
    batch_size: DEFAULT_FINETUNE.batchSize,
    max_length: DEFAULT_FINETUNE.maxLength,
    freeze_layers: DEFAULT_FINETUNE.freezeLayers,
    dropout: 0.1,
  },
  config: (p) => {
    const dropout = numberParam(p, 'dropout');
    return {
      ...DEFAULT_FINETUNE,
      learningRate: numberParam(p, 'learning_rate'),
      warmupRatio: numberParam(p, 'warmup_ratio'),
      weightDecay: numberParam(p, 'weight_decay'),
      epochs: numberParam(p, 'epochs'),
      batchSize: numberParam(p, 'batch_size'),
      maxLength: numberParam(p, 'max_length'),
      freezeLayers: numberParam(p, 'freeze_layers'),
      dropout: { hidden: dropout, attention: dropout, classifier: dropout },
      // Length-grouped batches: about 2x less wall-clock per fine-tune at equal accuracy (bench/grouping.json).
      groupByLength: true,
    };
  },
};
