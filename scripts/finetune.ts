/**
 * make finetune: fine-tune the pretrained BERT-family checkpoint on a prepared task with the
 * TypeScript engine (ONNX Runtime forward + backward, AdamW), logged to MLflow with the servable
 * model. Killed or crashed, the same command resumes from the last checkpoint into the same run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { loadConfig } from '../src/config';
import { TASK_NAMES, taskSpec } from '../src/data/tasks';
import { TextTokenizer } from '../src/features/tokenize';
import { MlflowClient, withRun, type ActiveRun } from '../src/mlflow';
import { POOLINGS, type Pooling } from '../src/engine/bert-graph';
import { readPrepared } from '../src/data/prepare';
import { runFineTune } from '../src/kinds/bert/train';
import type { FineTuneEvent } from '../src/train/finetune';
import { DEFAULT_FINETUNE } from '../src/train/recipe';
import { seededRandom, shuffled } from '../src/data/split';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const int = (v: string) => Number.parseInt(v, 10);
const D = DEFAULT_FINETUNE;

interface Opts {
  task: string;
  checkpoint: string;
  maxLength: number;
  batchSize: number;
  epochs: number;
  lr: number;
  weightDecay: number;
  warmupRatio: number;
  maxGradNorm: number;
  pooling: Pooling;
  dropout?: number;
  classWeights: boolean;
  freezeEmbeddings: boolean;
  freezeLayers: number;
  groupByLength: boolean;
  patience: number;
  seed: number;
  checkpointEvery: number;
  workDir?: string;
  fresh: boolean;
  maxTrain?: number;
  maxEval?: number;
  threads?: number;
  executionProvider: string;
  quantize: boolean;
  processedDir: string;
  mlflow: boolean;
}

const program = new Command('finetune')
  .description(
    'Fine-tune a BERT-family checkpoint on a prepared task (run `make prepare` first); logs params, curves, evaluation and the model to MLflow. Re-running after a crash resumes from the last checkpoint.',
  )
  .addOption(new Option('--task <name>', 'task').choices(TASK_NAMES).default('support-intent'))
  .option(
    '--checkpoint <dir>',
    'pretrained Hugging Face checkpoint folder',
    path.join(cfg.paths.pretrained, cfg.pretrained.name),
  )
  .option('--max-length <n>', 'tokens per text (longer texts are truncated)', int, D.maxLength)
  .option('--batch-size <n>', 'examples per step', int, D.batchSize)
  .option('--epochs <n>', 'epochs', int, D.epochs)
  .option('--lr <x>', 'peak learning rate (AdamW)', Number.parseFloat, D.learningRate)
  .option(
    '--weight-decay <x>',
    'decoupled weight decay (not on biases and LayerNorm)',
    Number.parseFloat,
    D.weightDecay,
  )
  .option(
    '--warmup-ratio <x>',
    'share of steps warming the learning rate up, then linear decay to 0',
    Number.parseFloat,
    D.warmupRatio,
  )
  .option('--max-grad-norm <x>', 'clip the global gradient norm (0: off)', Number.parseFloat, D.maxGradNorm)
  .addOption(
    new Option(
      '--pooling <kind>',
      'sentence vector for the head: mean of tokens, [CLS], or BERT pooler (dense+tanh on [CLS])',
    )
      .choices(POOLINGS)
      .default(D.pooling),
  )
  .option(
    '--dropout <p>',
    'dropout for hidden, attention and head (default: the checkpoint config.json)',
    Number.parseFloat,
  )
  .option('--class-weights', 'weigh the loss by balanced class weights (imbalanced tasks)', D.classWeights)
  .option('--freeze-embeddings', 'keep the embedding tables fixed', D.freezeEmbeddings)
  .option('--freeze-layers <n>', 'keep the lowest N encoder layers (and the embeddings) fixed', int, D.freezeLayers)
  .option('--group-by-length', 'batches of similar-length texts (less padding, faster steps)', D.groupByLength ?? false)
  .option('--patience <n>', 'early stopping: epochs without a better validation macro-F1 (0: off)', int, D.patience)
  .option('--seed <n>', 'seed for head init, data order and dropout', int, D.seed)
  .option(
    '--checkpoint-every <n>',
    'also checkpoint every N steps within an epoch (0: epoch ends only)',
    int,
    D.checkpointEverySteps,
  )
  .option('--work-dir <dir>', 'checkpoints, best weights and the exported model (default models/trained/<task>-bert)')
  .option('--fresh', 'delete the work folder first instead of resuming from it', false)
  .option('--max-train <n>', 'train on a seeded random subset of N examples (quick runs)', int)
  .option('--max-eval <n>', 'validate and test on the first N examples of each split (quick runs)', int)
  .option('--threads <n>', 'ONNX Runtime threads (default: all cores)', int)
  .option(
    '--execution-provider <ep>',
    'ONNX Runtime execution provider: cpu, or cuda on a GPU host with the CUDA provider installed',
    'cpu',
  )
  .option('--no-quantize', 'skip the int8 graph')
  .option('--processed-dir <dir>', 'where `make prepare` wrote the tasks', path.join(cfg.root, 'data', 'processed'))
  .option('--no-mlflow', 'do not log to MLflow')
  .action((opts: Opts) =>
    runMain(async () => {
      const spec = taskSpec(opts.task);
      const workDir = path.resolve(opts.workDir ?? path.join(cfg.paths.models, 'trained', `${opts.task}-bert`));
      if (opts.fresh) fs.rmSync(workDir, { recursive: true, force: true });
      fs.mkdirSync(workDir, { recursive: true });
      const data = readPrepared(path.join(path.resolve(opts.processedDir), opts.task));
      if (opts.maxTrain !== undefined)
        data.train = shuffled(data.train, seededRandom(opts.seed)).slice(0, opts.maxTrain);
      if (opts.maxEval !== undefined) {
        data.validation = data.validation.slice(0, opts.maxEval);
        data.test = data.test.slice(0, opts.maxEval);
      }
      const config = {
        ...D,
        maxLength: opts.maxLength,
        batchSize: opts.batchSize,
        epochs: opts.epochs,
        learningRate: opts.lr,
        weightDecay: opts.weightDecay,
        warmupRatio: opts.warmupRatio,
        maxGradNorm: opts.maxGradNorm,
        pooling: opts.pooling,
        classWeights: opts.classWeights,
        freezeEmbeddings: opts.freezeEmbeddings,
        freezeLayers: opts.freezeLayers,
        groupByLength: opts.groupByLength,
        patience: opts.patience,
        seed: opts.seed,
        checkpointEverySteps: opts.checkpointEvery,
        ...(opts.dropout !== undefined
          ? { dropout: { hidden: opts.dropout, attention: opts.dropout, classifier: opts.dropout } }
          : {}),
      };
      const tokenizer = await TextTokenizer.fromDir(opts.checkpoint);
      const body = async (run?: ActiveRun) => {
        if (run) fs.writeFileSync(path.join(workDir, 'run.json'), JSON.stringify({ runId: run.runId }));
        const r = await runFineTune(
          spec,
          data,
          {
            tokenizer,
            checkpointDir: opts.checkpoint,
            checkpointName: path.basename(opts.checkpoint),
            workDir,
            config,
            quantize: opts.quantize,
            session: { threads: opts.threads, executionProviders: [opts.executionProvider] },
            onEvent: progress(),
          },
          run,
        );
        const t = r.test;
        log(
          `==> ${opts.task} fine-tuned ${path.basename(opts.checkpoint)}: test accuracy ${(t.accuracy * 100).toFixed(2)}%, macro-F1 ${t.macro.f1.toFixed(4)}${r.testInt8 ? ` (int8: ${(r.testInt8.accuracy * 100).toFixed(2)}%)` : ''}; best epoch ${r.state.bestEpoch + 1}, ${(r.state.examples / r.state.trainSeconds).toFixed(1)} training examples/s; serves ${r.served}; model in ${r.modelDir}${run ? `, run ${run.runId}` : ''}`,
        );
      };
      const client = opts.mlflow ? MlflowClient.fromEnv({ journalDir: cfg.paths.journal }) : undefined;
      const runFile = path.join(workDir, 'run.json');
      // A run that never finished (killed, crashed) is continued: from its checkpoint if it wrote one, in the same MLflow run.
      const unfinished = fs.existsSync(runFile) && !fs.existsSync(path.join(workDir, 'final-state.json'));
      const resumeRunId =
        client && unfinished ? (JSON.parse(fs.readFileSync(runFile, 'utf8')) as { runId: string }).runId : undefined;
      if (resumeRunId)
        log(`==> continuing the unfinished run in ${workDir} (MLflow run ${resumeRunId}); --fresh starts over`);
      if (client)
        await withRun(
          client,
          {
            experiment: opts.task,
            runName: 'bert-finetune',
            source: 'scripts/finetune.ts',
            tags: { stage: 'train', model: 'bert-finetune' },
            resumeRunId,
          },
          body,
        );
      else await body();
      await client?.close();
    }),
  );

/** A progress bar on a terminal; plain lines (every 25 steps and each epoch) otherwise, for logs. */
function progress(): (e: FineTuneEvent) => void {
  const tty = process.stderr.isTTY;
  const bar = tty
    ? new SingleBar(
        {
          format:
            '  fine-tuning [{bar}] step {value}/{total} | epoch {epoch} | loss {loss} | lr {lr} | {eps} ex/s | ETA {eta_formatted}',
          stream: process.stderr,
        },
        Presets.shades_classic,
      )
    : undefined;
  let at = 0;
  return (e) => {
    if (e.type === 'start') {
      at = e.resumedFromStep ?? 0;
      if (e.resumedFromStep !== undefined) log(`   resumed at step ${e.resumedFromStep} of ${e.totalSteps}`);
      bar?.start(e.totalSteps, e.resumedFromStep ?? 0, { epoch: 1, loss: '-', lr: '-', eps: '-' });
    } else if (e.type === 'step') {
      at = e.globalStep;
      bar?.update(e.globalStep, {
        epoch: e.epoch + 1,
        loss: e.loss.toFixed(4),
        lr: e.lr.toExponential(2),
        eps: e.examplesPerSecond.toFixed(1),
      });
      if (!tty && e.globalStep % 25 === 0)
        log(
          `   step ${e.globalStep}/${e.totalSteps} epoch ${e.epoch + 1} loss ${e.loss.toFixed(4)} lr ${e.lr.toExponential(2)} ${e.examplesPerSecond.toFixed(1)} ex/s`,
        );
    } else if (e.type === 'epoch') {
      const line = `   epoch ${e.record.epoch}: train loss ${e.record.trainLoss.toFixed(4)}, validation accuracy ${(e.record.valAccuracy * 100).toFixed(2)}%, macro-F1 ${e.record.valMacroF1.toFixed(4)}${e.improved ? ' (best so far)' : ''}, ${e.record.seconds.toFixed(0)} s`;
      if (bar) bar.stop();
      log(line);
      bar?.start(bar.getTotal(), at, { epoch: e.record.epoch + 1, loss: '-', lr: '-', eps: '-' });
    } else if (e.type === 'early-stop') {
      bar?.stop();
      log(`   early stop after epoch ${e.epoch}: no better validation macro-F1 since epoch ${e.bestEpoch}`);
    }
  };
}

program.parse();
