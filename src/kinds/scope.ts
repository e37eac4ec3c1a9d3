/**
 * "None of my classes" as an answer. A text model's folder may hold scope.json: the temperature that
 * calibrates its probabilities (fitted on validation), the out-of-scope score it uses, the threshold
 * below which a text is out of scope (chosen for a stated in-scope recall on validation), the fallback
 * label, and for the Mahalanobis score the class means and covariance factor it measures against.
 *
 * `fitScope` is pure (raw model outputs in, the saved object out); `withScope` wraps a loaded text
 * predictor so that its probabilities are the calibrated ones and `scope.judge` scores texts.
 * Folders without scope.json (logged before it existed) load unchanged, with no scope.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import {
  brierScore,
  expectedCalibrationError,
  fitTemperature,
  nllAtTemperature,
  softmaxWithTemperature,
} from '../evaluate/calibration';
import {
  fitMahalanobis,
  maxSoftmaxScore,
  negativeEnergyScore,
  negativeMahalanobisScore,
  thresholdKeepingRecall,
  type MahalanobisModel,
} from '../evaluate/open-set';
import type { RawOutputs, TextPredictor } from './types';

export const SCOPE_FILE = 'scope.json';
/** `none`: calibration only, every input in scope (binary churn models score every conversation). */
export const SCOPE_SCORES = ['msp', 'energy', 'mahalanobis', 'none'] as const;
export type ScopeScore = (typeof SCOPE_SCORES)[number];

