/**
 * make retrain (scheduled) and make rollback. See src/retrain/retrain.ts for the steps. Both take
 * the task's production lock (as make promote does) and read the production config under it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { readPrepared } from '../src/data/prepare';
import { taskSpec } from '../src/data/tasks';
import { MlflowClient, withRun } from '../src/mlflow';
import { productionConfigFile, readProductionConfig, resolveTask } from '../src/production/config';
import { productionLockFile, withLock } from '../src/production/lock';
import { ModelCache } from '../src/production/model-cache';
import { DEFAULT_GATE, ingestIncoming, retrainWith, textRetrainData, type RetrainData } from '../src/retrain/retrain';
import { ingestIncomingTabular, tabularRetrainData } from '../src/retrain/tabular';
import { featureTableFiles, readFeatureTable } from '../src/data/feature-table';
import { isTabularTask, tabularTaskSpec } from '../src/data/tabular-tasks';
import { log, runMain } from '../src/cli/progress';
import { closeLeftoverRun, readRetrainState, writeRetrainState } from '../src/retrain/state';
import { rollbackChampion } from '../src/production/champion-move';
import { heldOutTexts } from '../src/data/leakage';
import { sliceExamples } from '../src/feedback/slice';
import { applyCorrections } from '../src/feedback/label-issues';
import { feedbackPaths, readReviewed } from '../src/feedback/store';

const cfg = loadConfig();
const program = new Command('retrain').description(
  'Scheduled retraining with a drift gate and a champion/challenger gate; rollback.',
);

interface TaskOptions {
  task?: string;
  config?: string;
  stateDir: string;
}

/** The task and its production config file: --config, else config/production/<task>.json. */
function taskConfig(opts: TaskOptions): { task: string; file: string } {
  if (opts.config) return { task: opts.task ?? readProductionConfig(opts.config).task, file: opts.config };
  const task = resolveTask(cfg.paths.productionConfigs, opts.task);
  return { task, file: productionConfigFile(cfg.paths.productionConfigs, task) };
}

