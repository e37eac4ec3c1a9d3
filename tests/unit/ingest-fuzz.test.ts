import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ingestFile } from '../../src/data/ingest';

// Property tests of the CSV/JSONL ingester: whatever the texts hold (quotes, commas, line breaks, NUL,
// combining marks, right-to-left runs), every valid row comes back exactly as written, and every invalid one
// is reported with its row number. Nothing valid is lost; nothing invalid slips through.
const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261206);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-fuzz-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const schema = z.object({
  id: z.string().min(1),
  text: z.string().refine((t) => t.trim().length > 0, 'text is empty'),
  label: z.enum(['yes', 'no']),
});

// Well-formed Unicode only: a file is bytes, and a lone surrogate has no UTF-8 form (the ingester reports
// such bytes as "not valid UTF-8", tested in ingest.test.ts).
const text = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('a', ' ', '"', ',', '\n', '\r\n', '\u0000', '\u0301', '\u202E', 'é', '🙂') }),
);
const row = fc.record({ text, label: fc.constantFrom('yes', 'no', 'maybe') });
const rows = fc.array(row, { minLength: 1, maxLength: 25 });
const isValid = (r: { text: string; label: string }) => r.text.trim().length > 0 && r.label !== 'maybe';
const csvCell = (s: string) => `"${s.replace(/"/g, '""')}"`;

function check(file: string, written: { text: string; label: string }[]): void {
  const res = ingestFile(file, { schema, maxBadShare: 1, textFields: ['text'] });
  const valid = written.map((r, i) => ({ ...r, id: `r${i}`, row: i + 1 })).filter(isValid);
  expect(res.rows).toEqual(valid.map(({ id, text: t, label }) => ({ id, text: t, label })));
  expect(res.rowNumbers).toEqual(valid.map((r) => r.row));
  expect(res.bad.map((b) => b.row)).toEqual(written.flatMap((r, i) => (isValid(r) ? [] : [i + 1])));
  expect(res.stats.total).toBe(written.length);
}

describe('ingestion under random rows', () => {
  it(`CSV: ${RUNS} random files, every valid row kept exactly and every bad one reported by row`, () => {
    let n = 0;
    fc.assert(
      fc.property(rows, (written) => {
        const file = path.join(tmp, `f${n++}.csv`);
        const lines = written.map((r, i) => [csvCell(`r${i}`), csvCell(r.text), r.label].join(','));
        fs.writeFileSync(file, `id,text,label\n${lines.join('\n')}\n`);
        check(file, written);
        fs.rmSync(file);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it(`JSONL: ${RUNS} random files, the same`, () => {
    let n = 0;
    fc.assert(
      fc.property(rows, (written) => {
        const file = path.join(tmp, `f${n++}.jsonl`);
        fs.writeFileSync(file, written.map((r, i) => `${JSON.stringify({ id: `r${i}`, ...r })}\n`).join(''));
        check(file, written);
        fs.rmSync(file);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});