const f32Base64 = (a: ArrayLike<number>) => Buffer.from(Float32Array.from(a).buffer).toString('base64');
const fromF32Base64 = (s: string) => {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

const CalibrationSchema = z.object({
  split: z.string(),
  examples: z.number().int(),
  ece_before: z.number(),
  ece_after: z.number(),
  brier_before: z.number(),
  brier_after: z.number(),
  nll_before: z.number(),
  nll_after: z.number(),
});
export type CalibrationSummary = z.infer<typeof CalibrationSchema>;

export const ScopeFileSchema = z.object({
  format: z.literal(1),
  temperature: z.number().positive(),
  score: z.enum(SCOPE_SCORES),
  /** Texts scoring below it are out of scope. */
  threshold: z.number(),
  /** The in-scope validation recall the threshold was chosen for. */
  recall: z.number().gt(0).max(1),
  fallback_label: z.string().min(1),
  calibration: CalibrationSchema,
  /** Float32 arrays as base64: class means [classes, dim] and the covariance's Cholesky factor [dim, dim]. */
  mahalanobis: z
    .object({ dim: z.number().int().positive(), shrinkage: z.number(), means: z.string(), cholesky: z.string() })
    .optional(),
});
export type ScopeFile = z.infer<typeof ScopeFileSchema>;

/** What fitting needs: raw outputs of the validation split and, for Mahalanobis, the training features. */
export interface ScopeFitInputs {
  labels: readonly string[];
  validation: { raw: RawOutputs; y: readonly number[] };
  train?: { features: { data: Float32Array; dim: number }; y: readonly number[] };
  score: ScopeScore;
  /** In-scope recall the threshold keeps on validation (0.95 by default). */
  recall: number;
  fallbackLabel: string;
}

/** The scores a model's raw outputs support (Mahalanobis needs pooled features). */
export const scoresAvailable = (raw: RawOutputs): ScopeScore[] =>
  raw.features ? ['msp', 'energy', 'mahalanobis'] : ['msp', 'energy'];

const mahalanobisOf = (m: NonNullable<ScopeFile['mahalanobis']>): MahalanobisModel => ({
  dim: m.dim,
  shrinkage: m.shrinkage,
  means: fromF32Base64(m.means),
  cholesky: fromF32Base64(m.cholesky),
});

/** In-scope scores (higher = more in scope) of raw outputs under a fitted scope. */
export function scopeScores(
  raw: RawOutputs,
  k: number,
  s: Pick<ScopeFile, 'score' | 'temperature'>,
  maha?: MahalanobisModel,
): Float64Array {
  if (s.score === 'none') return new Float64Array(raw.logits.length / k).fill(Infinity);
  if (s.score === 'msp') return maxSoftmaxScore(softmaxWithTemperature(raw.logits, k, s.temperature), k);
  if (s.score === 'energy') return negativeEnergyScore(raw.logits, k);
  if (!raw.features || !maha) throw new Error('the Mahalanobis score needs pooled features and a fitted model');
  return negativeMahalanobisScore(maha, raw.features.data);
}

/** Fits temperature, score model and threshold on validation (and train features). Pure. */
export function fitScope(i: ScopeFitInputs): ScopeFile {
  const k = i.labels.length;
  const { raw, y } = i.validation;
  const temperature = fitTemperature(raw.logits, y, k);
  const before = softmaxWithTemperature(raw.logits, k, 1);
  const after = softmaxWithTemperature(raw.logits, k, temperature);
  let mahalanobis: ScopeFile['mahalanobis'];
  if (i.score === 'mahalanobis') {
    if (!i.train || !raw.features) throw new Error('the Mahalanobis score needs the training split’s pooled features');
    const m = fitMahalanobis(i.train.features.data, i.train.y, k, i.train.features.dim);
    mahalanobis = { dim: m.dim, shrinkage: m.shrinkage, means: f32Base64(m.means), cholesky: f32Base64(m.cholesky) };
  }
  // Scores from the saved (float32) parameters, so the threshold is the one serving will compare to.
  const scores = scopeScores(raw, k, { score: i.score, temperature }, mahalanobis && mahalanobisOf(mahalanobis));
  return {
    format: 1,
    temperature,
    score: i.score,
    threshold: i.score === 'none' ? 0 : thresholdKeepingRecall(scores, i.recall),
    recall: i.recall,
    fallback_label: i.fallbackLabel,
    calibration: {
      split: 'validation',
      examples: y.length,
      ece_before: expectedCalibrationError(before, y, k),
      ece_after: expectedCalibrationError(after, y, k),
      brier_before: brierScore(before, y, k),
      brier_after: brierScore(after, y, k),
      nll_before: nllAtTemperature(raw.logits, y, k, 1),
      nll_after: nllAtTemperature(raw.logits, y, k, temperature),
    },
    ...(mahalanobis ? { mahalanobis } : {}),
  };
}

export function writeScope(dir: string, scope: ScopeFile): void {
  fs.writeFileSync(path.join(dir, SCOPE_FILE), `${JSON.stringify(scope)}\n`);
}

/** A folder's scope.json, validated; undefined for folders saved without one. */
export function readScope(dir: string): ScopeFile | undefined {
  const file = path.join(dir, SCOPE_FILE);
  if (!fs.existsSync(file)) return undefined;
  const parsed = ScopeFileSchema.safeParse(JSON.parse(fs.readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`${file} is not a valid scope file: ${parsed.error.message}`);
  return parsed.data;
}

/** Per text: calibrated probabilities (row-major) and the in-scope score. */
export interface ScopeVerdicts {
  probs: Float32Array;
  scores: Float64Array;
}

/** A served model's out-of-scope rule, with the deployment's overrides applied. */
export interface Scope {
  score: ScopeScore;
  temperature: number;
  threshold: number;
  /** The threshold saved with the model (differs from `threshold` when a deployment overrides it). */
  modelThreshold: number;
  recall: number;
  fallbackLabel: string;
  judge(texts: readonly string[]): Promise<ScopeVerdicts>;
}

export interface ScopeOverrides {
  threshold?: number;
  fallbackLabel?: string;
}

/** The predictor with calibrated probabilities and its scope (the threshold and label possibly overridden). */
export function withScope(p: TextPredictor, s: ScopeFile, overrides: ScopeOverrides = {}): TextPredictor {
  const k = p.labels.length;
  const maha = s.mahalanobis && mahalanobisOf(s.mahalanobis);
  const judge = async (texts: readonly string[]): Promise<ScopeVerdicts> => {
    const raw = await p.predictRaw(texts);
    return {
      probs: Float32Array.from(softmaxWithTemperature(raw.logits, k, s.temperature)),
      scores: scopeScores(raw, k, s, maha),
    };
  };
  return {
    ...p,
    predictProba: async (texts) =>
      Float32Array.from(softmaxWithTemperature((await p.predictRaw(texts)).logits, k, s.temperature)),
    scope: {
      score: s.score,
      temperature: s.temperature,
      threshold: overrides.threshold ?? s.threshold,
      modelThreshold: s.threshold,
      recall: s.recall,
      fallbackLabel: overrides.fallbackLabel ?? s.fallback_label,
      judge,
    },
  };
}
