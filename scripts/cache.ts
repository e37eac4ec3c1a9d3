/**
 * make cache-prune: the model cache keeps every version it ever downloaded, so a server that hot-swaps
 * weekly grows by a model a week. This keeps the newest versions per model and everything an alias
 * names (asked of the registry, which must answer: a version it could not check is never removed).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { MlflowClient } from '../src/mlflow';
import { ModelCache, pruneModelCache } from '../src/production/model-cache';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();

new Command('cache')
  .description('The local model cache (MODEL_CACHE_DIR).')
  .command('prune')
  .description(
    'remove cached model versions beyond the newest --keep per model, except every version an alias names now and ' +
      'the last version each alias served; also abandoned partial downloads',
  )
  .option('--cache-dir <dir>', 'model cache (MODEL_CACHE_DIR)', cfg.paths.modelCache)
  .option('--keep <n>', 'newest versions kept per model besides the aliased ones', (v) => Number.parseInt(v, 10), 3)
  .action((opts: { cacheDir: string; keep: number }) =>
    runMain(async () => {
      if (!Number.isInteger(opts.keep) || opts.keep < 0) throw new Error('--keep must be a whole number >= 0');
      const root = path.resolve(opts.cacheDir);
      const client = MlflowClient.fromEnv({ journalDir: cfg.paths.journal });
      try {
        const cache = new ModelCache(client, root);
        const protect = new Set<string>();
        const models = fs.existsSync(root)
          ? fs.readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory())
          : [];
        for (const { name } of models) {
          const rm = await client.getRegisteredModel(name).catch((err: Error) => {
            throw new Error(
              `cannot ask the registry which versions of ${name} are aliased (${err.message}); nothing removed`,
            );
          });
          for (const a of rm?.aliases ?? []) {
            const mv = await client.getModelVersion(name, a.version);
            if (mv.run_id) protect.add(cache.dirFor(mv));
          }
        }
        const removed = pruneModelCache(root, opts.keep, protect);
        for (const r of removed) log(`removed ${path.relative(root, r)}`);
        log(`cache-prune: ${removed.length} folder(s) removed from ${root}; ${protect.size} aliased version(s) kept`);
      } finally {
        await client.close();
      }
    }),
  )
  .parent!.parse();
