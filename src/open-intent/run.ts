/**
 * One run of the open intent protocol (./open-intent.ts) with a real model: train a model kind on the
 * known intents, score validation and test with every out-of-scope score the model supports (MSP on
 * calibrated probabilities, energy, Mahalanobis on pooled features fitted on train, and Mahalanobis plus
 * the nearest training text in the pretrained encoder's space), choose on validation, report on test.
 * Each run keeps its model and result in its own work folder, so an interrupted `make eval-open` skips
 * finished runs and a BERT fine-tune resumes from its checkpoint.
 */
import fs from 'node:fs';
import path from 'node:path';
import { encodeLabels } from '../data/labels';
import type { PreparedData } from '../data/prepare';
import { seededRandom, shuffled } from '../data/split';
import type { AnyTaskSpec, Example } from '../data/tasks';
import { TextTokenizer } from '../features/tokenize';
import { OrtEncoder } from '../engine/encoder-onnx';
import { loadBertPredictor } from '../kinds/bert/model';
import { runFineTune } from '../kinds/bert/train';
import { loadFrozenPredictor, saveFrozenModel } from '../kinds/frozen-encoder/model';
import { FROZEN_HEAD } from '../kinds/frozen-encoder/recipe';
import { runFrozenEncoder } from '../kinds/frozen-encoder/train';
import { DEFAULT_BASELINE, loadTfidfPredictor, saveBaseline } from '../kinds/tfidf-logreg/model';
import { runBaseline } from '../kinds/tfidf-logreg/train';
import type { RawOutputs, TextPredictor } from '../kinds/types';
import { fitNeighbourModel, scopeScores, scoresAvailable, type NeighbourModel } from '../kinds/scope/rule';
import { SCOPE_CHOICE } from '../kinds/scope/choice';
import { checkpointEmbedder } from '../kinds/scope/view';
import type { FineTuneConfig } from '../train/config';
import type { FineTuneEvent } from '../train/finetune';
import { DEFAULT_FINETUNE } from '../train/recipe';
import {
  expectedCalibrationError,
  fitTemperature,
  reliabilityBins,
  softmaxWithTemperature,
  type ReliabilityBin,
} from '../evaluate/calibration';
import { argmaxRows } from '../estimators/logreg';
import { fitMahalanobis } from '../kinds/scope/scores';
import { knownIntents, openIntentSplits, scoreOpenIntent, type OpenIntentResult } from './protocol';

export const OPEN_MODELS = ['tfidf', 'frozen', 'bert'] as const;
export type OpenModel = (typeof OPEN_MODELS)[number];

export interface OpenRunSpec {
  spec: AnyTaskSpec;
  data: PreparedData;
  model: OpenModel;
  knownRatio: number;
  seed: number;
  recall: number;
  /** The pretrained checkpoint folder (frozen, bert). */
  checkpointDir: string;
  /** This run's folder: model, checkpoints, result.json. */
  workDir: string;
  finetune?: Partial<FineTuneConfig>;
  /** Train on a seeded subset of this many known-intent examples (quick runs). */
  maxTrain?: number;
  onFineTuneEvent?: (e: FineTuneEvent) => void;
}

/** Results written before this format (before `mahalanobis+knn`) are scored again; trained models are kept. */
const RESULT_FORMAT = 2;

export interface OpenRunResult extends OpenIntentResult {
  format: number;
  /** What the scores depend on besides the trained model: a result made with other values is scored again. */
  scoring: { neighbourWeight: number; viewMaxLength: number };
  model: OpenModel;
  knownRatio: number;
  seed: number;
  knownIntents: string[];
  sizes: { train: number; valKnown: number; valUnknown: number; testKnown: number; testUnknown: number };
  temperature: number;
  /** ECE of the known test intents' probabilities, before and after temperature scaling. */
  testEce: { before: number; after: number };
  trainSeconds: number;
  /** Reliability diagrams of the known test intents, before and after temperature scaling. */
  reliability?: { before: ReliabilityBin[]; after: ReliabilityBin[] };
  /** Every score on validation (known) and test (known, unknown): histograms and threshold tables. */
  scoreValues?: Record<string, { valKnown: number[]; testKnown: number[]; testUnknown: number[] }>;
}

