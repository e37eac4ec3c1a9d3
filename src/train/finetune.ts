/**
 * BERT fine-tuning: the training loop around TrainStep (ONNX Runtime forward + backward) and AdamW.
 * Linear warm-up then decay, global-norm clipping, dropout, class weights, optional freezing of the
 * embeddings and lower layers, early stopping on validation macro-F1, and deterministic seeds: the
 * data order depends on (seed, epoch) and the dropout masks on (seed, step), so a run resumed from a
 * checkpoint takes exactly the steps the uninterrupted run would have taken.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { classWeights as balancedWeights, encodeLabels, type LabelMap } from '../data/labels';
import { seededRandom, shuffled } from '../data/split';
import type { Example } from '../data/tasks';
import { crossEntropy, evaluateProbs, type Evaluation } from '../evaluate/metrics';
import { padBatch, type TextTokenizer } from '../features/tokenize';
import {
  buildInferGraph,
  classifierParamNames,
  paramLayer,
  paramShape,
  type DropoutRates,
  type Pooling,
} from '../engine/bert-graph';
import { loadEncoderCheckpoint, readEncoderConfig, type EncoderConfig } from '../engine/checkpoint';
import { OrtClassifier, predictEncoded } from '../engine/encoder-onnx';
import type { SessionOptions } from '../engine/ort-session';
import { TrainStep, type Params } from '../engine/train-step';
import { loadBest, loadCheckpoint, saveBest, saveCheckpoint, type EpochRecord, type TrainState } from './checkpoints';
import type { FineTuneConfig } from './config';
import { AdamW, clipScale, DEFAULT_ADAMW, linearSchedule } from './optimizer';

export type FineTuneEvent =
  | { type: 'start'; totalSteps: number; stepsPerEpoch: number; resumedFromStep?: number }
  | {
      type: 'step';
      epoch: number;
      globalStep: number;
      totalSteps: number;
      loss: number;
      lr: number;
      gradNorm: number;
      examplesPerSecond: number;
    }
  | { type: 'epoch'; record: EpochRecord; validation: Evaluation; improved: boolean }
  | { type: 'checkpoint'; globalStep: number; dir: string }
  | { type: 'early-stop'; epoch: number; bestEpoch: number };

export interface FineTuneInputs {
  /** Pretrained Hugging Face checkpoint folder. */
  checkpointDir: string;
  tokenizer: TextTokenizer;
  train: readonly Example[];
  validation: readonly Example[];
  labelMap: LabelMap;
  /** Digest of the training data (part of the resume fingerprint). */
  dataDigest?: string;
  /** Where checkpoints and best weights go; a matching checkpoint there is resumed. */
  workDir: string;
  config: FineTuneConfig;
  session?: SessionOptions;
  positiveLabel?: string;
  /**
   * Metrics sink (MLflow), called with what accumulated since the last call: every `flush.steps`
   * steps or `flush.seconds` seconds (so a live run's charts lag by little) and before each
   * checkpoint. After a resume, steps re-run from the checkpoint come again in step order: the sink
   * drops those it already delivered (see bert/train.ts), so none is logged twice.
   */
  logMetrics?: (entries: MetricEntry[]) => Promise<void>;
  /** How often the metrics sink is called during an epoch (default: every 10 steps or 15 s). */
  flush?: { steps: number; seconds: number };
  onEvent?: (e: FineTuneEvent) => void;
  /**
   * Awaited after each epoch's validation, once its metrics are delivered (a tuning trial reports to
   * its pruner here). Throwing stops training; the epoch's checkpoint is not written.
   */
  onEpochEnd?: (record: EpochRecord) => Promise<void>;
}

export interface MetricEntry {
  values: Record<string, number>;
  step: number;
}

export interface FineTuneResult {
  /** Weights of the best epoch. */
  params: Params;
  encoderConfig: EncoderConfig;
  state: TrainState;
  validation: Evaluation;
  resumedFromStep?: number;
}

export function dropoutRates(cfg: EncoderConfig, o?: Partial<DropoutRates>): DropoutRates {
  return {
    hidden: o?.hidden ?? cfg.hiddenDropout,
    attention: o?.attention ?? cfg.attentionDropout,
    classifier: o?.classifier ?? cfg.hiddenDropout,
  };
}

