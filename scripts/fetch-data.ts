/**
 * make data: bring the public datasets into data/raw/ (from ../shared/data, else their public source).
 */
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { DATASETS, fetchDataset } from '../src/data/sources';
import { log, runMain } from '../src/cli/progress';

const program = new Command('fetch-data')
  .description(
    'Copy the datasets from ../shared/data (or SHARED_DATA_DIR) into data/raw/, or download them from their pinned public source; every file is sha256-checked.',
  )
  .option('--only <names...>', `datasets to fetch (${DATASETS.map((d) => d.name).join(', ')})`)
  .option(
    '--mirror <url>',
    'replacement for https://raw.githubusercontent.com (env DATA_MIRROR)',
    process.env.DATA_MIRROR,
  )
  .action((opts: { only?: string[]; mirror?: string }) =>
    runMain(async () => {
      const cfg = loadConfig();
      const chosen = opts.only ? DATASETS.filter((d) => opts.only!.includes(d.name)) : DATASETS;
      if (opts.only && chosen.length !== opts.only.length)
        throw new Error(`Unknown dataset in --only ${opts.only.join(' ')}`);
      log(`==> datasets -> ${path.relative(cfg.root, cfg.paths.dataRaw)}/`);
      for (const ds of chosen) {
        const r = await fetchDataset(ds, {
          sharedDir: cfg.paths.sharedData,
          rawDir: cfg.paths.dataRaw,
          mirror: opts.mirror,
        });
        const how = {
          present: 'already present, checksums ok',
          shared: `copied from ${cfg.paths.sharedData}`,
          download: 'downloaded',
        }[r.from];
        log(`    ${ds.name.padEnd(20)} ${how}`);
      }
    }),
  );
program.parse();