/** Trains `model` on the known intents; returns the saved folder's predictor. */
async function trainKnownOnly(r: OpenRunSpec, data: PreparedData, modelDir: string): Promise<TextPredictor> {
  if (r.model === 'tfidf') {
    if (!fs.existsSync(path.join(modelDir, 'model.json'))) {
      const { model } = await runBaseline(r.spec, data, DEFAULT_BASELINE, undefined, { progress: false });
      saveBaseline(model, modelDir);
    }
    return loadTfidfPredictor(modelDir);
  }
  if (r.model === 'frozen') {
    if (!fs.existsSync(path.join(modelDir, 'head.json'))) {
      const tokenizer = await TextTokenizer.fromDir(r.checkpointDir);
      const encoder = await OrtEncoder.fromCheckpoint(r.checkpointDir);
      try {
        const o = {
          tokenizer,
          encoder,
          checkpointName: path.basename(r.checkpointDir),
          checkpointDir: r.checkpointDir,
          maxLength: FROZEN_HEAD.maxLength,
          epochs: FROZEN_HEAD.epochs,
        };
        const { model } = await runFrozenEncoder(r.spec, data, o);
        fs.mkdirSync(modelDir, { recursive: true });
        saveFrozenModel(model, r.checkpointDir, o.maxLength, modelDir);
      } finally {
        await encoder.release();
      }
    }
    return loadFrozenPredictor(modelDir);
  }
  const bertWork = path.join(r.workDir, 'bert');
  if (!fs.existsSync(path.join(bertWork, 'model', 'model.onnx'))) {
    await runFineTune(r.spec, data, {
      tokenizer: await TextTokenizer.fromDir(r.checkpointDir),
      checkpointDir: r.checkpointDir,
      checkpointName: path.basename(r.checkpointDir),
      workDir: bertWork,
      config: { ...DEFAULT_FINETUNE, seed: r.seed, ...r.finetune },
      quantize: false,
      onEvent: r.onFineTuneEvent,
    });
  }
  return loadBertPredictor(path.join(bertWork, 'model'), {});
}

const round6 = (x: number) => Number(x.toPrecision(6));

type View = { data: Float32Array; dim: number };

/** Validation, test and train texts in the pretrained encoder's space (`texts` in that order). */
async function pretrainedViews(
  r: OpenRunSpec,
  own: { val: RawOutputs; test: RawOutputs; train: View },
  texts: [readonly string[], readonly string[], readonly string[]],
): Promise<{ val: View; test: View; train: View }> {
  if (r.model === 'frozen') return { val: own.val.features!, test: own.test.features!, train: own.train };
  const embedder = await checkpointEmbedder(r.checkpointDir, SCOPE_CHOICE.viewMaxLength);
  try {
    return {
      val: await embedder.embed(texts[0]),
      test: await embedder.embed(texts[1]),
      train: await embedder.embed(texts[2]),
    };
  } finally {
    await embedder.release();
  }
}

