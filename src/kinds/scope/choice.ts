// AUTO-GENERATED from notebooks/06_open_set.ipynb - edit the notebook, then run `make promote`.
// Checked by `make promote-check`: hand edits to this file are reported.

// cell open-choice
import type { KindId, ScopeScore } from '../types';

/**
 * The out-of-scope rule every new text model is saved with: its score per model kind (chosen in
 * notebooks/06_open_set.ipynb on held-out intents, by validation AUROC), the in-scope validation recall
 * its threshold keeps, the label an out-of-scope text gets, and the Mahalanobis part's weight in
 * `mahalanobis+knn` (the neighbour similarity gets the rest).
 */
export const SCOPE_CHOICE: {
  score: Record<Extract<KindId, 'tfidf-logreg' | 'frozen-encoder-logreg' | 'bert-finetune'>, ScopeScore>;
  recall: number;
  fallbackLabel: string;
  neighbourWeight: number;
  /** Tokens per text the pretrained view of `mahalanobis+knn` embeds (the frozen encoder's length). */
  viewMaxLength: number;
} = {
  score: { 'tfidf-logreg': 'msp', 'frozen-encoder-logreg': 'mahalanobis', 'bert-finetune': 'mahalanobis+knn' },
  recall: 0.95,
  fallbackLabel: 'out_of_scope',
  neighbourWeight: 0.5,
  viewMaxLength: 64,
};
