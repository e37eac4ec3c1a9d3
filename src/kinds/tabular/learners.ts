/**
 * The bridge to the Python learners (src/py/tabular_models.py, run in the project venv): matrices
 * go over as float32 files, a JSON request says what to fit, and the answer (out-of-fold
 * probabilities, ONNX files, the library's own probabilities) is validated before it is used.
 * Learners are fitted where they are strongest (scikit-learn, LightGBM); everything else stays here.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { PROJECT_ROOT } from '../../config';

export const ESTIMATORS = ['logistic_regression', 'random_forest', 'lightgbm'] as const;
export type Estimator = (typeof ESTIMATORS)[number];

export interface LearnerCandidate {
  /** Unique within a comparison; names the child run and the ONNX file. */
  name: string;
  estimator: Estimator;
  /** Keyword arguments of the library's estimator. */
  params: Record<string, string | number | boolean>;
}

export interface LearnerRequest {
  /** Row-major [rows, nFeatures]. */
  xTrain: Float32Array;
  nFeatures: number;
  /** 0/1 per training row (1 = the positive class). */
  yTrain: readonly number[];
  /** Fold index per training row (0..k-1); an empty list fits no folds (refit only). */
  folds: readonly number[];
  /** Matrices to score with the refitted models (the library's probabilities, for parity checks). */
  score: { name: string; x: Float32Array }[];
  candidates: LearnerCandidate[];
  seed: number;
  /** Refit on all rows and export ONNX (default true). */
  export?: boolean;
}

const CandidateResult = z.object({
  name: z.string(),
  estimator: z.enum(ESTIMATORS),
  params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  fold_fit_seconds: z.array(z.number()),
  oof_proba: z.array(z.number()),
  full_fit_seconds: z.number().optional(),
  onnx: z.string().optional(),
  scores: z.record(z.string(), z.array(z.number())).optional(),
  /** LightGBM: thresholds moved to float32 before export, and the largest change that made to a prediction. */
  thresholds_moved: z.number().optional(),
  rounding_max_change: z.number().optional(),
});
const LearnerResultSchema = z.object({
  versions: z.record(z.string(), z.string()),
  candidates: z.array(CandidateResult),
});
export type CandidateResult = z.infer<typeof CandidateResult>;
export type LearnerResult = z.infer<typeof LearnerResultSchema>;

export class BridgeError extends Error {
  override name = 'BridgeError';
}

export const LEARNERS_SCRIPT = path.join(PROJECT_ROOT, 'src', 'py', 'tabular_models.py');

const writeMatrix = (file: string, x: Float32Array) =>
  fs.writeFileSync(file, Buffer.from(x.buffer, x.byteOffset, x.byteLength));

/** Runs the learners in `python` (the venv's); progress lines go to `onProgress`; files are written under `workDir`. */
export async function runLearners(
  req: LearnerRequest,
  opts: { python: string; workDir: string; onProgress?: (line: string) => void },
): Promise<LearnerResult> {
  if (!fs.existsSync(opts.python))
    throw new BridgeError(`${opts.python} does not exist: run \`make setup\` (it installs the Python learners)`);
  if (req.xTrain.length !== req.yTrain.length * req.nFeatures)
    throw new BridgeError(`xTrain has ${req.xTrain.length} values, expected ${req.yTrain.length} x ${req.nFeatures}`);
  fs.mkdirSync(opts.workDir, { recursive: true });
  const xTrain = path.join(opts.workDir, 'x_train.f32');
  writeMatrix(xTrain, req.xTrain);
  const score = req.score.map((s) => {
    const file = path.join(opts.workDir, `x_${s.name}.f32`);
    writeMatrix(file, s.x);
    return { name: s.name, x: file };
  });
  const requestFile = path.join(opts.workDir, 'request.json');
  fs.writeFileSync(
    requestFile,
    JSON.stringify({
      x_train: xTrain,
      n_features: req.nFeatures,
      y_train: req.yTrain,
      folds: req.folds,
      score,
      candidates: req.candidates,
      seed: req.seed,
      export: req.export ?? true,
      out_dir: opts.workDir,
    }),
  );
  const stderr: string[] = [];
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(opts.python, [LEARNERS_SCRIPT, requestFile], { stdio: ['ignore', 'inherit', 'pipe'] });
    let partial = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const l of lines) {
        stderr.push(l);
        opts.onProgress?.(l);
      }
    });
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? 1));
  });
  if (code !== 0) throw new BridgeError(`the Python learners exited with ${code}:\n${stderr.slice(-20).join('\n')}`);
  const parsed = LearnerResultSchema.safeParse(
    JSON.parse(fs.readFileSync(path.join(opts.workDir, 'result.json'), 'utf8')),
  );
  if (!parsed.success)
    throw new BridgeError(`the Python learners answered an unexpected result: ${parsed.error.message}`);
  for (const c of parsed.data.candidates)
    if (c.oof_proba.length !== req.yTrain.length)
      throw new BridgeError(`${c.name}: ${c.oof_proba.length} out-of-fold probabilities for ${req.yTrain.length} rows`);
  return parsed.data;
}
