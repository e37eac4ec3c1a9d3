/**
 * Trains a retraining challenger of the same kind as the promoted run, with its logged
 * hyper-parameters and the same training function the notebooks and scripts use (the `model`
 * param picks it): TF-IDF + logistic regression, frozen encoder + logistic regression, or BERT
 * fine-tuning. A model kind this does not know is an error, never a silent switch to another kind.
 */
import path from 'node:path';
import type { TaskSpec } from '../data/tasks';
import type { Evaluation } from '../evaluate/metrics';
import { TextTokenizer } from '../features/tokenize';
import type { ActiveRun } from '../mlflow';
import { OrtEncoder } from '../model/encoder-onnx';
import { baselineConfigFromParams, runBaseline, type PreparedData } from '../train/baseline-run';
import { fineTuneConfigFromParams, runFineTune } from '../train/bert-run';
import { runFrozenEncoder } from '../train/frozen-encoder';

export interface ChallengerPaths {
  /** Folder holding pretrained checkpoints by name (models/pretrained). */
  pretrained: string;
  /** Work folder for resumable fine-tuning checkpoints. */
  workDir: string;
}

export const RETRAINABLE = ['tfidf-logreg', 'frozen-encoder-logreg', 'bert-finetune'] as const;

export async function trainChallenger(spec: TaskSpec<any>, data: PreparedData, hyper: Record<string, string>, run: ActiveRun, paths: ChallengerPaths): Promise<{ test: Evaluation }> {
  const kind = hyper.model ?? 'tfidf-logreg';
  const checkpointDir = () => {
    if (!hyper.checkpoint) throw new Error(`the promoted ${kind} run has no checkpoint param: cannot retrain it`);
    return path.join(paths.pretrained, hyper.checkpoint);
  };
  switch (kind) {
    case 'tfidf-logreg':
      return runBaseline(spec, data, baselineConfigFromParams(hyper), run, { progress: false });
    case 'frozen-encoder-logreg': {
      const dir = checkpointDir();
      const encoder = await OrtEncoder.fromCheckpoint(dir);
      try {
        return await runFrozenEncoder(spec, data, { tokenizer: await TextTokenizer.fromDir(dir), encoder, checkpointName: hyper.checkpoint!, checkpointDir: dir, maxLength: Number(hyper.max_length ?? 64), epochs: Number(hyper.epochs ?? 40) }, run);
      } finally {
        await encoder.release();
      }
    }
    case 'bert-finetune': {
      const dir = checkpointDir();
      return runFineTune(spec, data, { tokenizer: await TextTokenizer.fromDir(dir), checkpointDir: dir, checkpointName: hyper.checkpoint!, workDir: paths.workDir, config: fineTuneConfigFromParams(hyper) }, run);
    }
    default:
      throw new Error(`make retrain does not know how to train a "${kind}" model (known: ${RETRAINABLE.join(', ')})`);
  }
}
