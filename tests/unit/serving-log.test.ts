import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { churnCsv, ChurnSummary, csvTextCell, type ChurnRow } from '../../src/report/churn';
import {
  expiredLogFiles,
  Reservoir,
  servingLogFile,
  servingLogFiles,
  ServingLogWriter,
  streamServingLog,
  type ServingRecord,
} from '../../src/monitor/serving-log';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'serving-log-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const record = (ts: string, model: string, text = 'my card was declined'): ServingRecord => ({
  ts,
  route: '/predict',
  model,
  version: '3',
  text_sha256: 'a'.repeat(64),
  text,
  label: 'card',
  probabilities: { card: 0.9, other: 0.1 },
  latency_ms: 1.5,
});

describe('serving log', () => {
  it('rotates daily (UTC) and streams back, in order, only the asked model and period; torn lines are counted', async () => {
    const dir = path.join(tmp, 'rotate');
    const w = new ServingLogWriter(dir);
    w.write(
      [record('2026-11-29T23:59:59.000Z', 'a'), record('2026-11-29T23:59:59.500Z', 'b')],
      new Date('2026-11-29T23:59:59Z'),
    );
    w.write([record('2026-11-30T00:00:01.000Z', 'a', 'second day')], new Date('2026-11-30T00:00:01Z'));
    await w.close();
    expect(fs.readdirSync(dir).sort()).toEqual(['predictions-2026-11-29.jsonl', 'predictions-2026-11-30.jsonl']);
    fs.appendFileSync(servingLogFile(dir, new Date('2026-11-30T12:00:00Z')), '{"ts": "2026-11-30T00:00:02Z", "tor');
    const seen: string[] = [];
    const r = await streamServingLog(dir, { model: 'a' }, (rec) => seen.push(rec.text!));
    expect(seen).toEqual(['my card was declined', 'second day']);
    expect(r).toEqual({ records: 2, malformed: 1, otherModels: 1 });
    expect(servingLogFiles(dir, new Date('2026-11-30T08:00:00Z')).map((f) => path.basename(f))).toEqual([
      'predictions-2026-11-30.jsonl',
    ]);
    const since: string[] = [];
    await streamServingLog(dir, { model: 'a', since: new Date('2026-11-30T00:00:00Z') }, (rec) =>
      since.push(rec.text!),
    );
    expect(since).toEqual(['second day']);
  });

  it('a write that fails is counted and reported, and the next write tries again', async () => {
    const file = path.join(tmp, 'not-a-dir');
    fs.writeFileSync(file, '');
    const errors: string[] = [];
    const w = new ServingLogWriter(file, (e) => errors.push(e.message));
    w.write([record('2026-11-30T00:00:00Z', 'a')]);
    w.write([record('2026-11-30T00:00:01Z', 'a')]);
    expect(w.errors).toBe(2);
    expect(errors).toHaveLength(2);
    await w.close();
  });

  it('a reservoir keeps a uniform sample of a stream longer than it holds', () => {
    let seed = 7;
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const counts = new Array<number>(10).fill(0);
    for (let trial = 0; trial < 2000; trial++) {
      const r = new Reservoir<number>(10, random);
      for (let i = 0; i < 100; i++) r.add(i);
      expect(r.items).toHaveLength(10);
      for (const x of r.items) counts[Math.floor(x / 10)]! += 1;
    }
    // Each tenth of the stream holds about a tenth of the sample (2,000 per decile; 5 sd is about 210).
    for (const c of counts) expect(Math.abs(c - 2000)).toBeLessThan(250);
  });
});

describe('churn report CSV', () => {
  it('escapes text cells that a spreadsheet would evaluate as a formula', () => {
    expect(csvTextCell('=HYPERLINK("http://x","y")')).toBe(`"'=HYPERLINK(""http://x"",""y"")"`);
    for (const lead of ['+', '-', '@', '\t', '\r'])
      expect(csvTextCell(`${lead}1+1`).startsWith(`"'${lead}`)).toBe(true);
    expect(csvTextCell('cancel my contract')).toBe('"cancel my contract"');
    const csv = churnCsv([
      {
        ts: '2026-11-30T00:00:00Z',
        ref: 'a'.repeat(64),
        bucket: 'A',
        p_churn: 0.9,
        label: 'yes',
        top_phrases: [{ phrase: '=cmd|/c calc!A1', impact: 0.5 }],
      },
    ]);
    expect(csv.split('\n')[1]).toContain(`"'=cmd|/c calc!A1"`);
    expect(csv).not.toMatch(/,=/);
  });
});

describe('serving-log retention', () => {
  it('deletes day files older than the kept days when a new day starts, and nothing else', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'retention-'));
    for (const f of [
      'predictions-2026-01-01.jsonl',
      'predictions-2026-03-01.jsonl',
      'predictions-2026-03-02.jsonl',
      'rejected-2026-01-01.jsonl',
      'notes.txt',
    ])
      fs.writeFileSync(path.join(dir, f), '{}\n');
    expect(expiredLogFiles(dir, new Date('2026-03-31T10:00:00Z'), 30).map((f) => path.basename(f))).toEqual([
      'predictions-2026-01-01.jsonl',
    ]);
    const w = new ServingLogWriter(dir, () => {}, 'predictions', 29);
    w.write([{ ts: '2026-03-31T10:00:00Z' } as never], new Date('2026-03-31T10:00:00Z'));
    await w.close();
    expect(fs.readdirSync(dir).sort()).toEqual([
      'notes.txt',
      'predictions-2026-03-02.jsonl',
      'predictions-2026-03-31.jsonl',
      'rejected-2026-01-01.jsonl',
    ]);
  });
});

describe('churn report summary', () => {
  it('gathers a long period one row at a time, keeping the counts and only the first 50 bucket-A rows', () => {
    const summary = new ChurnSummary();
    for (let i = 0; i < 10_000; i++) {
      const bucket = (['A', 'B', 'C'] as const)[i % 3]!;
      const row: ChurnRow = {
        ts: `2026-11-${String(10 + (i % 7)).padStart(2, '0')}T00:00:00Z`,
        ref: `c${i}`,
        bucket,
        p_churn: bucket === 'A' ? 0.9 : 0.1,
        label: bucket === 'C' ? 'no' : 'yes',
        top_phrases: bucket === 'A' ? [{ phrase: `cancel ${i % 4}`, impact: 0.1 * (1 + (i % 4)) }] : [],
      };
      summary.add(row);
    }
    expect(summary.total).toBe(10_000);
    expect(summary.counts).toEqual({ A: 3334, B: 3333, C: 3333 });
    expect(summary.listed).toHaveLength(50);
    const html = summary.html('conversation-churn', { from: '2026-11-10', to: '2026-11-16' });
    expect(html).toContain('very likely to churn: call them');
    expect(html).toMatch(/cancel 3/); // the strongest driver, summed over bucket A
  });
});
