/**
 * make tune: a hyper-parameter study with Optuna over a model kind's search space (authored in
 * notebooks/04_tuning.ipynb), one MLflow parent run per study and a nested child run per trial.
 * Run the same command again after a crash: the study resumes without repeating finished trials.
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { loadConfig } from '../src/config';
import { readPrepared, type PreparedData } from '../src/data/prepare';
import { TASK_NAMES, taskSpec } from '../src/data/tasks';
import { FROZEN_HEAD } from '../src/kinds/frozen-encoder/recipe';
import { closeRun, MlflowClient, openRun } from '../src/mlflow';
import { log, runMain } from '../src/cli/progress';
import { bertObjective, frozenObjective, tfidfObjective, TUNABLE_MODELS, type Objective } from '../src/tune/objectives';
import { finishedCount } from '../src/tune/optuna';
import { runStudy, type TuneEvent } from '../src/tune/study';

const cfg = loadConfig();
const int = (v: string) => Number.parseInt(v, 10);

interface Opts {
  task: string;
  model: (typeof TUNABLE_MODELS)[number];
  trials: number;
  timeout?: number;
  study?: string;
  storage: string;
  sampler: 'tpe' | 'random' | 'grid';
  pruner: 'median' | 'hyperband' | 'none';
  seed?: number;
  maxTrain?: number;
  maxEval?: number;
  heartbeatGrace: number;
  warmupEpochs: number;
  startupTrials: number;
  dataFraction: number;
  retrainBest: boolean;
  workDir: string;
  processedDir: string;
  checkpoint: string;
}

const program = new Command('tune')
  .description(
    'Hyper-parameter search with Optuna (ask/tell from TypeScript): trials pruned on validation macro-F1, every trial ' +
      'a nested MLflow run, the study in an RDB storage so the same command resumes it.',
  )
  .addOption(new Option('--task <name>', 'task').choices(TASK_NAMES).default('support-intent'))
  .addOption(new Option('--model <kind>', 'model kind to tune').choices(TUNABLE_MODELS).default('frozen'))
  .option('--trials <n>', 'finished trials (complete + pruned) the study should reach', int, 30)
  .option('--timeout <s>', 'stop starting trials after this many seconds', int)
  .option('--study <name>', 'study name (default <task>-<model>); the same name resumes or joins a study')
  .option('--storage <url>', 'Optuna storage (SQLAlchemy URL; env OPTUNA_STORAGE)', cfg.optunaStorage)
  .addOption(new Option('--sampler <name>', 'Optuna sampler').choices(['tpe', 'random', 'grid']).default('tpe'))
  .addOption(new Option('--pruner <name>', 'Optuna pruner').choices(['median', 'hyperband', 'none']).default('median'))
  .option('--seed <n>', "sampler seed (default: Optuna's, so parallel drivers differ)", int)
  .option('--max-train <n>', 'use the first N training examples (quick studies, CI)', int)
  .option('--max-eval <n>', 'use the first N validation and test examples', int)
  .option(
    '--data-fraction <f>',
    'bert: trials fine-tune on this seeded share of the training split',
    Number.parseFloat,
    1,
  )
  .option('--retrain-best', 'bert: fine-tune the best trial again on all training data, as a child run', false)
  .option(
    '--work-dir <dir>',
    'bert: trial checkpoints (removed after each trial)',
    path.join(cfg.root, '.cache', 'tune'),
  )
  .option('--warmup-epochs <n>', 'epochs every trial runs before the pruner may stop it', int, 5)
  .option(
    '--startup-trials <n>',
    'median pruner: trials that finish unpruned before it compares (small studies want 2-3)',
    int,
    5,
  )
  .option('--heartbeat-grace <s>', 'a running trial silent this long is failed and retried', int, 60)
  .option('--processed-dir <dir>', 'prepared data (make prepare)', path.join(cfg.root, 'data', 'processed'))
  .option('--checkpoint <dir>', 'pretrained checkpoint (frozen)', path.join(cfg.paths.pretrained, cfg.pretrained.name))
  .addHelpText(
    'after',
    '\nExamples:\n' +
      '  make tune TASK=support-intent MODEL=frozen TRIALS=30\n' +
      '  make tune TASK=support-category MODEL=tfidf TRIALS=20 TIMEOUT=600\n' +
      '  make tune TASK=support-intent MODEL=bert TRIALS=8 ARGS="--data-fraction 0.25 --warmup-epochs 1 --retrain-best"\n' +
      'Then: make promote RUN=<best trial run id> (printed at the end), and make retrain reuses its params.',
  )
  .action((opts: Opts) =>
    runMain(async () => {
      const spec = taskSpec(opts.task);
      const data = subset(readPrepared(path.join(path.resolve(opts.processedDir), opts.task)), opts);
      const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
      const objective = await makeObjective(opts, spec, data);
      const study = opts.study ?? `${opts.task}-${opts.model}`;
      const display = progress(opts.trials);
      try {
        const r = await runStudy(client, objective, {
          task: opts.task,
          study,
          storage: opts.storage,
          python: cfg.python,
          trials: opts.trials,
          timeoutSeconds: opts.timeout,
          sampler: { name: opts.sampler, seed: opts.seed },
          pruner: { name: opts.pruner, warmupSteps: opts.warmupEpochs, startupTrials: opts.startupTrials },
          heartbeat: {
            interval: Math.max(1, Math.min(10, Math.floor(opts.heartbeatGrace / 3))),
            grace: opts.heartbeatGrace,
          },
          source: 'scripts/tune.ts',
          onEvent: display.onEvent,
        });
        display.stop();
        const s = r.summary;
        log(
          `==> study ${study}: ${s.counts.complete} complete, ${s.counts.pruned} pruned, ${s.counts.fail} failed` +
            ` (parent run ${r.parentRunId})`,
        );
        if (s.best) {
          log(`    best trial #${s.best.number}: validation macro-F1 ${s.best.value.toFixed(4)}`);
          log(`    params: ${JSON.stringify(s.best.params)}`);
          if (r.bestTestAccuracy !== undefined)
            log(`    test accuracy of the best trial: ${(r.bestTestAccuracy * 100).toFixed(2)}%`);
          const dflt = s.trials.find((t) => t.number === 0);
          if (dflt?.value !== null && dflt?.value !== undefined)
            log(
              `    default configuration (trial #0): validation macro-F1 ${dflt.value.toFixed(4)}, test accuracy ` +
                `${(Number(dflt.user_attrs.test_accuracy) * 100).toFixed(2)}%`,
            );
          if (r.bestRunId && !(opts.retrainBest && objective.retrainOnAllData))
            log(`    promote it: make promote RUN=${r.bestRunId}`);
          if (opts.retrainBest && objective.retrainOnAllData) {
            const run = await openRun(client, {
              experiment: opts.task,
              parentRunId: r.parentRunId,
              runName: `retrain-best-trial-${s.best.number}`,
              source: 'scripts/tune.ts',
              tags: {
                stage: 'train',
                model: 'bert-finetune',
                'optuna.study_name': study,
                'optuna.retrained_from': String(s.best.number),
              },
            });
            log(`==> fine-tuning trial #${s.best.number}'s configuration on all ${data.train.length} training texts`);
            try {
              const full = await objective.retrainOnAllData(
                s.best.params,
                run,
                path.join(path.resolve(opts.workDir), `${study}-best`),
              );
              await closeRun(client, run);
              log(`    retrained on all data: test accuracy ${(full.test.accuracy * 100).toFixed(2)}%`);
              log(`    promote it: make promote RUN=${run.runId}`);
            } catch (e) {
              await closeRun(client, run, e);
              throw e;
            }
          }
        }
      } finally {
        display.stop();
        await objective.release();
        await client.close();
      }
    }),
  );

async function makeObjective(opts: Opts, spec: ReturnType<typeof taskSpec>, data: PreparedData): Promise<Objective> {
  if (opts.model === 'tfidf') return tfidfObjective(spec, data);
  if (opts.model === 'bert')
    return bertObjective(spec, data, {
      checkpointName: path.basename(opts.checkpoint),
      checkpointDir: opts.checkpoint,
      workRoot: path.resolve(opts.workDir),
      dataFraction: opts.dataFraction,
    });
  log(`==> embedding ${opts.task} once for the study (${path.basename(opts.checkpoint)})`);
  const bar = process.stderr.isTTY
    ? new SingleBar({ format: '  {split} [{bar}] {value}/{total}', stream: process.stderr }, Presets.shades_classic)
    : undefined;
  let current = '';
  const objective = await frozenObjective(spec, data, {
    checkpointName: path.basename(opts.checkpoint),
    checkpointDir: opts.checkpoint,
    maxLength: FROZEN_HEAD.maxLength,
    onProgress: (split, done, total) => {
      if (!bar) return;
      if (split !== current) {
        if (current) bar.stop();
        bar.start(total, 0, { split });
        current = split;
      }
      bar.update(done, { split });
    },
  });
  bar?.stop();
  return objective;
}

function subset(data: PreparedData, o: Pick<Opts, 'maxTrain' | 'maxEval'>): PreparedData {
  return {
    ...data,
    train: o.maxTrain ? data.train.slice(0, o.maxTrain) : data.train,
    validation: o.maxEval ? data.validation.slice(0, o.maxEval) : data.validation,
    test: o.maxEval ? data.test.slice(0, o.maxEval) : data.test,
  };
}

/** Trial k/N, best so far, pruned count: a bar on a terminal, a line per trial otherwise. */
function progress(target: number): { onEvent: (e: TuneEvent) => void; stop: () => void } {
  const bar = process.stderr.isTTY
    ? new SingleBar(
        {
          format: '  trials [{bar}] {value}/{total} | best {best} | pruned {pruned} | trial #{trial} epoch {epoch}',
          stream: process.stderr,
        },
        Presets.shades_classic,
      )
    : undefined;
  let stopped = false;
  const payload = { best: '-', pruned: 0, trial: '-', epoch: '-' };
  return {
    onEvent(e) {
      if (e.type === 'open') {
        log(
          `==> study ${e.study}${e.resumed ? ` resumed (${e.finished} finished)` : ''}: ${target} trials, parent run ${e.parentRunId}`,
        );
        bar?.start(target, e.finished, payload);
      } else if (e.type === 'stale')
        log(`    trials ${e.trials.join(', ')} lost their driver: failed, retried with the same params`);
      else if (e.type === 'trial-start') {
        payload.trial = String(e.number);
        payload.epoch = '-';
        bar?.update(payload);
      } else if (e.type === 'epoch') {
        payload.epoch = String(e.step);
        bar?.update(payload);
      } else if (e.type === 'trial-end') {
        const s = e.summary;
        payload.best = s.best ? s.best.value.toFixed(4) : '-';
        payload.pruned = s.counts.pruned;
        if (bar) bar.update(Math.min(finishedCount(s), target), payload);
        else {
          const v = e.trial.value ?? Number(Object.values(e.trial.intermediate).at(-1) ?? NaN);
          log(
            `    trial #${e.trial.number} ${e.trial.state.toUpperCase()} val macro-F1 ${Number.isFinite(v) ? v.toFixed(4) : '-'}` +
              ` (${finishedCount(s)}/${target} finished, best ${payload.best}, pruned ${s.counts.pruned}, ` +
              `${(e.trial.duration_s ?? 0).toFixed(0)} s)`,
          );
        }
      }
    },
    stop() {
      if (bar && !stopped) bar.stop();
      stopped = true;
    },
  };
}

program.parse();
