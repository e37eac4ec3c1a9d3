/**
 * What one tuning trial trains, per model kind: the kind's own training, one epoch at a time, with
 * the validation macro-F1 reported after each epoch (Optuna's pruner may stop it there). A trial
 * that completes is evaluated and logged exactly like a `make baseline` run, so it can be promoted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { classWeights, encodeLabels } from '../data/labels';
import { seededRandom, shuffled } from '../data/split';
import type { PreparedData } from '../data/prepare';
import type { AnyTaskSpec } from '../data/tasks';
import { evaluate, type Evaluation } from '../evaluate/metrics';
import { argmaxRows, predictProba } from '../estimators/logreg';
import { TextTokenizer } from '../features/tokenize';
import { OrtEncoder } from '../engine/encoder-onnx';
import type { ActiveRun } from '../mlflow';
import { baselineEpochs, evaluateBaseline, type FeatureCache } from '../kinds/tfidf-logreg/model';
import { baselineParams, logBaselineRun } from '../kinds/tfidf-logreg/train';
import { dense } from '../kinds/frozen-encoder/model';
import { frozenHeadEpochs } from '../kinds/frozen-encoder/recipe';
import {
  embedSplits,
  evaluateFrozenHead,
  frozenParams,
  logFrozenRun,
  type FrozenEmbeddings,
} from '../kinds/frozen-encoder/train';
import { fineTuneParams, runFineTune, type BertRunOptions } from '../kinds/bert/train';
import type { SessionOptions } from '../engine/ort-session';
import type { FineTuneEvent } from '../train/finetune';
import type { TrialParams } from './space';
import { BERT_TUNING, FROZEN_TUNING, TFIDF_TUNING, type TuningSpace } from './spaces';

export type TrialOutcome =
  { pruned: true; value: number; step: number } | { pruned: false; value: number; testAccuracy: number };

export interface TrialContext {
  /** Optuna's trial number. */
  number: number;
  run: ActiveRun;
  /** Reports the validation score after `step` epochs; resolves true when the pruner stops the trial. */
  report: (step: number, value: number) => Promise<boolean>;
}

/** A model kind made tunable: its space, the params a trial's run logs, and one trial's training. */
export interface Objective {
  model: TunableModel;
  tuning: TuningSpace<unknown>;
  runParams: (p: TrialParams) => Record<string, string | number | boolean>;
  /** The trial logs its own per-epoch validation metrics (fine-tuning does, at its optimizer steps). */
  logsEpochMetrics?: boolean;
  train: (p: TrialParams, ctx: TrialContext) => Promise<TrialOutcome>;
  /**
   * Kinds whose trials train on a budget (a data fraction): trains params `p` on the whole training
   * split into `run`, the study's retrain-best child run.
   */
  retrainOnAllData?: (p: TrialParams, run: ActiveRun, workDir: string) => Promise<{ test: Evaluation }>;
  release: () => Promise<void>;
}

export const TUNABLE_MODELS = ['tfidf', 'frozen', 'bert'] as const;
export type TunableModel = (typeof TUNABLE_MODELS)[number];

const macroF1 = (probs: Float32Array, yTrue: readonly number[], labels: readonly string[]): number =>
  evaluate(yTrue, argmaxRows(probs, labels.length), labels).macro.f1;

/** TF-IDF + logistic regression; vectorised texts are cached per vectoriser config across trials. */
export function tfidfObjective(spec: AnyTaskSpec, data: PreparedData): Objective {
  const cache: FeatureCache = new Map();
  const labels = data.labelMap.labels;
  const valYs = encodeLabels(
    data.validation.map((e) => e.label),
    data.labelMap,
  );
  const weights = classWeights(
    encodeLabels(
      data.train.map((e) => e.label),
      data.labelMap,
    ),
    labels.length,
  );
  return {
    model: 'tfidf',
    tuning: TFIDF_TUNING,
    runParams: (p) => baselineParams(spec.name, TFIDF_TUNING.config(p), data.trainDigest),
    release: async () => cache.clear(),
    async train(p, ctx) {
      const config = TFIDF_TUNING.config(p);
      const curve = { x: [] as number[], y: [] as number[] };
      const valCurve = { x: [] as number[], y: [] as number[] };
      const t0 = Date.now();
      const epochs = baselineEpochs(data.train, data.labelMap, weights, config, data.validation, cache);
      for (;;) {
        const r = epochs.next();
        if (r.done === true) {
          const model = r.value;
          const trainSeconds = (Date.now() - t0) / 1000;
          const validation = evaluateBaseline(model, data.validation, spec.positiveLabel);
          const test = evaluateBaseline(model, data.test, spec.positiveLabel);
          await logBaselineRun(ctx.run, spec, data, { model, validation, test, curve, valCurve, trainSeconds });
          return { pruned: false, value: validation.macro.f1, testAccuracy: test.accuracy };
        }
        const e = r.value;
        curve.x.push(e.epoch);
        curve.y.push(e.loss);
        if (e.valLoss !== undefined) {
          valCurve.x.push(e.epoch);
          valCurve.y.push(e.valLoss);
        }
        const f1 = macroF1(e.valProbs!, valYs, labels);
        if (await ctx.report(e.epoch, f1)) return { pruned: true, value: f1, step: e.epoch };
      }
    },
  };
}

export interface FrozenObjectiveOptions {
  checkpointName: string;
  checkpointDir: string;
  maxLength: number;
  onProgress?: (split: string, done: number, total: number) => void;
}

