/**
 * What a fine-tuning run is configured by: the contract between the recipe (./recipe.ts, promoted from
 * notebooks/03_experiments.ipynb) and the loop (./finetune.ts), kept apart so neither imports the other.
 */
import type { DropoutRates, Pooling } from '../engine/bert-graph';

export interface FineTuneConfig {
  maxLength: number;
  batchSize: number;
  epochs: number;
  learningRate: number;
  weightDecay: number;
  /** Share of all steps spent warming the learning rate up from 0. */
  warmupRatio: number;
  /** Global gradient-norm clip; 0 disables. */
  maxGradNorm: number;
  pooling: Pooling;
  /** Undefined: the checkpoint's own rates (config.json). */
  dropout?: Partial<DropoutRates>;
  /** Weigh the loss by balanced class weights (imbalanced tasks such as churn). */
  classWeights: boolean;
  freezeEmbeddings: boolean;
  /** Freeze the lowest N encoder layers (and nothing above them). */
  freezeLayers: number;
  /** Early stopping: epochs without a better validation macro-F1 before stopping; 0 disables. */
  patience: number;
  /**
   * Batches of similar-length texts (HF Trainer's group_by_length): less padding, so shorter steps. The
   * grouping is redrawn every epoch from (seed, epoch), so order stays deterministic and resumable.
   */
  groupByLength?: boolean;
  seed: number;
  /** Also checkpoint every N steps inside an epoch (0: at epoch ends only). */
  checkpointEverySteps: number;
  evalBatchSize: number;
}
