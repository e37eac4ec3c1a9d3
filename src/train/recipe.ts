// AUTO-GENERATED from notebooks/03_experiments.ipynb - edit the notebook, then run `make promote`.
// Checked by `make promote-check`: hand edits to this file are reported.

// cell exp-r3
import type { FineTuneConfig } from './config';
import { DEFAULT_ADAMW } from './optimizer';

/**
 * The fine-tuning recipe: mean pooling and a linear head over the encoder, AdamW with linear warm-up
 * and decay, clipped gradients, early stopping on validation macro-F1.
 */
export const DEFAULT_FINETUNE: FineTuneConfig = {
  maxLength: 64,
  batchSize: 16,
  epochs: 4,
  learningRate: 1e-4,
  weightDecay: DEFAULT_ADAMW.weightDecay,
  warmupRatio: 0.1,
  maxGradNorm: 1,
  pooling: 'mean',
  classWeights: false,
  freezeEmbeddings: false,
  freezeLayers: 0,
  patience: 2,
  seed: 42,
  checkpointEverySteps: 200,
  evalBatchSize: 64,
};
