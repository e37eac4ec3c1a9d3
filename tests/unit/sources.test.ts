import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DATASETS, fetchDataset, type DatasetSource } from '../../src/data/sources';
import { startHttpServer } from '../helpers/http-server';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const content = 'text,category\nhello,greeting\n';
const tinyDataset = (baseUrl: string): DatasetSource => ({
  name: 'tiny',
  license: 'CC0',
  baseUrl,
  files: [{ name: 'train.csv', remotePath: 'data/train.csv', sha256: sha(content) }],
});

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sources-test-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('dataset declarations', () => {
  it('pin every public source to a commit and every file to a sha256', () => {
    for (const ds of DATASETS) {
      expect(ds.baseUrl).toMatch(/\/[0-9a-f]{40}$/);
      for (const f of ds.files) expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(DATASETS.map((d) => d.name)).toEqual(['banking77', 'aws-churn-chatlogs', 'telco-churn', 'nlupp']);
  });
});

describe('fetchDataset', () => {
  it('copies from the shared folder with provenance, then reports it present', async () => {
    const shared = path.join(tmp, 'shared');
    fs.mkdirSync(path.join(shared, 'tiny'), { recursive: true });
    fs.writeFileSync(path.join(shared, 'tiny', 'train.csv'), content);
    fs.writeFileSync(path.join(shared, 'tiny', 'PROVENANCE.md'), '# tiny');
    const opts = { sharedDir: shared, rawDir: path.join(tmp, 'raw') };
    const ds = tinyDataset('http://127.0.0.1:9/unused');
    expect((await fetchDataset(ds, opts)).from).toBe('shared');
    expect(fs.readFileSync(path.join(tmp, 'raw', 'tiny', 'train.csv'), 'utf8')).toBe(content);
    expect(fs.existsSync(path.join(tmp, 'raw', 'tiny', 'PROVENANCE.md'))).toBe(true);
    expect((await fetchDataset(ds, opts)).from).toBe('present');
  });

  it('refuses a shared copy whose checksum differs', async () => {
    const shared = path.join(tmp, 'shared');
    fs.mkdirSync(path.join(shared, 'tiny'), { recursive: true });
    fs.writeFileSync(path.join(shared, 'tiny', 'train.csv'), content + 'tampered,row\n');
    await expect(
      fetchDataset(tinyDataset('http://127.0.0.1:9'), { sharedDir: shared, rawDir: path.join(tmp, 'raw') }),
    ).rejects.toThrow(/Checksum mismatch/);
  });

  it('downloads from the public source (here a mirror on loopback) when no shared copy exists', async () => {
    const srv = await startHttpServer((req, res) => {
      if (req.url === '/owner/repo/abc/data/train.csv') res.end(content);
      else res.writeHead(404).end();
    });
    try {
      const ds = tinyDataset('https://raw.githubusercontent.com/owner/repo/abc');
      const r = await fetchDataset(ds, {
        sharedDir: path.join(tmp, 'none'),
        rawDir: path.join(tmp, 'raw'),
        mirror: srv.url,
      });
      expect(r.from).toBe('download');
      expect(srv.requests).toEqual(['GET /owner/repo/abc/data/train.csv']);
      expect(fs.readFileSync(path.join(tmp, 'raw', 'tiny', 'train.csv'), 'utf8')).toBe(content);
    } finally {
      await srv.close();
    }
  });

  it('fails with a clear error naming both places when neither works', async () => {
    const ds = tinyDataset('http://127.0.0.1:9/owner/repo/abc');
    const err = await fetchDataset(ds, { sharedDir: path.join(tmp, 'none'), rawDir: path.join(tmp, 'raw') }).catch(
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg).toContain(`Dataset "tiny" is not in ${path.join(tmp, 'none', 'tiny')}`);
    expect(msg).toContain('http://127.0.0.1:9/owner/repo/abc/data/train.csv');
    expect(msg).toContain('SHARED_DATA_DIR');
    expect(fs.existsSync(path.join(tmp, 'raw', 'tiny', 'train.csv'))).toBe(false);
  });
});