/** Parameters that train under the freezing settings. */
export function trainableParams(
  cfg: EncoderConfig,
  c: Pick<FineTuneConfig, 'pooling' | 'freezeEmbeddings' | 'freezeLayers'>,
): Set<string> {
  return new Set(
    classifierParamNames(cfg, c.pooling).filter((n) => {
      const layer = paramLayer(cfg, n);
      if (layer === -1) return !c.freezeEmbeddings && c.freezeLayers === 0;
      return layer >= c.freezeLayers;
    }),
  );
}

/**
 * Pretrained encoder weights (copied: training mutates them) plus a freshly initialised head,
 * N(0, 0.02) as BERT does.
 */
export function initialParams(
  checkpointDir: string,
  pooling: Pooling,
  numLabels: number,
  seed: number,
): { config: EncoderConfig; params: Params } {
  const { config, weights } = loadEncoderCheckpoint(checkpointDir);
  const rnd = seededRandom(seed ^ 0x5eed);
  const normal = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
  const params: Params = new Map();
  for (const name of classifierParamNames(config, pooling)) {
    const t = weights.get(name);
    const n = paramShape(config, name, numLabels).reduce((a, b) => a * b, 1);
    params.set(
      name,
      t
        ? t.data.slice()
        : name.endsWith('.bias')
          ? new Float32Array(n)
          : Float32Array.from({ length: n }, () => 0.02 * normal()),
    );
  }
  return { config, params };
}

/** Per-step dropout seed, independent of where a run was resumed. */
export const noiseSeed = (seed: number, step: number): number =>
  (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b)) >>> 0;

/** Order of the training examples in an epoch. */
export const epochOrder = (n: number, seed: number, epoch: number): number[] =>
  shuffled(
    Array.from({ length: n }, (_, i) => i),
    seededRandom(seed * 1009 + epoch * 7919 + 1),
  );

/**
 * An epoch's order with batches of similar length, as HF Trainer's LengthGroupedSampler: shuffle, cut
 * into mega-batches of 50 batches, sort each by length (longest first), then shuffle the batches, so
 * each batch pads little while the data order and batch order stay random across epochs.
 */
export function lengthGroupedOrder(
  lengths: readonly number[],
  batchSize: number,
  seed: number,
  epoch: number,
): number[] {
  const random = seededRandom(seed * 1009 + epoch * 7919 + 2);
  const order = epochOrder(lengths.length, seed, epoch);
  const mega = batchSize * 50;
  const batches: number[][] = [];
  for (let m = 0; m < order.length; m += mega) {
    const group = order.slice(m, m + mega).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
    for (let s = 0; s < group.length; s += batchSize) batches.push(group.slice(s, s + batchSize));
  }
  // Keep any short final batch last, so every other step sees a full batch.
  const full = batches.filter((b) => b.length === batchSize);
  const partial = batches.filter((b) => b.length !== batchSize);
  return [...shuffled(full, random), ...partial].flat();
}

/** Weighted one-hot targets [batch, k], normalised by the batch's total weight (PyTorch's weighted mean). */
export function targets(labels: readonly number[], k: number, weights?: readonly number[]): Float32Array {
  const w = labels.map((y) => weights?.[y] ?? 1);
  const total = w.reduce((a, b) => a + b, 0) || 1;
  const t = new Float32Array(labels.length * k);
  labels.forEach((y, r) => (t[r * k + y] = w[r]! / total));
  return t;
}

/** Probabilities for pre-encoded texts, in length-sorted batches (less padding), returned in input order. */

export function fingerprint(
  inp: Pick<FineTuneInputs, 'checkpointDir' | 'dataDigest' | 'config' | 'labelMap'>,
  trainSize: number,
): string {
  const { checkpointEverySteps: _c, evalBatchSize: _e, ...determining } = inp.config;
  return crypto
    .createHash('sha256')
    .update(
      JSON.stringify({
        c: determining,
        d: inp.dataDigest ?? '',
        n: trainSize,
        ckpt: fs.realpathSync(inp.checkpointDir),
        labels: inp.labelMap.labels,
      }),
    )
    .digest('hex')
    .slice(0, 16);
}