/** Runs (or reads back, when its result.json exists) one known-ratio/seed run of the protocol. */
export async function runOpenIntent(r: OpenRunSpec): Promise<OpenRunResult> {
  const resultFile = path.join(r.workDir, 'result.json');
  if (fs.existsSync(resultFile)) {
    const saved = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as OpenRunResult;
    // A result made for another recall or scoring choice is scored again (the trained model is kept).
    const same =
      saved.format === RESULT_FORMAT &&
      saved.recall === r.recall &&
      saved.scoring?.neighbourWeight === SCOPE_CHOICE.neighbourWeight &&
      saved.scoring.viewMaxLength === SCOPE_CHOICE.viewMaxLength;
    if (same) return saved;
  }
  fs.mkdirSync(r.workDir, { recursive: true });
  const known = knownIntents(r.data.labelMap.labels, r.knownRatio, r.seed);
  const s = openIntentSplits(r.data, known);
  const k = known.length;
  const ids = (xs: readonly Example[]) =>
    encodeLabels(
      xs.map((e) => e.label),
      s.labelMap,
    );
  const data: PreparedData = {
    train: r.maxTrain !== undefined ? shuffled(s.train, seededRandom(r.seed)).slice(0, r.maxTrain) : s.train,
    validation: s.validation.known,
    test: s.test.known,
    labelMap: s.labelMap,
  };
  const t0 = Date.now();
  const p = await trainKnownOnly(r, data, path.join(r.workDir, 'model'));
  const trainSeconds = (Date.now() - t0) / 1000;
  try {
    const texts = (xs: readonly Example[]) => xs.map((e) => e.text);
    const nValKnown = s.validation.known.length;
    const nTestKnown = s.test.known.length;
    const val = await p.predictRaw(texts([...s.validation.known, ...s.validation.unknown]));
    const test = await p.predictRaw(texts([...s.test.known, ...s.test.unknown]));
    const yValKnown = ids(s.validation.known);
    const yTestKnown = ids(s.test.known);
    const temperature = fitTemperature(val.logits.subarray(0, nValKnown * k), yValKnown, k);
    const split = (xs: Float64Array, nKnown: number) => ({
      known: xs.subarray(0, nKnown),
      unknown: xs.subarray(nKnown),
    });
    const both = (f: (raw: RawOutputs, isValidation: boolean) => Float64Array) => ({
      validation: split(f(val, true), nValKnown),
      test: split(f(test, false), nTestKnown),
    });
    // Mahalanobis needs the training split's pooled features; models without features skip it.
    const trainFeatures = val.features ? (await p.predictRaw(texts(data.train))).features! : undefined;
    const maha = trainFeatures && fitMahalanobis(trainFeatures.data, ids(data.train), k, trainFeatures.dim);
    // mahalanobis+knn: every split in the pretrained encoder's space. The frozen model's features are
    // that space already; a fine-tuned model's base checkpoint embeds the texts as a served model's
    // scope-encoder/ does. The bank is train + known validation texts, as a served model's is train +
    // validation; known validation texts are scored leave-one-out (the unknown ones are not in it).
    let knn: NeighbourModel | undefined;
    if (maha && trainFeatures) {
      const views = await pretrainedViews(r, { val, test, train: trainFeatures }, [
        texts([...s.validation.known, ...s.validation.unknown]),
        texts([...s.test.known, ...s.test.unknown]),
        texts(data.train),
      ]);
      val.view = views.val;
      test.view = views.test;
      const valKnown = {
        logits: val.logits.subarray(0, nValKnown * k),
        features: { data: val.features!.data.subarray(0, nValKnown * val.features!.dim), dim: val.features!.dim },
        view: { data: views.val.data.subarray(0, nValKnown * views.val.dim), dim: views.val.dim },
      };
      const bank = new Float32Array(views.train.data.length + valKnown.view.data.length);
      bank.set(views.train.data);
      bank.set(valKnown.view.data, views.train.data.length);
      const bankView = { data: bank, dim: views.train.dim };
      knn = fitNeighbourModel(valKnown, maha, bankView, data.train.length, SCOPE_CHOICE.neighbourWeight);
    }
    // The scores exactly as a served model computes them (src/kinds/scope/rule.ts), one per score it could
    // be saved with.
    const scores = Object.fromEntries(
      scoresAvailable(val).map((score) => [
        score,
        both((raw, isValidation) =>
          scopeScores(
            raw,
            k,
            { score, temperature },
            maha,
            knn && isValidation ? { ...knn, selfOffset: data.train.length } : knn,
          ),
        ),
      ]),
    );
    const testTop = argmaxRows(test.logits, k);
    const result = scoreOpenIntent({
      scores,
      testTop: { known: testTop.slice(0, nTestKnown), unknown: testTop.slice(nTestKnown) },
      testKnownY: yTestKnown,
      classes: k,
      recall: r.recall,
    });
    const knownLogits = test.logits.subarray(0, nTestKnown * k);
    const out: OpenRunResult = {
      format: RESULT_FORMAT,
      scoring: { neighbourWeight: SCOPE_CHOICE.neighbourWeight, viewMaxLength: SCOPE_CHOICE.viewMaxLength },
      ...result,
      model: r.model,
      knownRatio: r.knownRatio,
      seed: r.seed,
      knownIntents: known,
      sizes: {
        train: data.train.length,
        valKnown: nValKnown,
        valUnknown: s.validation.unknown.length,
        testKnown: nTestKnown,
        testUnknown: s.test.unknown.length,
      },
      temperature,
      testEce: {
        before: expectedCalibrationError(softmaxWithTemperature(knownLogits, k, 1), yTestKnown, k),
        after: expectedCalibrationError(softmaxWithTemperature(knownLogits, k, temperature), yTestKnown, k),
      },
      trainSeconds,
      reliability: {
        before: reliabilityBins(softmaxWithTemperature(knownLogits, k, 1), yTestKnown, k),
        after: reliabilityBins(softmaxWithTemperature(knownLogits, k, temperature), yTestKnown, k),
      },
      scoreValues: Object.fromEntries(
        Object.entries(scores).map(([name, v]) => [
          name,
          {
            valKnown: Array.from(v.validation.known, round6),
            testKnown: Array.from(v.test.known, round6),
            testUnknown: Array.from(v.test.unknown, round6),
          },
        ]),
      ),
    };
    fs.writeFileSync(resultFile, `${JSON.stringify(out, null, 2)}\n`);
    return out;
  } finally {
    await p.release();
  }
}
