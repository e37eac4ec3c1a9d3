/**
 * make baseline-frozen: the frozen pretrained encoder (ONNX Runtime) + logistic regression, the
 * second baseline BERT fine-tuning must beat. Logged to MLflow with metrics and evaluation report.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { loadConfig } from '../src/config';
import { TASK_NAMES, taskSpec } from '../src/data/tasks';
import { evaluationMetrics } from '../src/evaluate/metrics';
import { evaluationHtml, evaluationJson } from '../src/evaluate/report';
import { TextTokenizer } from '../src/features/tokenize';
import { OrtEncoder } from '../src/model/encoder-onnx';
import { DEFAULT_LOGREG } from '../src/models/logreg';
import { MlflowClient, withRun, type ActiveRun } from '../src/mlflow';
import { readPrepared } from '../src/train/baseline-run';
import { embedTexts, evaluateFrozenHead, trainFrozenHead } from '../src/train/frozen-encoder';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const program = new Command('train-frozen-encoder')
  .description('Embed prepared data with the frozen pretrained encoder (ONNX Runtime) and train a logistic-regression head; logged to MLflow.')
  .addOption(new Option('--task <name>', 'task').choices(TASK_NAMES).default('support-intent'))
  .option('--checkpoint <dir>', 'Hugging Face checkpoint folder', path.join(cfg.paths.pretrained, cfg.pretrained.name))
  .option('--max-length <n>', 'tokens per text', (v) => Number.parseInt(v, 10), 64)
  .option('--epochs <n>', 'head training epochs', (v) => Number.parseInt(v, 10), 40)
  .option('--processed-dir <dir>', 'prepared data', path.join(cfg.root, 'data', 'processed'))
  .option('--no-mlflow', 'do not log to MLflow')
  .action((opts: { task: string; checkpoint: string; maxLength: number; epochs: number; processedDir: string; mlflow: boolean }) =>
    runMain(async () => {
      const spec = taskSpec(opts.task);
      const data = readPrepared(path.join(path.resolve(opts.processedDir), opts.task));
      const tok = await TextTokenizer.fromDir(opts.checkpoint);
      const enc = await OrtEncoder.fromCheckpoint(opts.checkpoint);
      const body = async (run?: ActiveRun) => {
        const head = { ...DEFAULT_LOGREG, epochs: opts.epochs, learningRate: 0.01, l2: 0 };
        await run?.logParams({ model: 'frozen-encoder-logreg', task: opts.task, checkpoint: path.basename(opts.checkpoint), max_length: opts.maxLength, pooling: 'mean', epochs: head.epochs, learning_rate: head.learningRate, runtime: 'onnxruntime-node', ...(data.trainDigest ? { 'data.digest.train': data.trainDigest.slice(0, 32) } : {}) });
        const t0 = Date.now();
        const embed = async (name: string, texts: string[]) => {
          const bar = process.stderr.isTTY ? new SingleBar({ format: `  embedding ${name} [{bar}] {value}/{total}`, stream: process.stderr }, Presets.shades_classic) : undefined;
          bar?.start(texts.length, 0);
          const out = await embedTexts(tok, enc, texts, { maxLength: opts.maxLength, batchSize: 32, onProgress: (d) => bar?.update(d) });
          bar?.stop();
          return out;
        };
        const [tr, va, te] = [await embed('train', data.train.map((e) => e.text)), await embed('validation', data.validation.map((e) => e.text)), await embed('test', data.test.map((e) => e.text))];
        const embedSeconds = (Date.now() - t0) / 1000;
        const t1 = Date.now();
        const model = trainFrozenHead(tr, data.train, data.labelMap, undefined, head);
        const trainSeconds = (Date.now() - t1) / 1000;
        const val = evaluateFrozenHead(model, va, data.validation, spec.positiveLabel);
        const tst = evaluateFrozenHead(model, te, data.test, spec.positiveLabel);
        const n = tr.length + va.length + te.length;
        await run?.logMetrics({ ...evaluationMetrics(val, 'val_'), ...evaluationMetrics(tst, 'test_'), embed_seconds: embedSeconds, embed_texts_per_second: n / embedSeconds, train_seconds: trainSeconds });
        if (run) {
          const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'frozen-'));
          fs.writeFileSync(path.join(tmp, 'evaluation_test.json'), evaluationJson(tst));
          fs.writeFileSync(path.join(tmp, 'evaluation_test.html'), evaluationHtml(`${opts.task}: frozen encoder + logistic regression (test)`, tst));
          await run.logArtifact(path.join(tmp, 'evaluation_test.json'), 'eval');
          await run.logArtifact(path.join(tmp, 'evaluation_test.html'), 'eval');
          fs.rmSync(tmp, { recursive: true, force: true });
        }
        log(`==> ${opts.task} frozen encoder + LR: test accuracy ${(tst.accuracy * 100).toFixed(2)}%, macro-F1 ${tst.macro.f1.toFixed(4)} (embedded ${n} texts at ${(n / embedSeconds).toFixed(0)}/s, head ${trainSeconds.toFixed(1)} s)${run ? `, run ${run.runId}` : ''}`);
      };
      const client = opts.mlflow ? MlflowClient.fromEnv({ journalDir: cfg.paths.journal }) : undefined;
      if (client) await withRun(client, { experiment: opts.task, runName: 'baseline-frozen-encoder', source: 'scripts/train-frozen-encoder.ts', tags: { stage: 'train', model: 'frozen-encoder-logreg' } }, body);
      else await body();
      await client?.close();
      await enc.release();
    }),
  );
program.parse();
