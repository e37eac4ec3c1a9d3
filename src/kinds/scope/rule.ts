/**
 * "None of my classes" as an answer. A text model's folder may hold scope.json: the temperature that
 * calibrates its probabilities (fitted on validation), the out-of-scope score it uses, the threshold
 * below which a text is out of scope (chosen for a stated in-scope recall on validation), the fallback
 * label, and for the Mahalanobis score the class means and covariance factor it measures against. The
 * `mahalanobis+knn` score adds the pretrained encoder (a folder beside) and the training texts' embeddings
 * in its space (a float32 file beside, checked by digest), and how the two parts are z-scored and weighted.
 *
 * `fitScope` is pure (raw model outputs in, the saved object out); `withScope` wraps a loaded text
 * predictor so that its probabilities are the calibrated ones and `scope.judge` scores texts.
 * Folders without scope.json (logged before it existed) load unchanged, with no scope. `writeScope` also
 * writes the rule as an ONNX graph (./graph.ts, scope.onnx), which the Python flavor runs.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import {
  brierScore,
  expectedCalibrationError,
  fitTemperature,
  nllAtTemperature,
  softmaxWithTemperature,
} from '../../evaluate/calibration';
import {
  combinedScore,
  fitMahalanobis,
  fitStandardization,
  maxSoftmaxScore,
  nearestNeighbourSimilarity,
  negativeEnergyScore,
  negativeMahalanobisScore,
  thresholdKeepingRecall,
  type MahalanobisModel,
  type Standardization,
} from './scores';
import { SCOPE_GRAPH_FILE, scopeRuleGraph } from './graph';
import { SCOPE_SCORES, type RawOutputs, type ScopeScore, type ScopeVerdicts, type TextPredictor } from '../types';

export const SCOPE_FILE = 'scope.json';
/** The training texts' embeddings in the pretrained encoder's space, for `mahalanobis+knn`. */
export const NEIGHBOUR_BANK_FILE = 'scope-neighbours.f32';
/** The pretrained encoder `mahalanobis+knn` embeds texts with (config, tokenizer, model.onnx). */
export const NEIGHBOUR_ENCODER_DIR = 'scope-encoder';
/**
 * `none`: calibration only, every input in scope (binary churn models score every conversation).
 * `mahalanobis+knn`: Mahalanobis on the model's features plus the nearest training text's cosine
 * similarity in the pretrained encoder's space, each z-scored on validation, weighted.
 */

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

const StandardizationSchema = z.object({ mean: z.number(), std: z.number().positive() });

const NeighboursSchema = z.object({
  /** Folder of the pretrained encoder in the model folder (a fixed name: never a path outside it). */
  encoder: z.literal(NEIGHBOUR_ENCODER_DIR),
  max_length: z.number().int().positive(),
  /** Float32 file [rows, dim] in the model folder. */
  bank: z.literal(NEIGHBOUR_BANK_FILE),
  rows: z.number().int().positive(),
  dim: z.number().int().positive(),
  /** sha256 of the bank file: a file that is not the one fitted is refused at load. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The Mahalanobis part's weight; the neighbour similarity gets 1 - weight. */
  weight: z.number().min(0).max(1),
  mahalanobis_scale: StandardizationSchema,
  knn_scale: StandardizationSchema,
});

export const ScopeFileSchema = z.object({
  format: z.literal(1),
  temperature: z.number().positive(),
  score: z.enum(SCOPE_SCORES),
  /** Texts scoring below it are out of scope. */
  threshold: z.number(),
  /** The in-scope validation recall the threshold was chosen for. */
  recall: z.number().gt(0).max(1),
  fallback_label: z.string().min(1),
  /** The rule as an ONNX graph in the model folder (./graph.ts); absent in folders saved before it was. */
  graph: z.literal(SCOPE_GRAPH_FILE).optional(),
  calibration: CalibrationSchema,
  /** Float32 arrays as base64: class means [classes, dim] and the covariance's Cholesky factor [dim, dim]. */
  mahalanobis: z
    .object({ dim: z.number().int().positive(), shrinkage: z.number(), means: z.string(), cholesky: z.string() })
    .optional(),
  knn: NeighboursSchema.optional(),
});
export type ScopeFile = z.infer<typeof ScopeFileSchema>;

