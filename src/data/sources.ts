/**
 * The public datasets the project uses: one declaration per dataset (files, hashes, public source).
 * `make data` copies them from ../shared/data when present, else downloads them from the pinned
 * commit of their public repository; either way each file is checked against its sha256.
 */
import fs from 'node:fs';
import path from 'node:path';
import { copyVerified, downloadFile, fileMatches } from '../io/files';

export interface DatasetSource {
  name: string;
  license: string;
  /** Base URL of the pinned public copy; a file's URL is `${baseUrl}/${remotePath}`. */
  baseUrl: string;
  files: { name: string; remotePath: string; sha256: string }[];
}

const GITHUB_RAW = 'https://raw.githubusercontent.com';
/** The pinned commit of aws-samples/churn-prediction-with-text-and-interpretability the chat logs come from. */
const AWS_CHURN_COMMIT = '646dfcc72a838b4449bc4e314dfc67596a892652';

export const DATASETS: DatasetSource[] = [
  {
    name: 'banking77',
    license: 'CC-BY-4.0',
    baseUrl: `${GITHUB_RAW}/PolyAI-LDN/task-specific-datasets/57ec275d8078af65b7731c2a98be812d844a6d6b`,
    files: [
      {
        name: 'train.csv',
        remotePath: 'banking_data/train.csv',
        sha256: 'b06e26ac675513959a63135f11b94ea7786ed02da65db93a5650d8838cbc664b',
      },
      {
        name: 'test.csv',
        remotePath: 'banking_data/test.csv',
        sha256: 'd12d6e3bc4c3103966ae786dc435913c0c563dfa328f5a3646d0e62cfeeb474d',
      },
      {
        name: 'categories.json',
        remotePath: 'banking_data/categories.json',
        sha256: '53261da888122daf2d120d925458631d9619e15d82e56052e7a42e535ce32b63',
      },
    ],
  },
  {
    name: 'aws-churn-chatlogs',
    license: 'MIT-0',
    baseUrl: `${GITHUB_RAW}/aws-samples/churn-prediction-with-text-and-interpretability/${AWS_CHURN_COMMIT}`,
    files: [
      {
        name: 'text.csv',
        remotePath: 'data/text.csv',
        sha256: 'a6c1c47e3c7f4607e2037ea52d1973b32228e65aa96104c4dc3a252172184d5c',
      },
    ],
  },
  {
    name: 'telco-churn',
    license: 'Apache-2.0',
    baseUrl: `${GITHUB_RAW}/IBM/telco-customer-churn-on-icp4d/d5371f5d83a446ad5673cbcca3b814b926491f8a`,
    files: [
      {
        name: 'Telco-Customer-Churn.csv',
        remotePath: 'data/Telco-Customer-Churn.csv',
        sha256: '16320c9c1ec72448db59aa0a26a0b95401046bef5d02fd3aeb906448e3055e91',
      },
    ],
  },
];

export type FetchedFrom = 'present' | 'shared' | 'download';

export interface DatasetFetchReport {
  name: string;
  from: FetchedFrom;
  dir: string;
}

export interface FetchDataOptions {
  sharedDir: string;
  rawDir: string;
  /** Replaces the GitHub host in every source URL (a mirror, or a test server). */
  mirror?: string;
  datasets?: DatasetSource[];
}

function sourceUrl(ds: DatasetSource, remotePath: string, mirror?: string): string {
  const base = mirror ? ds.baseUrl.replace(GITHUB_RAW, mirror.replace(/\/+$/, '')) : ds.baseUrl;
  return `${base}/${remotePath}`;
}

/** Brings one dataset into rawDir/<name>/: already there, copied from sharedDir, or downloaded. */
export async function fetchDataset(ds: DatasetSource, opts: FetchDataOptions): Promise<DatasetFetchReport> {
  const dir = path.join(opts.rawDir, ds.name);
  const present = await Promise.all(ds.files.map((f) => fileMatches(path.join(dir, f.name), f.sha256)));
  if (present.every(Boolean)) return { name: ds.name, from: 'present', dir };

  const sharedDir = path.join(opts.sharedDir, ds.name);
  if (ds.files.every((f) => fs.existsSync(path.join(sharedDir, f.name)))) {
    for (const f of ds.files) await copyVerified(path.join(sharedDir, f.name), path.join(dir, f.name), f.sha256);
    // Provenance and licence travel with the data.
    for (const extra of ['PROVENANCE.md', 'SOURCE_LICENSE.txt']) {
      if (fs.existsSync(path.join(sharedDir, extra)))
        fs.copyFileSync(path.join(sharedDir, extra), path.join(dir, extra));
    }
    return { name: ds.name, from: 'shared', dir };
  }

  const failures: string[] = [];
  for (const f of ds.files) {
    const url = sourceUrl(ds, f.remotePath, opts.mirror);
    try {
      await downloadFile(url, path.join(dir, f.name), { sha256: f.sha256, timeoutMs: 120_000 });
    } catch (err) {
      const cause = (err as Error).cause;
      failures.push(`  ${url}: ${cause instanceof Error ? cause.message : (err as Error).message}`);
    }
  }
  if (failures.length > 0) {
    throw new Error(
      `Dataset "${ds.name}" is not in ${sharedDir} and could not be downloaded:\n${failures.join('\n')}\n` +
        `Fix: put the files (${ds.files.map((f) => f.name).join(', ')}) in ${sharedDir}, ` +
        'set SHARED_DATA_DIR to a folder that has them, ' +
        `or set DATA_MIRROR to a reachable copy of ${GITHUB_RAW}.`,
    );
  }
  fs.writeFileSync(
    path.join(dir, 'PROVENANCE.md'),
    `# ${ds.name}\n- Source: ${ds.baseUrl}\n- License: ${ds.license}\n` +
      `- Files: ${ds.files.map((f) => `${f.name} (sha256 ${f.sha256})`).join(', ')}\n`,
  );
  return { name: ds.name, from: 'download', dir };
}