export async function fineTune(inp: FineTuneInputs): Promise<FineTuneResult> {
  const c = inp.config;
  const k = inp.labelMap.labels.length;
  const tok = inp.tokenizer;
  const encode = (xs: readonly Example[]) => xs.map((e) => tok.encode(e.text, c.maxLength));
  const trainIds = encode(inp.train);
  const valIds = encode(inp.validation);
  const trainLabels = encodeLabels(
    inp.train.map((e) => e.label),
    inp.labelMap,
  );
  const weights = c.classWeights ? balancedWeights(trainLabels, k) : undefined;

  const fp = fingerprint(inp, inp.train.length);
  const opt = new AdamW({ ...DEFAULT_ADAMW, learningRate: c.learningRate, weightDecay: c.weightDecay });
  const resumed = loadCheckpoint(inp.workDir);
  if (resumed && resumed.state.fingerprint !== fp)
    throw new Error(
      `${inp.workDir} holds a checkpoint of a different run (settings, data or base model differ); start over with ` +
        `--fresh (make finetune ARGS=--fresh) or choose another --work-dir`,
    );
  if (resumed) opt.load(resumed.opt);
  // A resumed run takes its weights from the checkpoint; only a fresh one reads the pretrained weights.
  const { config: encCfg, params } = resumed
    ? { config: readEncoderConfig(inp.checkpointDir), params: resumed.params }
    : initialParams(inp.checkpointDir, c.pooling, k, c.seed);
  const state: TrainState = resumed?.state ?? {
    version: 1,
    fingerprint: fp,
    epoch: 0,
    stepInEpoch: 0,
    globalStep: 0,
    bestMetric: -1,
    bestEpoch: -1,
    badEpochs: 0,
    stopped: false,
    history: [],
    lossCurve: [],
    trainSeconds: 0,
    examples: 0,
  };
  const resumedFromStep = resumed ? state.globalStep : undefined;
  /** Validation of the best weights, when this process evaluated them (else recomputed at the end). */
  let bestValidation: Evaluation | undefined;

  const trainable = trainableParams(encCfg, c);
  const step = await TrainStep.create(
    { config: encCfg, pooling: c.pooling, numLabels: k, trainable, dropout: dropoutRates(encCfg, c.dropout) },
    inp.session,
  );
  const paramShapes = new Map(classifierParamNames(encCfg, c.pooling).map((n) => [n, paramShape(encCfg, n, k)]));
  const evaluator = await OrtClassifier.create(
    buildInferGraph({ config: encCfg, pooling: c.pooling, numLabels: k }),
    encCfg,
    k,
    { ...inp.session, paramShapes },
  );
  const stepsPerEpoch = Math.ceil(inp.train.length / c.batchSize);
  const totalSteps = stepsPerEpoch * c.epochs;
  const warmup = Math.round(c.warmupRatio * totalSteps);
  inp.onEvent?.({ type: 'start', totalSteps, stepsPerEpoch, resumedFromStep });
  let pending: MetricEntry[] = [];
  const flushEvery = inp.flush ?? { steps: 10, seconds: 15 };
  let lastFlush = Date.now();
  const flush = async () => {
    if (pending.length) await inp.logMetrics?.(pending);
    pending = [];
    lastFlush = Date.now();
  };
  const checkpoint = async () => {
    await flush();
    inp.onEvent?.({
      type: 'checkpoint',
      globalStep: state.globalStep,
      dir: saveCheckpoint(inp.workDir, state, params, opt.state),
    });
  };

  try {
    while (state.epoch < c.epochs && !state.stopped) {
      const epochStart = Date.now();
      const order = c.groupByLength
        ? lengthGroupedOrder(
            trainIds.map((ids) => ids.length),
            c.batchSize,
            c.seed,
            state.epoch,
          )
        : epochOrder(inp.train.length, c.seed, state.epoch);
      let lossSum = 0;
      let lossN = 0;
      for (let s = state.stepInEpoch; s < stepsPerEpoch; s++) {
        const t0 = Date.now();
        const idx = order.slice(s * c.batchSize, (s + 1) * c.batchSize);
        const batch = padBatch(
          idx.map((i) => trainIds[i]!),
          tok.padId,
          { maxLength: c.maxLength },
        );
        const r = await step.run(
          params,
          batch,
          targets(
            idx.map((i) => trainLabels[i]!),
            k,
            weights,
          ),
          noiseSeed(c.seed, state.globalStep),
        );
        if (!Number.isFinite(r.loss))
          throw new Error(`training diverged: loss ${r.loss} at step ${state.globalStep} (lower the learning rate)`);
        const lr = c.learningRate * linearSchedule(state.globalStep, warmup, totalSteps);
        opt.update(params, r.grads, r.rowGrads, lr, clipScale(r.gradNorm, c.maxGradNorm));
        state.globalStep++;
        state.stepInEpoch = s + 1;
        const seconds = (Date.now() - t0) / 1000;
        state.trainSeconds += seconds;
        state.examples += idx.length;
        lossSum += r.loss;
        lossN++;
        state.lossCurve.push([state.globalStep, r.loss]);
        const eps = idx.length / seconds;
        pending.push({
          values: { train_loss: r.loss, learning_rate: lr, grad_norm: r.gradNorm, examples_per_second: eps },
          step: state.globalStep,
        });
        inp.onEvent?.({
          type: 'step',
          epoch: state.epoch,
          globalStep: state.globalStep,
          totalSteps,
          loss: r.loss,
          lr,
          gradNorm: r.gradNorm,
          examplesPerSecond: eps,
        });
        if (c.checkpointEverySteps > 0 && state.globalStep % c.checkpointEverySteps === 0 && s + 1 < stepsPerEpoch)
          await checkpoint();
        else if (pending.length >= flushEvery.steps || Date.now() - lastFlush >= flushEvery.seconds * 1000)
          await flush();
      }
      // End of epoch: validate, keep the best weights, decide on early stopping, checkpoint.
      const valProbs = await predictEncoded(evaluator, valIds, tok.padId, c.maxLength, c.evalBatchSize, params);
      const validation = evaluateProbs(valProbs, inp.validation, inp.labelMap, inp.positiveLabel);
      const valLoss = crossEntropy(
        valProbs,
        encodeLabels(
          inp.validation.map((e) => e.label),
          inp.labelMap,
        ),
        k,
        weights,
      );
      const improved = validation.macro.f1 > state.bestMetric;
      if (improved) {
        state.bestMetric = validation.macro.f1;
        state.bestEpoch = state.epoch;
        state.badEpochs = 0;
        bestValidation = validation;
        saveBest(inp.workDir, params);
      } else state.badEpochs++;
      const record: EpochRecord = {
        epoch: state.epoch + 1,
        trainLoss: lossN ? lossSum / lossN : Number.NaN,
        valMacroF1: validation.macro.f1,
        valAccuracy: validation.accuracy,
        valLoss,
        seconds: (Date.now() - epochStart) / 1000,
      };
      state.history.push(record);
      // Per-epoch curves live under epoch/; the best epoch's val_* scalars are logged once, with the model.
      pending.push({
        values: {
          epoch: record.epoch,
          'epoch/val_macro_f1': validation.macro.f1,
          'epoch/val_accuracy': validation.accuracy,
          'epoch/val_loss': valLoss,
          ...(Number.isFinite(record.trainLoss) ? { 'epoch/train_loss': record.trainLoss } : {}),
        },
        step: state.globalStep,
      });
      inp.onEvent?.({ type: 'epoch', record, validation, improved });
      if (inp.onEpochEnd) {
        await flush();
        await inp.onEpochEnd(record);
      }
      state.epoch++;
      state.stepInEpoch = 0;
      if (c.patience > 0 && state.badEpochs >= c.patience && state.epoch < c.epochs) {
        state.stopped = true;
        inp.onEvent?.({ type: 'early-stop', epoch: state.epoch, bestEpoch: state.bestEpoch + 1 });
      }
      await checkpoint();
    }
    const best = loadBest(inp.workDir);
    const validation =
      bestValidation ??
      evaluateProbs(
        await predictEncoded(evaluator, valIds, tok.padId, c.maxLength, c.evalBatchSize, best),
        inp.validation,
        inp.labelMap,
        inp.positiveLabel,
      );
    return { params: best, encoderConfig: encCfg, state, validation, resumedFromStep };
  } finally {
    await step.release();
    await evaluator.release();
  }
}
