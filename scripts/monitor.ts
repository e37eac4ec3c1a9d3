/**
 * make monitor: drift and prediction-distribution shift of served traffic (the serving log) against
 * the training reference; HTML report with charts, metrics to MLflow, and the retrain trigger when
 * the drift policy says so.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { taskSpec } from '../src/data/tasks';
import { MlflowClient, withRun } from '../src/mlflow';
import { driftReport } from '../src/monitor/drift';
import { monitorHtml } from '../src/monitor/monitor-report';
import { readServingLog } from '../src/monitor/serving-log';
import { readPrepared } from '../src/train/baseline-run';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const productionFile = path.join(cfg.root, 'config', 'production.json');
const production = fs.existsSync(productionFile) ? (JSON.parse(fs.readFileSync(productionFile, 'utf8')) as { task?: string }) : {};

const program = new Command('monitor')
  .description('Compare served traffic with the training data: drift tests, HTML report, MLflow metrics, retrain trigger.')
  .option('--task <name>', 'task (default: config/production.json)', production.task ?? 'support-category')
  .option('--log-file <file>', 'serving log', path.join(cfg.root, 'data', 'serving', 'predictions.jsonl'))
  .option('--days <n>', 'look at the last n days of traffic', Number.parseFloat, 7)
  .option('--processed-dir <dir>', 'prepared data (reference)', path.join(cfg.root, 'data', 'processed'))
  .option('--out <dir>', 'where the HTML report goes', path.join(cfg.root, 'reports'))
  .option('--trigger', 'run `make retrain` when the policy says retrain')
  .option('--no-mlflow', 'do not log to MLflow')
  .action((opts: { task: string; logFile: string; days: number; processedDir: string; out: string; trigger?: boolean; mlflow: boolean }) =>
    runMain(async () => {
      taskSpec(opts.task);
      const since = new Date(Date.now() - opts.days * 86_400_000);
      const { records, malformed } = readServingLog(opts.logFile, since);
      if (records.length === 0) throw new Error(`no served predictions in the last ${opts.days} days in ${opts.logFile}`);
      const ref = readPrepared(path.join(path.resolve(opts.processedDir), opts.task)).train;
      const reference = { texts: ref.map((e) => e.text), labels: ref.map((e) => e.label) };
      const drift = driftReport({ reference, current: { texts: records.map((r) => r.text), labels: records.map((r) => r.label) }, labelFeature: 'predicted_label' });
      fs.mkdirSync(opts.out, { recursive: true });
      const file = path.join(opts.out, `monitor-${opts.task}-${new Date().toISOString().slice(0, 10)}.html`);
      fs.writeFileSync(file, monitorHtml(opts.task, drift, reference, records));
      log(`==> ${records.length} served predictions since ${since.toISOString().slice(0, 10)} (${malformed} malformed log lines): drift ${drift.level}, action ${drift.action}`);
      for (const f of drift.features) log(`    ${f.feature.padEnd(18)} ${f.test.padEnd(22)} ${f.statistic.toFixed(4)}${f.pValue !== undefined ? ` p=${f.pValue.toExponential(2)}` : ''}${f.psi !== undefined ? ` psi=${f.psi.toFixed(3)}` : ''} ${f.drifted ? 'DRIFT' : 'ok'}`);
      log(`report: ${path.relative(cfg.root, file)}`);
      if (opts.mlflow) {
        const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
        await withRun(client, { experiment: opts.task, runName: 'monitor', source: 'scripts/monitor.ts', tags: { stage: 'monitor', 'drift.level': drift.level, 'drift.action': drift.action } }, async (run) => {
          await run.logParams({ days: opts.days, served_rows: records.length, reference_rows: reference.texts.length });
          await run.logMetrics({ drifted_share: drift.driftedShare, ...Object.fromEntries(drift.features.map((f) => [`drift/${f.feature}`, f.statistic])) });
          await run.logArtifact(file, 'monitor');
          await run.logText(`${JSON.stringify(drift, null, 2)}\n`, 'monitor/drift.json');
        });
        await client.close();
      }
      if (drift.action !== 'none') {
        log(`policy: ${drift.action === 'retrain_and_alert' ? 'retrain, and ALERT: the model needs new experimentation' : 'retrain'}`);
        if (opts.trigger) {
          const r = spawnSync('make', ['retrain', 'FORCE=1'], { cwd: cfg.root, stdio: 'inherit' });
          process.exitCode = r.status ?? 1;
        }
      }
    }),
  );
program.parse();
