/**
 * make retrain (scheduled) and make rollback. See src/retrain/retrain.ts for the steps.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { taskSpec } from '../src/data/tasks';
import { MlflowClient, withRun } from '../src/mlflow';
import type { ProductionConfig } from '../src/promote/register';
import { acquireLock, DEFAULT_GATE, ingestIncoming, retrain, rollback } from '../src/retrain/retrain';
import { readPrepared } from '../src/train/baseline-run';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const program = new Command('retrain').description('Scheduled retraining with a drift gate and a champion/challenger gate; rollback.');

function readProduction(file: string): ProductionConfig {
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist. Promote a run first: make promote RUN=<run id>`);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as ProductionConfig;
}

program
  .command('run', { isDefault: true })
  .description('retrain the production model on the prepared data plus data/incoming/<task>/*.csv|jsonl (columns text,label)')
  .option('--config <file>', 'production config written by make promote', path.join(cfg.root, 'config', 'production.json'))
  .option('--incoming <dir>', 'new labelled data (default data/incoming/<task>)')
  .option('--processed-dir <dir>', 'prepared data (make prepare)', path.join(cfg.root, 'data', 'processed'))
  .option('--state-dir <dir>', 'lock and last-digest state', path.join(cfg.root, 'mlflow', '.retrain'))
  .option('--force', 'train even if the data digest is unchanged and no drift is found')
  .option('--min-f1 <x>', 'minimum challenger test macro-F1', Number.parseFloat, DEFAULT_GATE.minMacroF1)
  .option('--tolerance <x>', 'how much worse than the champion a challenger may be', Number.parseFloat, DEFAULT_GATE.tolerance)
  .action((opts: { config: string; incoming?: string; processedDir: string; stateDir: string; force?: boolean; minF1: number; tolerance: number }) =>
    runMain(async () => {
      const production = readProduction(opts.config);
      const task = production.task;
      const spec = taskSpec(task);
      const stateDir = path.resolve(opts.stateDir);
      const release = acquireLock(path.join(stateDir, `${task}.lock`));
      const stateFile = path.join(stateDir, `${task}.json`);
      const state = fs.existsSync(stateFile) ? (JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { lastDigest?: string; inProgressRunId?: string }) : {};
      const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
      try {
        const data = readPrepared(path.join(path.resolve(opts.processedDir), task));
        const incomingDir = opts.incoming ?? path.join(cfg.root, 'data', 'incoming', task);
        const incoming = ingestIncoming(incomingDir, production.labelMap, path.join(cfg.root, 'data', 'quarantine', 'incoming', task));
        log(`==> retrain ${task}: ${incoming.examples.length} new labelled rows from ${path.relative(cfg.root, incomingDir)} (${incoming.files.length} files, ${incoming.bad} quarantined)`);
        // A crashed retrain left its run id: continue that run instead of opening a new one.
        const outcome = await withRun(client, { experiment: task, runName: 'retrain', source: 'scripts/retrain.ts', tags: { stage: 'retrain' }, resumeRunId: state.inProgressRunId }, async (run) => {
          fs.mkdirSync(stateDir, { recursive: true });
          fs.writeFileSync(stateFile, JSON.stringify({ ...state, inProgressRunId: run.runId }));
          return retrain(client, run, { spec, production, train: data.train, validation: data.validation, test: data.test, incoming: incoming.examples, lastDigest: state.lastDigest ?? production.dataDigest }, { force: opts.force, gate: { minMacroF1: opts.minF1, tolerance: opts.tolerance }, modelCacheDir: path.join(cfg.paths.models, 'cache'), challenger: { pretrained: cfg.paths.pretrained, workDir: path.join(cfg.paths.models, 'trained', `retrain-${task}`) } });
        });
        fs.writeFileSync(stateFile, JSON.stringify({ lastDigest: outcome.decision === 'promoted' || outcome.decision === 'registered_not_promoted' ? outcome.digest : (state.lastDigest ?? production.dataDigest ?? null) }));
        log(`decision: ${outcome.decision} - ${outcome.reason}`);
        if (outcome.drift) log(`drift: ${outcome.drift.level} (${outcome.drift.reason})`);
        if (outcome.challengerVersion) log(`challenger version ${outcome.challengerVersion} (test macro-F1 ${outcome.challengerF1?.toFixed(4)}), champion ${outcome.championVersion ?? 'none'} (${outcome.championF1?.toFixed(4) ?? '-'})`);
        if (outcome.alert) {
          process.stderr.write(`ALERT: large drift for ${task}: the model needs new experimentation (see the retrain run in MLflow)\n`);
          process.exitCode = 2;
        }
      } finally {
        await client.close();
        release();
      }
    }),
  );

program
  .command('rollback')
  .description('point @champion back at @previous-champion')
  .option('--config <file>', 'production config', path.join(cfg.root, 'config', 'production.json'))
  .option('--task <name>', 'task (default: from the production config)')
  .action((opts: { config: string; task?: string }) =>
    runMain(async () => {
      const task = opts.task ?? readProduction(opts.config).task;
      const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
      try {
        const r = await rollback(client, task);
        log(`rolled back ${task}: @champion ${r.from} -> ${r.to} (@previous-champion is now ${r.from}; make rollback again to undo)`);
      } finally {
        await client.close();
      }
    }),
  );
program.parse();
