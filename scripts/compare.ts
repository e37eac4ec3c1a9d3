/**
 * make compare: k-fold cross-validation of the tabular candidates on a task's feature table,
 * logged to MLflow as a parent run (comparison table, figure) with one child run (and model) per
 * candidate. The best child run can be promoted like any run: make promote RUN=<id>.
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import { loadConfig } from '../src/config';
import { featureTableFiles, readFeatureTable } from '../src/data/feature-table';
import { TABULAR_TASK_NAMES, tabularTaskSpec } from '../src/data/tabular-tasks';
import { compareAndLog } from '../src/kinds/tabular/runs';
import { MlflowClient } from '../src/mlflow';
import { DEFAULT_CANDIDATES } from '../src/kinds/tabular/compare';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const program = new Command('compare')
  .description(
    'Compare logistic regression, a random forest and LightGBM by k-fold cross-validation on a tabular task (PyCaret-style table), logged to MLflow.',
  )
  .addOption(new Option('--task <name>', 'tabular task').choices(TABULAR_TASK_NAMES).default('telco-churn'))
  .option('--folds <k>', 'cross-validation folds', (v) => Number.parseInt(v, 10), 5)
  .option('--seed <n>', 'seed of the folds and the learners', (v) => Number.parseInt(v, 10), 0)
  .option(
    '--only <names...>',
    `candidates to run (default: all of ${DEFAULT_CANDIDATES.map((c) => c.name).join(', ')})`,
  )
  .option('--processed-dir <dir>', 'where make prepare wrote the feature table', cfg.paths.processed)
  .action((opts: { task: string; folds: number; seed: number; only?: string[]; processedDir: string }) =>
    runMain(async () => {
      const spec = tabularTaskSpec(opts.task);
      const dir = path.join(opts.processedDir, spec.name);
      const data = readFeatureTable(dir);
      const candidates = opts.only ? DEFAULT_CANDIDATES.filter((c) => opts.only!.includes(c.name)) : DEFAULT_CANDIDATES;
      if (candidates.length === 0)
        throw new Error(`--only matched no candidate (${DEFAULT_CANDIDATES.map((c) => c.name).join(', ')})`);
      log(
        `==> ${spec.name}: ${data.rows.length} customers, ${opts.folds}-fold CV of ${candidates.map((c) => c.name).join(', ')}`,
      );
      const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
      const t0 = Date.now();
      const { comparison, parentRunId, childRunIds } = await compareAndLog(client, {
        spec,
        data,
        candidates,
        folds: opts.folds,
        seed: opts.seed,
        python: cfg.python,
        tableFile: featureTableFiles(dir).table,
        root: cfg.root,
        source: 'scripts/compare.ts',
        onProgress: (line) => log(`    ${line}`),
      });
      const { columns, rows } = comparison.table;
      const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
      const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
      log('');
      log(line(columns));
      for (const r of rows) log(line(r));
      log('');
      for (const o of comparison.outcomes) {
        const c = o.calibration;
        log(
          `    ${o.summary.name}: test AUC ${(o.test.rocAuc ?? NaN).toFixed(4)}, ONNX vs library max |diff| ${o.parityMaxAbsDiff.toExponential(2)}, ` +
            `temperature ${c.temperature.toFixed(3)}: test ECE ${c.test.eceBefore.toFixed(4)} -> ${c.test.eceAfter.toFixed(4)}, ` +
            `out-of-fold ECE ${c.oof.eceBefore.toFixed(4)} -> ${c.oof.eceAfter.toFixed(4)}`,
        );
      }
      const exp = await client.getExperimentByName(spec.name);
      log(
        `==> best: ${comparison.best.summary.name} (run ${childRunIds[comparison.best.summary.name]}), ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
      log(`    MLflow: ${client.trackingUri}/#/experiments/${exp?.experiment_id}/runs/${parentRunId}`);
      log(`    promote it: make promote RUN=${childRunIds[comparison.best.summary.name]} ALIAS=champion`);
      await client.close();
    }),
  );
program.parse();
