/**
 * make prepare: run the data stage for each task (validate, quarantine, clean, split, encode labels),
 * write data/processed/<task>/, and record it in MLflow (params, metrics, dataset inputs, report).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { loadConfig } from '../src/config';
import { prepareTask, SPLITS, writePrepared } from '../src/data/prepare';
import { dataReportHtml, datasetInputs, preparationMetrics, preparationParams } from '../src/data/tracking';
import { TASK_NAMES, taskSpec } from '../src/data/tasks';
import { isTabularTask, TABULAR_TASK_NAMES, tabularTaskSpec } from '../src/data/tabular-tasks';
import { featureTableInputs, prepareTabular, writeFeatureTable } from '../src/data/feature-table';
import { profileColumns, profileHtml } from '../src/data/profile';
import { dataExperiment, MlflowClient, withRun } from '../src/mlflow';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const program = new Command('prepare-data')
  .description(
    'Validate, clean and split the datasets for each task into data/processed/<task>/ and log the data stage to MLflow.',
  )
  .addOption(
    new Option('--task <names...>', 'tasks to prepare')
      .choices([...TASK_NAMES, ...TABULAR_TASK_NAMES])
      .default([...TASK_NAMES, ...TABULAR_TASK_NAMES]),
  )
  .option('--seed <n>', "split seed (default: the task's)", (v) => Number.parseInt(v, 10))
  .option(
    '--max-per-split <n>',
    'small-data mode: keep at most n examples per split (env SMALL_DATA=n)',
    (v) => Number.parseInt(v, 10),
    process.env.SMALL_DATA ? Number(process.env.SMALL_DATA) : undefined,
  )
  .option('--processed-dir <dir>', 'where prepared tasks are written', path.join(cfg.root, 'data', 'processed'))
  .option('--no-mlflow', 'do not log to MLflow')
  .action((opts: { task: string[]; seed?: number; maxPerSplit?: number; processedDir: string; mlflow: boolean }) =>
    runMain(async () => {
      const client = opts.mlflow ? MlflowClient.fromEnv({ journalDir: cfg.paths.journal }) : undefined;
      for (const name of opts.task) {
        if (isTabularTask(name)) {
          await prepareTabularTask(name, opts, client);
          continue;
        }
        const spec = taskSpec(name);
        const t0 = Date.now();
        const prepared = prepareTask(spec, cfg.paths.dataRaw, { seed: opts.seed, maxPerSplit: opts.maxPerSplit });
        const dir = path.join(path.resolve(opts.processedDir), name);
        const files = writePrepared(prepared, dir);
        const s = prepared.stats;
        logStage(name, s, files.quarantine, prepared.quarantine, t0);
        log(`    train digest ${prepared.digests.train.slice(0, 12)}..., labels: ${prepared.labelMap.labels.length}`);
        if (!client) continue;
        const { runId, experimentId } = await withRun(
          client,
          {
            experiment: dataExperiment(name),
            runName: 'prepare-data',
            source: 'scripts/prepare-data.ts',
            tags: { stage: 'data', 'data.digest.train': prepared.digests.train },
          },
          async (run) => {
            await run.logParams(preparationParams(spec, prepared));
            await run.logMetrics(preparationMetrics(prepared));
            await run.logInputs(datasetInputs(prepared, files.splits, cfg.root));
            for (const f of [files.manifest, files.labelMap, files.quarantine]) await run.logArtifact(f, 'data');
            const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'report-')), 'data_report.html');
            fs.writeFileSync(report, dataReportHtml(spec, prepared));
            await run.logArtifact(report, 'data');
            return { runId: run.runId, experimentId: run.experimentId };
          },
        );
        log(`    MLflow: ${client.trackingUri}/#/experiments/${experimentId}/runs/${runId}`);
      }
      await client?.close();
    }),
  );
/** The tabular data stage: validated rows -> feature table (digest-versioned) + quarantine, logged like the text tasks. */
async function prepareTabularTask(
  name: string,
  opts: { seed?: number; maxPerSplit?: number; processedDir: string },
  client: MlflowClient | undefined,
): Promise<void> {
  const spec = tabularTaskSpec(name);
  const t0 = Date.now();
  const table = prepareTabular(spec, cfg.paths.dataRaw, { seed: opts.seed, maxPerSplit: opts.maxPerSplit });
  const files = writeFeatureTable(table, path.join(path.resolve(opts.processedDir), name));
  const s = table.stats;
  logStage(name, s, files.quarantine, table.quarantine, t0);
  log(`    feature table ${path.relative(cfg.root, files.table)}, digest ${table.digest.slice(0, 12)}...`);
  if (!client) return;
  const runId = await withRun(
    client,
    {
      experiment: dataExperiment(name),
      runName: 'prepare-data',
      source: 'scripts/prepare-data.ts',
      tags: { stage: 'data', 'data.digest.train': table.digest },
    },
    async (run) => {
      await run.logParams({
        task: name,
        dataset: spec.dataset,
        seed: table.seed,
        validation_share: spec.split.validationShare,
        test_share: spec.split.testShare,
        max_bad_share: spec.maxBadShare,
        columns: spec.columns.length,
      });
      await run.logMetrics({
        rows_read: s.rowsRead,
        rows_bad: s.rowsBad,
        bad_share: s.rowsRead ? s.rowsBad / s.rowsRead : 0,
        ...Object.fromEntries(SPLITS.map((x) => [`n_${x}`, s.sizes[x]])),
        positive_share: table.rows.filter((r) => r.label === spec.positiveLabel).length / table.rows.length,
      });
      await run.logInputs(featureTableInputs(spec, table, files.table, cfg.root));
      for (const f of [files.manifest, files.labelMap, files.quarantine]) await run.logArtifact(f, 'data');
      const profile = profileColumns(table.rows.map((r) => ({ ...r.features, [spec.labelColumn]: r.label })));
      await run.logText(profileHtml(`Feature table profile: ${name}`, profile), 'data/profile.html');
      return run.runId;
    },
  );
  log(`    MLflow run ${runId}`);
}

/** What the data stage says about a task: rows, quarantine (reasons and the first row numbers), split sizes. */
function logStage(
  name: string,
  s: { rowsRead: number; rowsBad: number; badReasons: Record<string, number>; sizes: Record<string, number> },
  quarantineFile: string,
  quarantine: readonly { row: number }[],
  t0: number,
): void {
  log(
    `==> ${name}: ${s.rowsRead} rows, ${s.rowsBad} quarantined -> ${SPLITS.map((x) => `${x} ${s.sizes[x]}`).join(', ')} (${Date.now() - t0} ms)`,
  );
  if (s.rowsBad)
    log(
      `    quarantine: ${path.relative(cfg.root, quarantineFile)} (${Object.entries(s.badReasons)
        .map(([r, n]) => `${n} x ${r}`)
        .join('; ')}; rows ${quarantine
        .slice(0, 5)
        .map((b) => b.row)
        .join(', ')}${quarantine.length > 5 ? ', ...' : ''})`,
    );
}

program.parse();
