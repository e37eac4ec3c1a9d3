import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildLabelMap } from '../../src/data/labels';
import { heldOutTexts, leakReason, matchKey } from '../../src/data/leakage';
import { TABULAR_TASKS } from '../../src/data/tabular-tasks';
import { ingestIncoming } from '../../src/retrain/retrain';
import { ingestIncomingTabular } from '../../src/retrain/tabular';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'leakage-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const quarantined = (dir: string, file: string) =>
  fs
    .readFileSync(path.join(dir, `${file}.quarantine.jsonl`), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { row: number; reason: string });

describe('held-out rows never train', () => {
  it('folds case, accents, punctuation and white space, and nothing else', () => {
    expect(matchKey('  Héllo,   WORLD!! ')).toBe('hello world');
    const held = heldOutTexts(['I want to close my account.'], 'the test split');
    expect(leakReason('I want to close my account.', held)).toMatch(/exact duplicate/);
    expect(leakReason('i want to CLOSE my account', held)).toMatch(/folded/);
    expect(leakReason('I want to close my card.', held)).toBeUndefined();
  });

  it('incoming texts that repeat a test row are quarantined with their row number; the rest train', () => {
    const dir = path.join(tmp, 'text-in');
    const q = path.join(tmp, 'text-q');
    fs.mkdirSync(dir);
    fs.writeFileSync(
      path.join(dir, 'week.csv'),
      'text,label\n"How do I close my account?",yes\nmy card is late,no\n"how do i close my ACCOUNT",yes\nnew question,no\n',
    );
    const held = heldOutTexts(['How do I close my account?'], 'the test split');
    const got = ingestIncoming(dir, buildLabelMap(['no', 'yes']), q, held);
    expect(got.examples.map((e) => e.text)).toEqual(['my card is late', 'new question']);
    expect(got.bad).toBe(2);
    expect(quarantined(q, 'week.csv').map((b) => [b.row, /test split/.test(b.reason)])).toEqual([
      [1, true],
      [3, true],
    ]);
  });

  it('an incoming customer whose id is in a held-out split is refused, not added to training', () => {
    const spec = TABULAR_TASKS['telco-churn'];
    const source = fs.readFileSync(
      path.resolve(__dirname, '../../../shared/data/telco-churn/Telco-Customer-Churn.csv'),
      'utf8',
    );
    const [header, a, b] = source.split(/\r?\n/);
    const dir = path.join(tmp, 'tab-in');
    const q = path.join(tmp, 'tab-q');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'crm.csv'), `${header}\n${a}\n${b}\n`);
    const heldId = a!.split(',')[0]!;
    const got = ingestIncomingTabular(dir, spec, q, new Set([heldId]));
    expect(got.rows.map((r) => r.id)).toEqual([b!.split(',')[0]]);
    expect(quarantined(q, 'crm.csv')).toEqual([
      expect.objectContaining({
        row: 1,
        reason: expect.stringMatching(new RegExp(`customer ${heldId} is in a held-out split`)),
      }),
    ]);
  });
});