/**
 * What fitting needs: raw outputs of the validation split and, for Mahalanobis, the training features.
 * For `mahalanobis+knn`, the validation outputs carry their `view`, and `neighbours.bank` is the training
 * texts' view then the validation texts' (served texts find their nearest labelled text among both);
 * validation, from row `validationStart` of the bank, is scored leave-one-out.
 */
export interface ScopeFitInputs {
  labels: readonly string[];
  validation: { raw: RawOutputs; y: readonly number[] };
  train?: { features: { data: Float32Array; dim: number }; y: readonly number[] };
  neighbours?: {
    bank: { data: Float32Array; dim: number };
    validationStart: number;
    encoder: typeof NEIGHBOUR_ENCODER_DIR;
    maxLength: number;
    weight: number;
  };
  score: ScopeScore;
  /** In-scope recall the threshold keeps on validation (0.95 by default). */
  recall: number;
  fallbackLabel: string;
  /** What `validation` is, as recorded (default `validation`; tabular models: out-of-fold predictions). */
  calibrationSplit?: string;
}

/** The scores a model's raw outputs support (Mahalanobis needs pooled features, +knn the pretrained view too). */
export const scoresAvailable = (raw: RawOutputs): ScopeScore[] => [
  'msp',
  'energy',
  ...(raw.features ? (['mahalanobis'] as const) : []),
  ...(raw.features && raw.view ? (['mahalanobis+knn'] as const) : []),
];

/** The neighbour part of `mahalanobis+knn`: the bank and how both parts are scaled and weighted. */
export interface NeighbourModel {
  bank: Float32Array;
  dim: number;
  weight: number;
  mahalanobisScale: Standardization;
  knnScale: Standardization;
  /** Only while scoring texts that are in the bank (validation): query i is bank row selfOffset + i. */
  selfOffset?: number;
}

/**
 * Fits the z-score scales of both parts on known validation texts (their raw outputs with `view`), so
 * that neither part dominates by its units. Those texts are bank rows from `validationStart` on and are
 * scored leave-one-out. Pure; shared by training and the open intent protocol.
 */
export function fitNeighbourModel(
  validation: RawOutputs,
  maha: MahalanobisModel,
  bank: { data: Float32Array; dim: number },
  validationStart: number,
  weight: number,
): NeighbourModel {
  if (!validation.features || !validation.view)
    throw new Error('mahalanobis+knn needs features and the pretrained view');
  return {
    bank: bank.data,
    dim: bank.dim,
    weight,
    mahalanobisScale: fitStandardization(negativeMahalanobisScore(maha, validation.features.data)),
    knnScale: fitStandardization(
      nearestNeighbourSimilarity(bank.data, validation.view.data, bank.dim, validationStart),
    ),
  };
}

const sha256 = (a: Float32Array) =>
  createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');

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
  knn?: NeighbourModel,
): Float64Array {
  if (s.score === 'none') return new Float64Array(raw.logits.length / k).fill(Infinity);
  if (s.score === 'msp') return maxSoftmaxScore(softmaxWithTemperature(raw.logits, k, s.temperature), k);
  if (s.score === 'energy') return negativeEnergyScore(raw.logits, k);
  if (!raw.features || !maha) throw new Error('the Mahalanobis score needs pooled features and a fitted model');
  const m = negativeMahalanobisScore(maha, raw.features.data);
  if (s.score === 'mahalanobis') return m;
  if (!raw.view || !knn) throw new Error('the mahalanobis+knn score needs the pretrained view and its neighbours');
  const nn = raw.nearest ?? nearestNeighbourSimilarity(knn.bank, raw.view.data, knn.dim, knn.selfOffset);
  return combinedScore(m, knn.mahalanobisScale, nn, knn.knnScale, knn.weight);
}

const neighbourModelOf = (n: NonNullable<ScopeFile['knn']>, bank: Float32Array): NeighbourModel => ({
  bank,
  dim: n.dim,
  weight: n.weight,
  mahalanobisScale: n.mahalanobis_scale,
  knnScale: n.knn_scale,
});

