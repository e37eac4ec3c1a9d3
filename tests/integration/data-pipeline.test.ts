import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { prepareTask, SPLITS } from '../../src/data/prepare';
import { BANKING77_INTENTS, TASKS } from '../../src/data/tasks';

const cfg = loadConfig();
const raw = cfg.paths.dataRaw;

describe('real datasets through the validated pipeline', () => {
  it('Banking77 loads with 0 bad rows, and the coarse map covers its published intent list', () => {
    const p = prepareTask(TASKS['support-category'], raw);
    expect(p.stats.rowsRead).toBe(13083);
    expect(p.stats.rowsBad).toBe(0);
    expect(p.quarantine).toEqual([]);
    expect(p.stats.sizes.test).toBe(3080);
    expect(p.stats.sizes.train + p.stats.sizes.validation).toBe(10003);
    const published = JSON.parse(fs.readFileSync(path.join(raw, 'banking77/categories.json'), 'utf8')) as string[];
    expect([...published].sort()).toEqual([...BANKING77_INTENTS]);
    expect(p.labelMap.labels).toEqual([
      'Account & Security',
      'Card',
      'Payments & Billing',
      'Top-up & Cash',
      'Transfers',
    ]);
  });

  it('the chat transcripts quarantine exactly the empty logs, with their row numbers', () => {
    const p = prepareTask(TASKS['conversation-churn'], raw);
    // Independent reference: Python's csv module finds the empty chat_log rows.
    const script =
      'import csv,sys,json\nrows=list(csv.DictReader(open(sys.argv[1],newline="",encoding="utf-8")))\nprint(json.dumps([i+1 for i,r in enumerate(rows) if not r["chat_log"].strip()]))';
    const expected = JSON.parse(
      execFileSync(cfg.python, ['-c', script, path.join(raw, 'aws-churn-chatlogs/text.csv')], { encoding: 'utf8' }),
    ) as number[];
    expect(expected).toHaveLength(697);
    expect(p.quarantine.map((b) => b.row)).toEqual(expected);
    expect(new Set(p.quarantine.map((b) => b.reason))).toEqual(new Set(['chat_log: chat_log is empty']));
    expect(p.stats.rowsRead).toBe(3333);
    expect(p.stats.sizes.train + p.stats.sizes.validation + p.stats.sizes.test).toBe(3333 - 697);
    // Transcripts come out with canonical speaker tags at the start of every turn.
    const lines = [...p.splits.train, ...p.splits.validation, ...p.splits.test].flatMap((e) => e.text.split('\n'));
    expect(lines.filter((l) => /^telcom agent:/i.test(l))).toEqual([]);
    expect(lines.filter((l) => /^(Customer|Agent): /.test(l)).length / lines.length).toBeGreaterThan(0.95);
  });

  it('splits are identical for a seed, differ for another, and keep class shares within 1 point', () => {
    for (const task of [TASKS['support-intent'], TASKS['churn-intent'], TASKS['conversation-churn']]) {
      const a = prepareTask(task, raw);
      const b = prepareTask(task, raw);
      const c = prepareTask(task, raw, { seed: 7 });
      expect(b.digests, task.name).toEqual(a.digests);
      expect(c.digests.train, task.name).not.toBe(a.digests.train);
      for (const s of SPLITS) {
        for (const [cls, share] of Object.entries(a.stats.classShares.all)) {
          expect(Math.abs((a.stats.classShares[s][cls] ?? 0) - share), `${task.name}/${s}/${cls}`).toBeLessThan(0.01);
        }
      }
    }
  });

  it('reports the churn-intent imbalance and weights the rare class', () => {
    const p = prepareTask(TASKS['churn-intent'], raw);
    expect(p.stats.classShares.all.churn).toBeGreaterThan(0.01);
    expect(p.stats.classShares.all.churn).toBeLessThan(0.012);
    const [churnW, otherW] = [p.classWeights[p.labelMap.label2id.churn!]!, p.classWeights[p.labelMap.label2id.other!]!];
    expect(churnW / otherW).toBeGreaterThan(50);
  });
});
