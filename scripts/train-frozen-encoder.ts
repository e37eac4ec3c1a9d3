/**
 * make baseline-frozen: the frozen pretrained encoder (ONNX Runtime) + logistic regression, the
 * second baseline BERT fine-tuning must beat. Logged to MLflow with metrics and evaluation report.
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { FROZEN_HEAD } from '../src/kinds/frozen-encoder/recipe';
import { loadConfig } from '../src/config';
import { TASK_NAMES, taskSpec } from '../src/data/tasks';
import { TextTokenizer } from '../src/features/tokenize';
import { OrtEncoder } from '../src/engine/encoder-onnx';
import { MlflowClient, withRun, type ActiveRun } from '../src/mlflow';
import { readPrepared } from '../src/data/prepare';
import { runFrozenEncoder } from '../src/kinds/frozen-encoder/train';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const program = new Command('train-frozen-encoder')
  .description(
    'Embed prepared data with the frozen pretrained encoder (ONNX Runtime) and train a logistic-regression head; logged to MLflow.',
  )
  .addOption(new Option('--task <name>', 'task').choices(TASK_NAMES).default('support-intent'))
  .option('--checkpoint <dir>', 'Hugging Face checkpoint folder', path.join(cfg.paths.pretrained, cfg.pretrained.name))
  .option('--max-length <n>', 'tokens per text', (v) => Number.parseInt(v, 10), FROZEN_HEAD.maxLength)
  .option('--epochs <n>', 'head training epochs', (v) => Number.parseInt(v, 10), FROZEN_HEAD.epochs)
  .option('--processed-dir <dir>', 'prepared data', path.join(cfg.root, 'data', 'processed'))
  .option('--no-mlflow', 'do not log to MLflow')
  .action(
    (opts: {
      task: string;
      checkpoint: string;
      maxLength: number;
      epochs: number;
      processedDir: string;
      mlflow: boolean;
    }) =>
      runMain(async () => {
        const spec = taskSpec(opts.task);
        const data = readPrepared(path.join(path.resolve(opts.processedDir), opts.task));
        const tok = await TextTokenizer.fromDir(opts.checkpoint);
        const enc = await OrtEncoder.fromCheckpoint(opts.checkpoint);
        const body = async (run?: ActiveRun) => {
          const bar = process.stderr.isTTY
            ? new SingleBar(
                { format: '  embedding {split} [{bar}] {value}/{total}', stream: process.stderr },
                Presets.shades_classic,
              )
            : undefined;
          let current = '';
          const r = await runFrozenEncoder(
            spec,
            data,
            {
              tokenizer: tok,
              encoder: enc,
              checkpointName: path.basename(opts.checkpoint),
              checkpointDir: opts.checkpoint,
              maxLength: opts.maxLength,
              epochs: opts.epochs,
              onProgress: (split, done, total) => {
                if (split !== current) {
                  bar?.stop();
                  bar?.start(total, 0, { split });
                  current = split;
                }
                bar?.update(done, { split });
              },
            },
            run,
          );
          bar?.stop();
          const t = r.test;
          log(
            `==> ${opts.task} frozen encoder + LR: test accuracy ${(t.accuracy * 100).toFixed(2)}%, macro-F1 ${t.macro.f1.toFixed(4)} (embedded ${r.texts} texts at ${(r.texts / r.embedSeconds).toFixed(0)}/s, head ${r.trainSeconds.toFixed(1)} s)${run ? `, run ${run.runId}` : ''}`,
          );
        };
        const client = opts.mlflow ? MlflowClient.fromEnv({ journalDir: cfg.paths.journal }) : undefined;
        if (client)
          await withRun(
            client,
            {
              experiment: opts.task,
              runName: 'baseline-frozen-encoder',
              source: 'scripts/train-frozen-encoder.ts',
              tags: { stage: 'train', model: 'frozen-encoder-logreg' },
            },
            body,
          );
        else await body();
        await client?.close();
        await enc.release();
      }),
  );
program.parse();