/** Fits temperature, score model and threshold on validation (and train features). Pure. */
export function fitScope(i: ScopeFitInputs): ScopeFile {
  const k = i.labels.length;
  const { raw, y } = i.validation;
  const temperature = fitTemperature(raw.logits, y, k);
  const before = softmaxWithTemperature(raw.logits, k, 1);
  const after = softmaxWithTemperature(raw.logits, k, temperature);
  let mahalanobis: ScopeFile['mahalanobis'];
  let knn: ScopeFile['knn'];
  let neighbours: NeighbourModel | undefined;
  if (i.score === 'mahalanobis' || i.score === 'mahalanobis+knn') {
    if (!i.train || !raw.features) throw new Error('the Mahalanobis score needs the training split’s pooled features');
    const m = fitMahalanobis(i.train.features.data, i.train.y, k, i.train.features.dim);
    mahalanobis = { dim: m.dim, shrinkage: m.shrinkage, means: f32Base64(m.means), cholesky: f32Base64(m.cholesky) };
  }
  if (i.score === 'mahalanobis+knn') {
    if (!i.neighbours || !raw.view)
      throw new Error('mahalanobis+knn needs the training and validation texts’ pretrained view');
    const { bank, validationStart, encoder, maxLength, weight } = i.neighbours;
    if (bank.data.length / bank.dim - validationStart !== y.length)
      throw new Error('the neighbour bank must end with the validation texts, from validationStart');
    neighbours = fitNeighbourModel(raw, mahalanobisOf(mahalanobis!), bank, validationStart, weight);
    knn = {
      encoder,
      max_length: maxLength,
      bank: NEIGHBOUR_BANK_FILE,
      rows: bank.data.length / bank.dim,
      dim: bank.dim,
      sha256: sha256(bank.data),
      weight,
      mahalanobis_scale: neighbours.mahalanobisScale,
      knn_scale: neighbours.knnScale,
    };
  }
  // Scores from the saved (float32) parameters, so the threshold is the one serving will compare to;
  // validation texts are in the bank, so each is scored without itself.
  const scores = scopeScores(
    raw,
    k,
    { score: i.score, temperature },
    mahalanobis && mahalanobisOf(mahalanobis),
    neighbours && { ...neighbours, selfOffset: i.neighbours!.validationStart },
  );
  return {
    format: 1,
    temperature,
    score: i.score,
    threshold: i.score === 'none' ? 0 : thresholdKeepingRecall(scores, i.recall),
    recall: i.recall,
    fallback_label: i.fallbackLabel,
    graph: SCOPE_GRAPH_FILE,
    calibration: {
      split: i.calibrationSplit ?? 'validation',
      examples: y.length,
      ece_before: expectedCalibrationError(before, y, k),
      ece_after: expectedCalibrationError(after, y, k),
      brier_before: brierScore(before, y, k),
      brier_after: brierScore(after, y, k),
      nll_before: nllAtTemperature(raw.logits, y, k, 1),
      nll_after: nllAtTemperature(raw.logits, y, k, temperature),
    },
    ...(mahalanobis ? { mahalanobis } : {}),
    ...(knn ? { knn } : {}),
  };
}

/**
 * Writes scope.json, the rule's graph (scope.onnx) and, for `mahalanobis+knn`, the neighbour bank it was
 * fitted with (checked by digest).
 */
export function writeScope(dir: string, scope: ScopeFile, bank?: Float32Array): void {
  if (scope.knn) {
    if (!bank || sha256(bank) !== scope.knn.sha256)
      throw new Error('writeScope: the neighbour bank is not the one fitted');
    fs.writeFileSync(path.join(dir, scope.knn.bank), new Uint8Array(bank.buffer, bank.byteOffset, bank.byteLength));
  }
  const graph = scopeRuleGraph({
    score: scope.score,
    temperature: scope.temperature,
    mahalanobis: scope.mahalanobis && mahalanobisOf(scope.mahalanobis),
    knn: scope.knn && neighbourModelOf(scope.knn, bank!),
  });
  fs.writeFileSync(path.join(dir, SCOPE_GRAPH_FILE), graph);
  fs.writeFileSync(path.join(dir, SCOPE_FILE), `${JSON.stringify({ ...scope, graph: SCOPE_GRAPH_FILE })}\n`);
}