program
  .command('run', { isDefault: true })
  .description(
    "retrain the production model on the prepared data plus data/incoming/<task>/*.csv|jsonl (text tasks: columns text,label; tabular tasks: the raw file's columns); exit 2 on a drift alert",
  )
  .option('--task <name>', 'task (default: the only promoted task)')
  .option('--config <file>', 'production config written by make promote (default: config/production/<task>.json)')
  .option('--incoming <dir>', 'new labelled data (default data/incoming/<task>)')
  .option('--quarantine-dir <dir>', 'where bad incoming rows are reported (default data/quarantine/incoming/<task>)')
  .option('--processed-dir <dir>', 'prepared data (make prepare)', cfg.paths.processed)
  .option(
    '--data-dir <dir>',
    'data folder whose feedback/<task>/ production slice (make review-import) the gate also scores',
    path.join(cfg.root, 'data'),
  )
  .option('--state-dir <dir>', 'production lock and last-digest state', cfg.paths.productionState)
  .option('--cache-dir <dir>', 'model cache (MODEL_CACHE_DIR)', cfg.paths.modelCache)
  .option('--force', 'train even if the data digest is unchanged and no drift is found')
  .option('--min-f1 <x>', 'minimum challenger test macro-F1', Number.parseFloat, DEFAULT_GATE.minMacroF1)
  .option(
    '--tolerance <x>',
    'how much worse than the champion a challenger may be',
    Number.parseFloat,
    DEFAULT_GATE.tolerance,
  )
  .action(
    (
      opts: TaskOptions & {
        incoming?: string;
        quarantineDir?: string;
        processedDir: string;
        dataDir: string;
        cacheDir: string;
        force?: boolean;
        minF1: number;
        tolerance: number;
      },
    ) =>
      runMain(async () => {
        const { task, file } = taskConfig(opts);
        const stateDir = path.resolve(opts.stateDir);
        await withLock(productionLockFile(stateDir, task), 'retrain', async () => {
          const production = readProductionConfig(file); // under the lock: promote cannot change it meanwhile
          const tabular = isTabularTask(task);
          const stateFile = path.join(stateDir, `${task}.json`);
          const state = readRetrainState(stateFile, log);
          const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
          try {
            const dataDir = path.join(path.resolve(opts.processedDir), task);
            const incomingDir = opts.incoming ?? path.join(cfg.root, 'data', 'incoming', task);
            const quarantineDir = opts.quarantineDir ?? path.join(cfg.root, 'data', 'quarantine', 'incoming', task);
            const lastDigest = state.lastDigest ?? production.dataDigest;
            // Text tasks: prepared splits + incoming texts; tabular tasks: the feature table + incoming customers.
            let retrainData: RetrainData;
            let incomingCount: { rows: number; files: number; bad: number };
            if (tabular) {
              const table = readFeatureTable(dataDir);
              const heldOutIds = new Set(table.rows.filter((r) => r.split !== 'train').map((r) => r.id));
              const incoming = ingestIncomingTabular(incomingDir, tabularTaskSpec(task), quarantineDir, heldOutIds);
              incomingCount = { rows: incoming.rows.length, files: incoming.files.length, bad: incoming.bad };
              retrainData = tabularRetrainData({
                spec: tabularTaskSpec(task),
                production,
                table,
                tableFile: featureTableFiles(dataDir).table,
                incoming,
                lastDigest,
              });
            } else {
              const data = readPrepared(dataDir);
              const heldOut = heldOutTexts(
                [...data.validation, ...data.test].map((e) => e.text),
                'the validation or test split',
              );
              const fb = feedbackPaths(path.resolve(opts.dataDir), task);
              const read = ingestIncoming(incomingDir, production.labelMap, quarantineDir, heldOut);
              // Reviewed second looks (make review REASON=label-issues) relabel or drop training and incoming rows.
              const corrections = readReviewed(fb, 'correction');
              const fixedTrain = applyCorrections(data.train, corrections);
              const fixedIncoming = applyCorrections(read.examples, corrections);
              const incoming = { ...read, examples: fixedIncoming.rows };
              if (corrections.length)
                log(
                  `    ${corrections.length} reviewed corrections: ${fixedTrain.relabelled + fixedIncoming.relabelled} rows ` +
                    `relabelled, ${fixedTrain.dropped + fixedIncoming.dropped} dropped as out of scope`,
                );
              incomingCount = { rows: incoming.examples.length, files: incoming.files.length, bad: incoming.bad };
              retrainData = textRetrainData({
                spec: taskSpec(task),
                production,
                train: fixedTrain.rows,
                validation: data.validation,
                test: data.test,
                incoming: incoming.examples,
                productionSlice: sliceExamples(readReviewed(fb, 'slice'), production.labelMap.labels),
                lastDigest,
              });
            }
            log(
              `==> retrain ${task} (${production.kind}, champion run ${production.model.runId}): ${incomingCount.rows} new labelled rows from ${path.relative(cfg.root, incomingDir)} (${incomingCount.files} files, ${incomingCount.bad} quarantined)`,
            );
            const cache = new ModelCache(client, opts.cacheDir, log);
            if (state.inProgressRunId) await closeLeftoverRun(client, state.inProgressRunId, log);
            const settled = { lastDigest: state.lastDigest ?? production.dataDigest ?? null };
            const outcome = await withRun(
              client,
              {
                experiment: task,
                runName: 'retrain',
                source: 'scripts/retrain.ts',
                tags: { stage: 'retrain' },
              },
              async (run) => {
                fs.mkdirSync(stateDir, { recursive: true });
                writeRetrainState(stateFile, { ...settled, inProgressRunId: run.runId });
                return retrainWith(client, run, retrainData, {
                  force: opts.force,
                  gate: { minMacroF1: opts.minF1, tolerance: opts.tolerance },
                  cache,
                  challenger: {
                    pretrained: cfg.paths.pretrained,
                    workDir: path.join(cfg.paths.models, 'trained', `retrain-${task}`),
                  },
                });
              },
            ).catch((err: unknown) => {
              // The run ended FAILED (withRun closed it): the next retrain starts a new one.
              writeRetrainState(stateFile, settled);
              throw err;
            });
            const trained = outcome.decision === 'promoted' || outcome.decision === 'registered_not_promoted';
            writeRetrainState(stateFile, { lastDigest: trained ? outcome.digest : settled.lastDigest });
            log(`decision: ${outcome.decision} - ${outcome.reason}`);
            if (outcome.drift) log(`drift: ${outcome.drift.level} (${outcome.drift.reason})`);
            if (outcome.challengerVersion)
              log(
                `challenger version ${outcome.challengerVersion} (test macro-F1 ${outcome.challengerF1?.toFixed(4)}), champion ${outcome.championVersion ?? 'none'} (${outcome.championF1?.toFixed(4) ?? '-'})`,
              );
            if (outcome.alert) {
              process.stderr.write(
                `ALERT: large drift for ${task}: the model needs new experimentation (see the retrain run in MLflow)\n`,
              );
              process.exitCode = 2;
            }
          } finally {
            await client.close();
          }
        });
      }),
  );

program
  .command('rollback')
  .description('point @champion back at @previous-champion')
  .option('--task <name>', 'task (default: the only promoted task)')
  .option('--config <file>', 'production config (default: config/production/<task>.json)')
  .option('--state-dir <dir>', 'where the production lock lives', cfg.paths.productionState)
  .action((opts: TaskOptions) =>
    runMain(async () => {
      const { task } = taskConfig(opts);
      await withLock(productionLockFile(path.resolve(opts.stateDir), task), 'rollback', async () => {
        const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
        try {
          const r = await rollbackChampion(client, task);
          log(
            `rolled back ${task}: @champion ${r.from} -> ${r.to} (@previous-champion is now ${r.from}; make rollback again to undo)`,
          );
        } finally {
          await client.close();
        }
      });
    }),
  );
program.parse();
