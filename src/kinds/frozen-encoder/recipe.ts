// AUTO-GENERATED from notebooks/03_experiments.ipynb - edit the notebook, then run `make promote`.
// Checked by `make promote-check`: hand edits to this file are reported.

// cell exp-r2
/**
 * The frozen-encoder head: mean-pooled, L2-normalised embeddings of the pretrained encoder, then a
 * logistic regression trained without weight decay (the embeddings are already normalised).
 */
export const FROZEN_HEAD = { maxLength: 64, epochs: 40, learningRate: 0.01, l2: 0, pooling: 'mean' as const };
