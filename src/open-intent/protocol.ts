/**
 * Open intent classification, the protocol of Shu et al. 2017, Lin & Xu 2019 and Zhang et al. 2021
 * (ADB): a random share of the intents is known (25%, 50% or 75%), the rest are held out as one "open"
 * class; the model trains on the known intents' training examples only. Validation holds both, so the
 * out-of-scope score and its threshold are chosen without ever seeing the test split. Reported: known
 * accuracy, macro-F1 over the known classes plus open, AUROC and FPR@95TPR per score. Pure functions.
 */
import { buildLabelMap, type LabelMap } from '../data/labels';
import { seededRandom, shuffled } from '../data/split';
import type { Example } from '../data/tasks';
import { thresholdForRecall, openSetMetrics } from '../kinds/scope/scores';

/** The known intents of one protocol run: a seeded random `ratio` of the labels (at least 2). */
export function knownIntents(labels: readonly string[], ratio: number, seed: number): string[] {
  if (!(ratio > 0 && ratio < 1)) throw new Error(`the known ratio must be between 0 and 1, got ${ratio}`);
  const n = Math.max(2, Math.round(ratio * labels.length));
  return shuffled([...labels].sort(), seededRandom(seed))
    .slice(0, n)
    .sort();
}

export interface OpenIntentSplits {
  known: string[];
  labelMap: LabelMap;
  /** Training examples of known intents only. */
  train: Example[];
  validation: { known: Example[]; unknown: Example[] };
  test: { known: Example[]; unknown: Example[] };
}

export function openIntentSplits(
  data: { train: readonly Example[]; validation: readonly Example[]; test: readonly Example[] },
  known: readonly string[],
): OpenIntentSplits {
  const isKnown = new Set(known);
  const part = (xs: readonly Example[]) => ({
    known: xs.filter((e) => isKnown.has(e.label)),
    unknown: xs.filter((e) => !isKnown.has(e.label)),
  });
  return {
    known: [...known],
    labelMap: buildLabelMap(known),
    train: data.train.filter((e) => isKnown.has(e.label)),
    validation: part(data.validation),
    test: part(data.test),
  };
}

/** One score's in-scope values on a split's known and unknown examples (higher = more in scope). */
export interface ScoredSplit {
  known: ArrayLike<number>;
  unknown: ArrayLike<number>;
}

export interface MethodResult {
  valAuroc: number;
  testAuroc: number;
  testFprAt95Tpr: number;
  /** Threshold keeping `recall` of the known validation examples. */
  threshold: number;
}

export interface OpenIntentResult {
  methods: Record<string, MethodResult>;
  /** The score with the best validation AUROC (ties: the earlier in the given order). */
  chosen: string;
  recall: number;
  /** Top-label accuracy on known test intents: the same model with no reject option. */
  knownAccuracyClosed: number;
  /** With the chosen score's threshold: a rejected known example counts as wrong. */
  knownAccuracy: number;
  /** Share of known test examples kept in scope, and of unknown ones rejected. */
  knownKept: number;
  openRejected: number;
  /** Macro-F1 over the known classes plus "open" as one class (the ADB papers' F1-all). */
  macroF1All: number;
  macroF1Known: number;
  f1Open: number;
}

/**
 * Scores one protocol run. `scores` holds every method's values on validation and test (same order as
 * the splits' examples); `testTop` is the model's top known class per test example (known first,
 * then unknown) and `testKnownY` the true class of the known ones.
 */
export function scoreOpenIntent(i: {
  scores: Record<string, { validation: ScoredSplit; test: ScoredSplit }>;
  testTop: { known: readonly number[]; unknown: readonly number[] };
  testKnownY: readonly number[];
  classes: number;
  recall: number;
}): OpenIntentResult {
  const methods: Record<string, MethodResult> = {};
  for (const [name, s] of Object.entries(i.scores)) {
    const val = openSetMetrics(s.validation.known, s.validation.unknown);
    const test = openSetMetrics(s.test.known, s.test.unknown);
    methods[name] = {
      valAuroc: val.auroc,
      testAuroc: test.auroc,
      testFprAt95Tpr: test.fprAt95Tpr,
      threshold: thresholdForRecall(s.validation.known, i.recall),
    };
  }
  const names = Object.keys(methods);
  if (names.length === 0) throw new Error('no out-of-scope scores to compare');
  const chosen = names.reduce((best, n) => (methods[n]!.valAuroc > methods[best]!.valAuroc ? n : best));
  const t = methods[chosen]!.threshold;
  const s = i.scores[chosen]!.test;
  const OPEN = i.classes;
  // Predicted class: the top known class when in scope, else "open".
  const predKnown = i.testTop.known.map((c, j) => (s.known[j]! >= t ? c : OPEN));
  const predUnknown = i.testTop.unknown.map((c, j) => (s.unknown[j]! >= t ? c : OPEN));
  const yTrue = [...i.testKnownY, ...predUnknown.map(() => OPEN)];
  const yPred = [...predKnown, ...predUnknown];
  const f1 = perClassF1(yTrue, yPred, i.classes + 1);
  const n = i.testKnownY.length;
  return {
    methods,
    chosen,
    recall: i.recall,
    knownAccuracyClosed: i.testTop.known.filter((c, j) => c === i.testKnownY[j]).length / n,
    knownAccuracy: predKnown.filter((c, j) => c === i.testKnownY[j]).length / n,
    knownKept: predKnown.filter((c) => c !== OPEN).length / n,
    openRejected: predUnknown.filter((c) => c === OPEN).length / Math.max(1, predUnknown.length),
    macroF1All: mean(f1),
    macroF1Known: mean(f1.slice(0, i.classes)),
    f1Open: f1[OPEN]!,
  };
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** F1 per class in [0, classes); a class never predicted nor present scores 0. */
function perClassF1(yTrue: readonly number[], yPred: readonly number[], classes: number): number[] {
  const tp = new Array<number>(classes).fill(0);
  const fp = new Array<number>(classes).fill(0);
  const fn = new Array<number>(classes).fill(0);
  yTrue.forEach((y, j) => {
    const p = yPred[j]!;
    if (p === y) tp[y]! += 1;
    else {
      fp[p]! += 1;
      fn[y]! += 1;
    }
  });
  return tp.map((t, c) => (t === 0 ? 0 : (2 * t) / (2 * t + fp[c]! + fn[c]!)));
}

export interface ThresholdRow {
  /** In-scope validation recall the threshold was chosen for. */
  recall: number;
  threshold: number;
  /** Share of known test examples kept in scope. */
  testKept: number;
  /** Share of unknown test examples accepted (sent to a queue): the false-accept rate. */
  falseAccept: number;
}

/** The trade-off a threshold makes: per target recall (on validation), what it keeps and lets through on test. */
export function thresholdTable(
  valKnown: ArrayLike<number>,
  testKnown: ArrayLike<number>,
  testUnknown: ArrayLike<number>,
  recalls: readonly number[] = [0.8, 0.85, 0.9, 0.95, 0.97, 0.99],
): ThresholdRow[] {
  const share = (xs: ArrayLike<number>, t: number) => Array.from(xs).filter((x) => x >= t).length / xs.length;
  return recalls.map((recall) => {
    const threshold = thresholdForRecall(valKnown, recall);
    return { recall, threshold, testKept: share(testKnown, threshold), falseAccept: share(testUnknown, threshold) };
  });
}
