/**
 * make image / make image-base: the project's container images (docker/serve.Dockerfile,
 * docker/train.Dockerfile) built with the Docker CLI, and for machines with no image registry, a local
 * Node 20 bookworm base made from Debian packages.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../src/config';
import { buildImage, buildLocalBase, IMAGES, imageSize, OFFICIAL_BASE, type ImageName } from '../src/image/docker';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();
const names = Object.keys(IMAGES) as ImageName[];

const program = new Command('image').description(
  'Container images of the project. Uses the docker CLI and its engine (DOCKER_HOST); ' +
    `EXTRA_CA_CERTS=<bundle> when the build must trust a TLS-intercepting proxy.`,
);

program
  .command('build')
  .description(`build ${names.map((n) => IMAGES[n].tag).join(' and ')}`)
  .option('--base <image>', `BASE_IMAGE (default: the Dockerfiles' ${OFFICIAL_BASE}; pin it by digest)`)
  .option('--python-base <image>', 'PYTHON_IMAGE of the training image (default: python:3.11-slim-bookworm)')
  .option('--only <name>', `one image: ${names.join('|')}`)
  .option('--network-host', 'build with the host network (engines without a bridge)')
  .action((opts: { base?: string; pythonBase?: string; only?: string; networkHost?: boolean }) =>
    runMain(async () => {
      const chosen = opts.only ? [opts.only as ImageName] : names;
      for (const n of chosen) if (!IMAGES[n]) throw new Error(`unknown image ${n}; one of ${names.join(', ')}`);
      const caFile = process.env.EXTRA_CA_CERTS || undefined;
      if (caFile && !fs.existsSync(caFile)) throw new Error(`EXTRA_CA_CERTS=${caFile} does not exist`);
      for (const n of chosen) {
        const t0 = Date.now();
        log(`==> ${IMAGES[n].tag} (${IMAGES[n].dockerfile}, base ${opts.base ?? OFFICIAL_BASE})`);
        const tag = await buildImage({}, cfg.root, n, {
          base: opts.base,
          pythonBase: opts.pythonBase,
          caFile,
          network: opts.networkHost ? 'host' : 'default',
        });
        const mb = (await imageSize({}, tag)) / 1e6;
        log(`    ${tag}: ${mb.toFixed(0)} MB, built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      }
    }),
  );

program
  .command('base')
  .description('make a Node 20 bookworm base without a registry: debootstrap (Debian packages) + this Node')
  .option('--tag <tag>', 'image tag', 'convo-mlops/node20-bookworm-local')
  .action((opts: { tag: string }) =>
    runMain(async () => {
      const work = fs.mkdtempSync(path.join(os.tmpdir(), 'image-base-'));
      try {
        await buildLocalBase({}, opts.tag, work, { log });
        log(
          `    ${opts.tag}: ${((await imageSize({}, opts.tag)) / 1e6).toFixed(0)} MB; make image BASE_IMAGE=${opts.tag}`,
        );
      } finally {
        fs.rmSync(work, { recursive: true, force: true });
      }
    }),
  );

program.parse();
