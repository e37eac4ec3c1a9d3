import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChecksumError, copyVerified, downloadFile, sha256File } from '../../src/io/files';
import { startHttpServer } from '../helpers/http-server';

const body = Buffer.from('x'.repeat(3_000_000) + 'end');
const sha = createHash('sha256').update(body).digest('hex');
let srv: Awaited<ReturnType<typeof startHttpServer>>;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'files-test-'));

beforeAll(async () => {
  srv = await startHttpServer((req, res) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    } else if (req.url === '/moved') {
      res.writeHead(302, { location: '/big' });
      res.end();
    } else {
      res.writeHead(404);
      res.end('nope');
    }
  });
});
afterAll(async () => {
  await srv.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('downloadFile', () => {
  it('streams a file to disk, follows redirects and returns its digest', async () => {
    const dest = path.join(tmp, 'a', 'big.bin');
    const r = await downloadFile(`${srv.url}/moved`, dest, { sha256: sha, progress: false });
    expect(r).toEqual({ bytes: body.length, sha256: sha });
    expect(await sha256File(dest)).toBe(sha);
  });

  it('rejects a wrong checksum and leaves neither the file nor a partial', async () => {
    const dest = path.join(tmp, 'bad.bin');
    await expect(
      downloadFile(`${srv.url}/big`, dest, { sha256: '0'.repeat(64), progress: false }),
    ).rejects.toBeInstanceOf(ChecksumError);
    expect(fs.existsSync(dest)).toBe(false);
    expect(fs.existsSync(`${dest}.part`)).toBe(false);
  });

  it('reports the HTTP status of a failed request', async () => {
    await expect(downloadFile(`${srv.url}/missing`, path.join(tmp, 'm'), { progress: false })).rejects.toThrow(
      /HTTP 404/,
    );
  });
});

describe('copyVerified', () => {
  it('copies with a checksum check', async () => {
    const src = path.join(tmp, 'src.txt');
    fs.writeFileSync(src, 'hello');
    const good = createHash('sha256').update('hello').digest('hex');
    await copyVerified(src, path.join(tmp, 'out', 'dst.txt'), good);
    expect(fs.readFileSync(path.join(tmp, 'out', 'dst.txt'), 'utf8')).toBe('hello');
    await expect(copyVerified(src, path.join(tmp, 'out', 'bad.txt'), good.replace(/^./, 'f'))).rejects.toThrow(
      /Checksum mismatch/,
    );
    expect(fs.existsSync(path.join(tmp, 'out', 'bad.txt'))).toBe(false);
  });
});