/** Frozen encoder + head: the splits are embedded once for the whole study, then each trial fits a head. */
export async function frozenObjective(
  spec: AnyTaskSpec,
  data: PreparedData,
  o: FrozenObjectiveOptions,
): Promise<Objective> {
  const encoder = await OrtEncoder.fromCheckpoint(o.checkpointDir);
  let emb: FrozenEmbeddings;
  try {
    emb = await embedSplits(data, {
      tokenizer: await TextTokenizer.fromDir(o.checkpointDir),
      encoder,
      maxLength: o.maxLength,
      onProgress: o.onProgress,
    });
  } finally {
    await encoder.release();
  }
  const labels = data.labelMap.labels;
  const valYs = encodeLabels(
    data.validation.map((e) => e.label),
    data.labelMap,
  );
  const valXs = emb.validation.map(dense);
  return {
    model: 'frozen',
    tuning: FROZEN_TUNING,
    runParams: (p) => frozenParams(spec.name, o.checkpointName, o.maxLength, FROZEN_TUNING.config(p), data.trainDigest),
    release: async () => {},
    async train(p, ctx) {
      const head = FROZEN_TUNING.config(p);
      const t0 = Date.now();
      const epochs = frozenHeadEpochs(emb.train, data.train, data.labelMap, undefined, head);
      for (;;) {
        const r = await epochs.next();
        if (r.done === true) {
          const model = r.value;
          const trainSeconds = (Date.now() - t0) / 1000;
          const validation = evaluateFrozenHead(model, emb.validation, data.validation, spec.positiveLabel);
          const test = evaluateFrozenHead(model, emb.test, data.test, spec.positiveLabel);
          // Embedding time belongs to the study (once), not to each trial.
          const result = { model, validation, test, embedSeconds: 0, trainSeconds, texts: 0 };
          await logFrozenRun(ctx.run, spec, data, result, o);
          return { pruned: false, value: validation.macro.f1, testAccuracy: test.accuracy };
        }
        const f1 = macroF1(predictProba(r.value.model, valXs), valYs, labels);
        if (await ctx.report(r.value.epoch, f1)) return { pruned: true, value: f1, step: r.value.epoch };
      }
    },
  };
}

export interface BertObjectiveOptions {
  checkpointName: string;
  checkpointDir: string;
  /** Each trial's checkpoints go to <workRoot>/trial-<n>, removed when the trial ends. */
  workRoot: string;
  /**
   * Budget: trials fine-tune on this seeded share of the training split (validation stays whole), so
   * many configurations fit; retrain the chosen one on all data (`make tune ... ARGS=--retrain-best`).
   */
  dataFraction?: number;
  session?: SessionOptions;
  onEvent?: (e: FineTuneEvent) => void;
}

class TrialPruned extends Error {
  constructor(
    readonly step: number,
    readonly value: number,
  ) {
    super(`pruned after epoch ${step}`);
  }
}

/** The training share a data-fraction budget leaves (seeded, the same for every trial). */
export function budgetTrain(data: PreparedData, fraction = 1): PreparedData {
  if (!(fraction > 0 && fraction <= 1)) throw new Error(`data fraction ${fraction} is not in (0, 1]`);
  if (fraction === 1) return data;
  const n = Math.max(1, Math.round(data.train.length * fraction));
  // A subset is not the split its digest names: the runs record the fraction instead.
  return { ...data, train: shuffled(data.train, seededRandom(17)).slice(0, n), trainDigest: undefined };
}

/** BERT fine-tuning: one full `make finetune` run per trial, validated and reported every epoch. */
export async function bertObjective(
  spec: AnyTaskSpec,
  data: PreparedData,
  o: BertObjectiveOptions,
): Promise<Objective> {
  const tokenizer = await TextTokenizer.fromDir(o.checkpointDir);
  const fraction = o.dataFraction ?? 1;
  const trialData = budgetTrain(data, fraction);
  // How a trial's params become a fine-tune, shared by the trials and the retrain on all data.
  const fineTuneOf = (p: TrialParams, workDir: string, extra: Partial<BertRunOptions> = {}): BertRunOptions => ({
    tokenizer,
    checkpointDir: o.checkpointDir,
    checkpointName: o.checkpointName,
    workDir,
    config: BERT_TUNING.config(p),
    session: o.session,
    onEvent: o.onEvent,
    ...extra,
  });
  return {
    model: 'bert',
    tuning: BERT_TUNING,
    logsEpochMetrics: true,
    runParams: (p) => ({
      ...fineTuneParams(spec.name, o.checkpointName, BERT_TUNING.config(p), trialData.trainDigest),
      data_fraction: fraction,
    }),
    release: async () => {},
    retrainOnAllData: (p, run, workDir) => runFineTune(spec, data, fineTuneOf(p, workDir), run),
    async train(p, ctx) {
      const workDir = path.join(o.workRoot, `trial-${ctx.number}`);
      fs.rmSync(workDir, { recursive: true, force: true });
      try {
        const r = await runFineTune(
          spec,
          trialData,
          fineTuneOf(p, workDir, {
            quantize: false,
            onEpochEnd: async (record) => {
              if (await ctx.report(record.epoch, record.valMacroF1))
                throw new TrialPruned(record.epoch, record.valMacroF1);
            },
          }),
          ctx.run,
        );
        return { pruned: false, value: r.validation.macro.f1, testAccuracy: r.test.accuracy };
      } catch (e) {
        if (e instanceof TrialPruned) return { pruned: true, value: e.value, step: e.step };
        throw e;
      } finally {
        fs.rmSync(workDir, { recursive: true, force: true });
      }
    },
  };
}
