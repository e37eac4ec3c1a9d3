/**
 * The training-time edge of ./rule.ts, shared by every text kind: load the saved model folder as
 * serving will, score the validation split (and the training split for Mahalanobis), fit the
 * temperature and the out-of-scope threshold, write scope.json into the folder before it is logged,
 * and log calibration before/after (validation and test) to the run. For `mahalanobis+knn` it also writes
 * the base checkpoint's encoder and the training texts' embeddings under it into the folder.
 */
import path from 'node:path';
import { encodeLabels, type LabelMap } from '../../data/labels';
import type { Example } from '../../data/tasks';
import { brierScore, expectedCalibrationError, softmaxWithTemperature } from '../../evaluate/calibration';
import type { ActiveRun } from '../../mlflow';
import { fitScope, scoresAvailable, writeScope, type ScopeFile, type ScopeFitInputs } from './rule';
import { SCOPE_CHOICE } from './choice';
import { loadEmbedder, writeNeighbourEncoder } from './view';
import type { KindId, ScopeScore, TextPredictor } from '../types';

export interface ScopeSplits {
  train: readonly Example[];
  validation: readonly Example[];
  test: readonly Example[];
  labelMap: LabelMap;
}

/**
 * The score a text task's model is saved with: none for a task with a positive label (churn: every
 * conversation gets a probability), else the kind's chosen score.
 */
export const scoreForTask = (spec: { positiveLabel?: string }): ScopeScore | undefined =>
  spec.positiveLabel !== undefined ? 'none' : undefined;

/**
 * The score a kind is saved with (the notebook's choice); Mahalanobis alone when the pretrained view is
 * not at hand, MSP when the model gives no features.
 */
export function chosenScore(kind: KindId, available: readonly ScopeScore[]): ScopeScore {
  const chosen = (SCOPE_CHOICE.score as Partial<Record<KindId, ScopeScore>>)[kind] ?? 'msp';
  if (available.includes(chosen)) return chosen;
  return chosen === 'mahalanobis+knn' && available.includes('mahalanobis') ? 'mahalanobis' : 'msp';
}

/** A saved text model as the scope fit needs it: its kind and the loader serving uses for its folder. */
export interface ScopedModel {
  kind: KindId;
  load(dir: string): Promise<TextPredictor>;
}

/**
 * Fits and writes `dir`/scope.json for a saved text model (loaded by `model.load`, the kind's serving
 * loader with its MLmodel flavor entry, so the graph scored is the one served); logs the calibration
 * metrics to `run`.
 */
export async function fitAndSaveScope(
  dir: string,
  model: ScopedModel,
  data: ScopeSplits,
  run?: ActiveRun,
  opts: {
    score?: ScopeScore;
    recall?: number;
    /** The pretrained checkpoint the model started from: the second view of `mahalanobis+knn`. */
    neighbourCheckpoint?: string;
  } = {},
): Promise<ScopeFile> {
  const kindId = model.kind;
  const p = await model.load(dir);
  try {
    const texts = (xs: readonly Example[]) => xs.map((e) => e.text);
    const y = (xs: readonly Example[]) =>
      encodeLabels(
        xs.map((e) => e.label),
        data.labelMap,
      );
    const validation = { raw: await p.predictRaw(texts(data.validation)), y: y(data.validation) };
    const available = scoresAvailable(validation.raw);
    if (validation.raw.features && opts.neighbourCheckpoint) available.push('mahalanobis+knn');
    const score = opts.score ?? chosenScore(kindId, available);
    const train =
      score === 'mahalanobis' || score === 'mahalanobis+knn'
        ? { features: (await p.predictRaw(texts(data.train))).features!, y: y(data.train) }
        : undefined;
    let neighbours: ScopeFitInputs['neighbours'];
    if (score === 'mahalanobis+knn') {
      if (!opts.neighbourCheckpoint)
        throw new Error('mahalanobis+knn needs the pretrained checkpoint (neighbourCheckpoint)');
      // Embedded by the encoder folder written into the model, the graph serving will run.
      const encoder = writeNeighbourEncoder(dir, opts.neighbourCheckpoint);
      const embedder = await loadEmbedder(path.join(dir, encoder), SCOPE_CHOICE.viewMaxLength);
      try {
        // Served texts look for their nearest labelled text among training and validation texts.
        const bank = await embedder.embed(texts([...data.train, ...data.validation]));
        const validationStart = data.train.length;
        const view = { data: bank.data.subarray(validationStart * bank.dim), dim: bank.dim };
        validation.raw = { ...validation.raw, view };
        neighbours = {
          bank,
          validationStart,
          encoder,
          maxLength: SCOPE_CHOICE.viewMaxLength,
          weight: SCOPE_CHOICE.neighbourWeight,
        };
      } finally {
        await embedder.release();
      }
    }
    const scope = fitScope({
      labels: p.labels,
      validation,
      train,
      neighbours,
      score,
      recall: opts.recall ?? SCOPE_CHOICE.recall,
      fallbackLabel: SCOPE_CHOICE.fallbackLabel,
    });
    writeScope(dir, scope, neighbours?.bank.data);
    if (run) {
      const k = p.labels.length;
      const testRaw = await p.predictRaw(texts(data.test));
      const yTest = y(data.test);
      const calibrated = softmaxWithTemperature(testRaw.logits, k, scope.temperature);
      const c = scope.calibration;
      await run.logMetrics({
        temperature: scope.temperature,
        val_ece_uncalibrated: c.ece_before,
        val_ece_calibrated: c.ece_after,
        val_brier_uncalibrated: c.brier_before,
        val_brier_calibrated: c.brier_after,
        test_ece_calibrated: expectedCalibrationError(calibrated, yTest, k),
        test_brier_calibrated: brierScore(calibrated, yTest, k),
        ...(scope.score !== 'none' ? { scope_threshold: scope.threshold } : {}),
      });
      await run.setTags({
        'scope.score': scope.score,
        ...(scope.score !== 'none' ? { 'scope.recall': String(scope.recall) } : {}),
      });
    }
    return scope;
  } finally {
    await p.release();
  }
}
