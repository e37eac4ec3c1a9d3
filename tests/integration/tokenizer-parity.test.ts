import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { TextTokenizer } from '../../src/features/tokenize';

// Reference ids from Hugging Face's Rust `tokenizers` (see scripts/fixtures/make_tokenizer_fixture.py).
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/tokenizer-parity.json'), 'utf8')) as {
  max_length: number;
  cases: { text: string; ids: number[]; ids_max64: number[] }[];
};
const cfg = loadConfig();
let tok: TextTokenizer;

beforeAll(async () => {
  tok = await TextTokenizer.fromDir(path.join(cfg.paths.pretrained, cfg.pretrained.name));
});

describe('tokenizer parity with the reference implementation (real checkpoint)', () => {
  it(`gives identical ids on all ${fixture.cases.length} fixture sentences, with and without truncation`, () => {
    expect(fixture.cases.length).toBeGreaterThanOrEqual(50);
    const mismatches = fixture.cases.filter(
      (c) =>
        JSON.stringify(tok.encode(c.text)) !== JSON.stringify(c.ids) ||
        JSON.stringify(tok.encode(c.text, fixture.max_length)) !== JSON.stringify(c.ids_max64),
    );
    expect(mismatches.map((m) => m.text)).toEqual([]);
  });

  it('pads a batch dynamically to its longest member (rounded to 8), with the attention mask', () => {
    const b = tok.encodeBatch(['hi', 'my card has not arrived yet, what should I do?'], { maxLength: 64 });
    const longest = tok.encode('my card has not arrived yet, what should I do?').length;
    expect(b.seqLen).toBe(Math.ceil(longest / 8) * 8);
    expect(Array.from(b.inputIds.subarray(0, 3))).toEqual([101, 7632, 102]);
    expect(Array.from(b.attentionMask.subarray(0, b.seqLen)).filter((x) => x === 1)).toHaveLength(3);
    expect(tok.encodeBatch(['word '.repeat(500)], { maxLength: 64 }).seqLen).toBe(64);
  });
});
