import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { OrtEncoder } from '../../src/engine/encoder-onnx';

// Reference: an independent NumPy forward pass of the same checkpoint (scripts/fixtures/make_encoder_fixture.py).
const f = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/encoder-parity.json'), 'utf8')) as {
  ids: number[][];
  mask: number[][];
  cls: number[][];
  mean_pooled: number[][];
  last_hidden_row1: number[][];
};
let enc: OrtEncoder;

beforeAll(async () => {
  enc = await OrtEncoder.fromCheckpoint(path.join(loadConfig().paths.pretrained, 'all-MiniLM-L6-v2'));
});
afterAll(() => enc.release());

const maxAbsDiff = (a: ArrayLike<number>, b: number[]) => b.reduce((m, v, i) => Math.max(m, Math.abs(v - a[i]!)), 0);

describe('ONNX encoder graph emitted from TypeScript (real pretrained checkpoint)', () => {
  it('matches the reference forward pass to 1e-4 on a padded batch of 8 sentences', async () => {
    const B = f.ids.length;
    const S = f.ids[0]!.length;
    const out = await enc.run({
      inputIds: Int32Array.from(f.ids.flat()),
      attentionMask: Int32Array.from(f.mask.flat()),
      tokenTypeIds: new Int32Array(B * S),
      batchSize: B,
      seqLen: S,
    });
    expect(out.hidden).toBe(384);
    expect(maxAbsDiff(out.meanPooled, f.mean_pooled.flat())).toBeLessThan(1e-4);
    expect(maxAbsDiff(out.cls, f.cls.flat())).toBeLessThan(1e-4);
    const row1 = out.lastHidden.subarray(S * 384, 2 * S * 384);
    const realTokens = f.mask[1]!.filter(Boolean).length;
    expect(maxAbsDiff(row1.subarray(0, realTokens * 384), f.last_hidden_row1.slice(0, realTokens).flat())).toBeLessThan(
      1e-4,
    );
  });
});
