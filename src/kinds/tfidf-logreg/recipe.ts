// AUTO-GENERATED from notebooks/03_experiments.ipynb - edit the notebook, then run `make promote`.
// Checked by `make promote-check`: hand edits to this file are reported.

// cell exp-r1
import { DEFAULT_LOGREG, type LogRegOptions } from '../../estimators/logreg';
import { DEFAULT_TFIDF, type TfidfOptions } from '../../estimators/tfidf';

/** The TF-IDF + logistic-regression recipe: the vectoriser, the classifier and the class weighting. */
export interface BaselineConfig {
  tfidf: TfidfOptions;
  logreg: LogRegOptions;
  /** Weight the loss by inverse class frequency. */
  useClassWeights: boolean;
}

export const DEFAULT_BASELINE: BaselineConfig = { tfidf: DEFAULT_TFIDF, logreg: DEFAULT_LOGREG, useClassWeights: true };

// cell exp-r4
/** The TF-IDF variants 03_experiments compares, each a configuration of the recipe; add one here to try it. */
export function baselineCandidates(epochs: number): Record<string, BaselineConfig> {
  const logreg = { ...DEFAULT_BASELINE.logreg, epochs };
  return {
    'tfidf-unigram': { ...DEFAULT_BASELINE, tfidf: { ...DEFAULT_BASELINE.tfidf, ngramRange: [1, 1] }, logreg },
    'tfidf-bigram': { ...DEFAULT_BASELINE, logreg },
    'tfidf-bigram-unweighted': { ...DEFAULT_BASELINE, useClassWeights: false, logreg },
  };
}
