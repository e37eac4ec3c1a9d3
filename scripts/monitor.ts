/**
 * make monitor: drift and prediction-distribution shift of one task's served traffic (its model's
 * records in the serving log, cleaned as training texts were) against the training reference; HTML
 * report with charts, metrics to MLflow, exit code 2 on an alert, and the retrain trigger when the
 * drift policy says so.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { readPrepared } from '../src/data/prepare';
import { taskSpec } from '../src/data/tasks';
import { MlflowClient, withRun } from '../src/mlflow';
import { monitorHtml, tabularMonitorHtml } from '../src/monitor/monitor-report';
import { driftTextfile, type DriftReport } from '../src/monitor/drift';
import { isMissingIssue, tabularDriftReport } from '../src/monitor/tabular-drift';
import { streamRejected } from '../src/monitor/serving-log';
import { readFeatureTable, referenceMissing, rowsOf } from '../src/data/feature-table';
import { isTabularTask, tabularTaskSpec } from '../src/data/tabular-tasks';
import { sampleServed, servedDrift } from '../src/monitor/served';
import { resolveTask } from '../src/production/config';
import { log, runMain } from '../src/cli/progress';
import { formatInterval, sliceMetrics } from '../src/feedback/slice';
import { feedbackPaths, readSliceEstimates } from '../src/feedback/store';

const cfg = loadConfig();

const program = new Command('monitor')
  .description(
    "Compare one task's served traffic with its training data: drift tests, HTML report, MLflow metrics, retrain trigger. Exit code 2: large drift, the model needs new experimentation.",
  )
  .option('--task <name>', 'task (default: the only promoted task)')
  .option('--model <name>', 'registered model whose predictions to read (default: the task)')
  .option(
    '--log-dir <path>',
    'serving log folder (daily files) or one log file; SERVING_LOG_DIR',
    cfg.paths.servingLogs,
  )
  .option('--days <n>', 'look at the last n days of traffic', Number.parseFloat, 7)
  .option(
    '--max-rows <n>',
    'uniform sample of at most n served predictions (the log is streamed, never read whole)',
    (v) => Number.parseInt(v, 10),
    50_000,
  )
  .option('--processed-dir <dir>', 'prepared data (reference)', cfg.paths.processed)
  .option('--out <dir>', 'where the HTML report goes', path.join(cfg.root, 'reports'))
  .option(
    '--data-dir <dir>',
    'data folder whose feedback/<task>/ production slice (make review-import) is shown',
    path.join(cfg.root, 'data'),
  )
  .option('--trigger', 'run `make retrain` when the policy says retrain')
  .option('--no-mlflow', 'do not log to MLflow')
  .action(
    (opts: {
      task?: string;
      model?: string;
      logDir: string;
      days: number;
      maxRows: number;
      processedDir: string;
      dataDir: string;
      out: string;
      trigger?: boolean;
      mlflow: boolean;
    }) =>
      runMain(async () => {
        const task = resolveTask(cfg.paths.productionConfigs, opts.task);
        const model = opts.model ?? task;
        const since = new Date(Date.now() - opts.days * 86_400_000);
        const served = await sampleServed(opts.logDir, { model, since }, opts.maxRows);
        if (served.total === 0)
          throw new Error(
            `no predictions of ${model} in the last ${opts.days} days in ${opts.logDir}${served.otherModels ? ` (${served.otherModels} of other models)` : ''}`,
          );
        const dataDir = path.join(path.resolve(opts.processedDir), task);
        let drift: DriftReport;
        let html: string;
        let referenceRows: number;
        if (isTabularTask(task)) {
          // Tabular: every input column, the predicted labels and the missing-value shares.
          const tspec = tabularTaskSpec(task);
          const train = rowsOf(readFeatureTable(dataDir).rows, 'train');
          const reference = { records: train.map((r) => r.features), labels: train.map((r) => r.label) };
          const rejected = { rows: 0, missing: {} as Record<string, number> };
          await streamRejected(opts.logDir, { model, since }, (r) => {
            rejected.rows++;
            for (const i of r.issues)
              if (isMissingIssue(i.message)) rejected.missing[i.column] = (rejected.missing[i.column] ?? 0) + 1;
          });
          if (rejected.rows) log(`    ${rejected.rows} rejected rows of ${model} (missing or invalid columns)`);
          drift = tabularDriftReport({
            columns: tspec.columns,
            reference: { ...reference, missing: referenceMissing(dataDir, tspec.columns) },
            current: {
              records: served.records.flatMap((r) => (r.features ? [r.features] : [])),
              labels: served.records.map((r) => r.label),
              missing: { rows: served.total + rejected.rows, missing: rejected.missing },
            },
          });
          html = tabularMonitorHtml(task, drift, tspec.columns, reference, served.records);
          referenceRows = train.length;
        } else {
          const spec = taskSpec(task);
          const ref = readPrepared(dataDir).train;
          const reference = { texts: ref.map((e) => e.text), labels: ref.map((e) => e.label) };
          drift = servedDrift(ref, served.records, spec.cleaning, undefined, served.scopeDays);
          html = monitorHtml(task, drift, reference, served.records, served.scopeDays);
          referenceRows = ref.length;
        }
        fs.mkdirSync(opts.out, { recursive: true });
        const file = path.join(opts.out, `monitor-${task}-${new Date().toISOString().slice(0, 10)}.html`);
        fs.writeFileSync(file, html);
        // For Prometheus (node_exporter's textfile collector): written whole, then renamed, as the collector asks.
        const prom = path.join(opts.out, `monitor-${task}.prom`);
        fs.writeFileSync(`${prom}.tmp`, driftTextfile(task, drift, new Date()));
        fs.renameSync(`${prom}.tmp`, prom);
        const versions = Object.entries(served.perVersion)
          .map(([v, n]) => `v${v}: ${n}`)
          .join(', ');
        log(
          `==> ${served.total} served predictions of ${model} since ${since.toISOString().slice(0, 10)} (${versions}; ${served.records.length} compared, ${served.otherModels} of other models skipped, ${served.malformed} malformed log lines): drift ${drift.level}, action ${drift.action}`,
        );
        for (const f of drift.features)
          log(
            `    ${f.feature.padEnd(24)} ${f.test.padEnd(22)} ${f.statistic.toFixed(4)}${f.pValue !== undefined ? ` p=${f.pValue.toExponential(2)}` : ''}${f.psi !== undefined ? ` psi=${f.psi.toFixed(3)}` : ''} ${f.drifted ? 'DRIFT' : 'ok'}`,
          );
        log(`report: ${path.relative(cfg.root, file)}`);
        // What people labelled of the traffic (make review): the served versions' accuracy on real queries.
        const slice = readSliceEstimates(feedbackPaths(path.resolve(opts.dataDir), task));
        for (const e of slice)
          log(
            `    production slice v${e.version}: accuracy ${formatInterval(e.accuracy)}, in-scope kept ` +
              `${formatInterval(e.inScopeKept)}, in-scope traffic ${formatInterval(e.inScopeRate)}`,
          );
        if (opts.mlflow) {
          const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
          await withRun(
            client,
            {
              experiment: task,
              runName: 'monitor',
              source: 'scripts/monitor.ts',
              tags: { stage: 'monitor', 'drift.level': drift.level, 'drift.action': drift.action },
            },
            async (run) => {
              await run.logParams({
                days: opts.days,
                model,
                served_rows: served.total,
                compared_rows: served.records.length,
                reference_rows: referenceRows,
                served_versions: Object.keys(served.perVersion).join(','),
              });
              await run.logMetrics({
                drifted_share: drift.driftedShare,
                ...Object.fromEntries(drift.features.map((f) => [`drift/${f.feature}`, f.statistic])),
                ...Object.fromEntries(
                  drift.features.flatMap((f) => (f.share ? [['out_of_scope_share', f.share.latest]] : [])),
                ),
                ...Object.fromEntries(Object.entries(served.perVersion).map(([v, n]) => [`served_rows/v${v}`, n])),
              });
              for (const e of slice) await run.logMetrics(sliceMetrics(e), Number(e.version) || 0);
              await run.logArtifact(file, 'monitor');
              await run.logText(`${JSON.stringify(drift, null, 2)}\n`, 'monitor/drift.json');
            },
          );
          await client.close();
        }
        if (drift.action === 'none') return;
        const alert = drift.action === 'retrain_and_alert';
        log(`policy: ${alert ? 'retrain, and ALERT: the model needs new experimentation' : 'retrain'}`);
        if (opts.trigger) {
          const r = spawnSync('make', ['--no-print-directory', 'retrain', `TASK=${task}`, 'FORCE=1'], {
            cwd: cfg.root,
            stdio: 'inherit',
          });
          if (r.status !== 0 && r.status !== 2) process.exitCode = r.status ?? 1;
        }
        if (alert) {
          process.stderr.write(`ALERT: large drift in ${task}'s served traffic: ${drift.reason}\n`);
          process.exitCode = 2;
        }
      }),
  );
program.parse();
