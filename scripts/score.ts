/**
 * make score: batch scoring of a tabular task's feature table with the served champion (the registered
 * artifact, through the model cache): p(churn), action bucket and the top driving features per
 * customer -> reports/scores-<task>-<date>.csv. The table is read through its digest check.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { loadConfig } from '../src/config';
import { readFeatureTable, rowsOf } from '../src/data/feature-table';
import { TABULAR_TASK_NAMES, tabularTaskSpec } from '../src/data/tabular-tasks';
import { MlflowClient } from '../src/mlflow';
import { ModelCache } from '../src/production/model-cache';
import { csvTextCell } from '../src/report/churn';
import { churnBucket, DEFAULT_BUCKETS } from '../src/kinds/churn-bucket';
import { ChampionHolder } from '../src/serve/champion';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const SPLITS = ['all', 'train', 'validation', 'test'] as const;
const program = new Command('score')
  .description(
    "Score a tabular task's feature table with models:/<task>@champion: p(churn), A/B/C bucket and the top 3 driving features per customer, as CSV.",
  )
  .addOption(new Option('--task <name>', 'tabular task').choices(TABULAR_TASK_NAMES).default('telco-churn'))
  .addOption(new Option('--split <name>', 'which rows of the table').choices(SPLITS).default('all'))
  .option('--alias <alias>', 'registry alias to score with', 'champion')
  .option('--processed-dir <dir>', 'where make prepare wrote the feature table', cfg.paths.processed)
  .option('--cache-dir <dir>', 'model cache (MODEL_CACHE_DIR)', cfg.paths.modelCache)
  .option('--out <dir>', 'output folder', path.join(cfg.root, 'reports'))
  .action(
    (opts: {
      task: string;
      split: (typeof SPLITS)[number];
      alias: string;
      processedDir: string;
      cacheDir: string;
      out: string;
    }) =>
      runMain(async () => {
        const spec = tabularTaskSpec(opts.task);
        const table = readFeatureTable(path.join(opts.processedDir, spec.name));
        const rows = opts.split === 'all' ? table.rows : rowsOf(table.rows, opts.split);
        const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
        const holder = new ChampionHolder(client, spec.name, opts.alias, new ModelCache(client, opts.cacheDir, log), {
          log,
        });
        await holder.refresh();
        try {
          const p = holder.model.predictor;
          if (p.input !== 'record') throw new Error(`${spec.name}@${opts.alias} is a ${p.kind} model: it scores texts`);
          const pos = p.labels.indexOf(spec.positiveLabel);
          const lines = ['id,split,p_churn,bucket,driver_1,driver_2,driver_3'];
          const counts = { A: 0, B: 0, C: 0 };
          for (let i = 0; i < rows.length; i += 256) {
            const batch = rows.slice(i, i + 256);
            const probs = await p.predictProba(batch.map((r) => r.features));
            const drivers = await p.explain(batch.map((r) => r.features));
            batch.forEach((r, j) => {
              const pc = probs[j * p.labels.length + pos]!;
              const bucket = churnBucket(pc, DEFAULT_BUCKETS);
              counts[bucket]++;
              const top = bucket === 'C' ? [] : drivers[j]!.filter((d) => d.effect > 0).slice(0, 3);
              lines.push(
                [
                  csvTextCell(r.id),
                  r.split,
                  pc.toFixed(4),
                  bucket,
                  ...[0, 1, 2].map((k) =>
                    csvTextCell(top[k] ? `${top[k].column} = ${top[k].value} (+${top[k].effect.toFixed(3)})` : ''),
                  ),
                ].join(','),
              );
            });
          }
          fs.mkdirSync(opts.out, { recursive: true });
          const file = path.join(opts.out, `scores-${spec.name}-${new Date().toISOString().slice(0, 10)}.csv`);
          fs.writeFileSync(file, `${lines.join('\n')}\n`);
          log(
            `==> ${rows.length} customers scored with ${spec.name} v${holder.model.version} (@${opts.alias}, table ${table.digest.slice(0, 12)}...): A ${counts.A}, B ${counts.B}, C ${counts.C}`,
          );
          log(`    ${path.relative(cfg.root, file)}`);
        } finally {
          await holder.close();
          await client.close();
        }
      }),
  );
program.parse();
