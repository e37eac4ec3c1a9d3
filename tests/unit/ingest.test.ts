import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ingestFile, TooManyBadRowsError, writeQuarantine } from '../../src/data/ingest';

const schema = z.object({
  text: z.string().trim().min(1, 'text is empty'),
  label: z.enum(['billing', 'card'], { message: 'unknown label' }),
});
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-'));
const write = (name: string, content: string | Buffer) => {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, content);
  return f;
};

describe('ingestFile (CSV)', () => {
  it('reports every bad row with its row number, line and reason, and keeps the good ones', () => {
    const csv = Buffer.concat([
      Buffer.from('text,label\n'),
      Buffer.from('"Why was I charged twice?",billing\n'), // row 1, line 2
      Buffer.from('"Customer: hi\nAgent: hello",card\n'), // row 2, lines 3-4 (multi-line record)
      Buffer.from(',billing\n'), // row 3, line 5: missing text
      Buffer.from('my card is lost,loans\n'), // row 4, line 6: unknown label
      Buffer.from('caf'),
      Buffer.from([0xe9]),
      Buffer.from(' bill,billing\n'), // row 5, line 7: Latin-1 byte, not UTF-8
      Buffer.from('too,many,columns\n'), // row 6, line 8
      Buffer.from(`${'x'.repeat(300)},card\n`), // row 7, line 9: too long
    ]);
    const res = ingestFile(write('a.csv', csv), { schema, maxBadShare: 1, textFields: ['text'], maxTextChars: 200 });
    expect(res.rows).toEqual([
      { text: 'Why was I charged twice?', label: 'billing' },
      { text: 'Customer: hi\nAgent: hello', label: 'card' },
    ]);
    expect(res.rowNumbers).toEqual([1, 2]);
    expect(res.bad.map((b) => [b.row, b.line, b.reason])).toEqual([
      [3, 5, 'text: text is empty'],
      [4, 6, 'label: unknown label'],
      [5, 7, 'text: not valid UTF-8'],
      [6, 8, 'expected 2 columns (text, label), found 3'],
      [7, 9, 'text: 300 characters, over the 200 limit'],
    ]);
    expect(res.stats).toMatchObject({ total: 7, good: 2, bad: 5 });
  });

  it('fails over the bad-row threshold with the first problems listed', () => {
    const f = write('b.csv', 'text,label\nok,card\n,card\n,card\n');
    const err = (() => {
      try {
        ingestFile(f, { schema, maxBadShare: 0.5 });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(TooManyBadRowsError);
    expect((err as Error).message).toMatch(
      /66\.7% of rows are invalid \(limit 50\.0%\)[\s\S]*row 2 \(line 3\): text: text is empty/,
    );
  });

  it('names the missing file and how to get it', () => {
    expect(() => ingestFile(path.join(tmp, 'nope.csv'), { schema, maxBadShare: 0 })).toThrow(/make data/);
  });
});

describe('ingestFile (JSONL)', () => {
  it('reports invalid JSON and schema failures by line, and writes a quarantine file', () => {
    const f = write(
      'c.jsonl',
      '{"text":"refund please","label":"billing"}\n{"text": broken\n\n{"text":"pin","label":"card"}\n{"label":"card"}\n',
    );
    const res = ingestFile(f, { schema, maxBadShare: 1 });
    expect(res.rows.map((r) => r.text)).toEqual(['refund please', 'pin']);
    expect(res.bad.map((b) => [b.row, b.line])).toEqual([
      [2, 2],
      [4, 5],
    ]);
    expect(res.bad[0]!.reason).toMatch(/^invalid JSON/);
    expect(res.bad[1]!.reason).toMatch(/^text:/);
    const q = path.join(tmp, 'out', 'quarantine.jsonl');
    writeQuarantine(q, res.bad);
    const lines = fs
      .readFileSync(q, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.row)).toEqual([2, 4]);
  });
});