/** Removes a folder's scope (scope.json, its graph and neighbour bank), if it has one. */
export function removeScope(dir: string): void {
  for (const f of [SCOPE_FILE, SCOPE_GRAPH_FILE, NEIGHBOUR_BANK_FILE]) fs.rmSync(path.join(dir, f), { force: true });
}

/** The neighbour bank of a scope, refused when its size or digest is not the one scope.json names. */
export function readNeighbourBank(dir: string, knn: NonNullable<ScopeFile['knn']>): Float32Array {
  const file = path.join(dir, knn.bank);
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: the mahalanobis+knn score needs it`);
  const b = fs.readFileSync(file);
  const bank = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  if (bank.length !== knn.rows * knn.dim)
    throw new Error(`${file} holds ${bank.length} floats, not ${knn.rows} x ${knn.dim}`);
  if (sha256(bank) !== knn.sha256)
    throw new Error(`${file} is not the neighbour bank scope.json was fitted with (sha256 differs)`);
  return bank;
}

/** A folder's scope.json, validated; undefined for folders saved without one. */
export function readScope(dir: string): ScopeFile | undefined {
  const file = path.join(dir, SCOPE_FILE);
  if (!fs.existsSync(file)) return undefined;
  const parsed = ScopeFileSchema.safeParse(JSON.parse(fs.readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`${file} is not a valid scope file: ${parsed.error.message}`);
  const s = parsed.data;
  const needs =
    s.score === 'mahalanobis+knn' ? ['mahalanobis', 'knn'] : s.score === 'mahalanobis' ? ['mahalanobis'] : [];
  const missing = needs.filter((f) => s[f as 'mahalanobis' | 'knn'] === undefined);
  if (missing.length) throw new Error(`${file}: the ${s.score} score needs ${missing.join(' and ')}`);
  // A neighbour block another score does not read would load a second encoder for nothing.
  if (s.knn && s.score !== 'mahalanobis+knn') throw new Error(`${file}: a knn block belongs to mahalanobis+knn only`);
  return s;
}

export interface ScopeOverrides {
  threshold?: number;
  fallbackLabel?: string;
}

/** The pretrained encoder of a `mahalanobis+knn` scope, loaded (./view.ts), with its neighbour bank. */
export interface ScopeView {
  bank: Float32Array;
  embed(texts: readonly string[]): Promise<{ data: Float32Array; dim: number }>;
  /** The nearest bank row's similarity of embedded texts, on a faster engine than the plain loop. */
  nearest?(view: Float32Array): Promise<Float64Array>;
  release(): Promise<void>;
}

/**
 * The predictor with calibrated probabilities and its scope (the threshold and label possibly
 * overridden). A `mahalanobis+knn` scope needs its loaded `view`, released with the predictor.
 */
export function withScope(
  p: TextPredictor,
  s: ScopeFile,
  overrides: ScopeOverrides = {},
  view?: ScopeView,
): TextPredictor {
  const k = p.labels.length;
  const maha = s.mahalanobis && mahalanobisOf(s.mahalanobis);
  if (s.knn && !view) throw new Error('a mahalanobis+knn scope needs its pretrained encoder view');
  const knn = s.knn && view && neighbourModelOf(s.knn, view.bank);
  const judge = async (texts: readonly string[]): Promise<ScopeVerdicts> => {
    const raw = await p.predictRaw(texts);
    let withView = raw;
    if (knn) {
      const v = await view!.embed(texts);
      withView = { ...raw, view: v, ...(view!.nearest ? { nearest: await view!.nearest(v.data) } : {}) };
    }
    return {
      probs: Float32Array.from(softmaxWithTemperature(raw.logits, k, s.temperature)),
      scores: scopeScores(withView, k, s, maha, knn),
    };
  };
  return {
    ...p,
    release: async () => {
      try {
        await p.release();
      } finally {
        await view?.release();
      }
    },
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
