import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunJournal } from '../../src/mlflow';

const batch = (step: number) => ({
  op: 'log-batch' as const,
  body: { metrics: [{ key: 'loss', value: 1 / (step + 1), step, timestamp: step }], params: [], tags: [] },
});

describe('RunJournal', () => {
  it('keeps entries in order until acknowledged, then compacts away', () => {
    const j = new RunJournal(fs.mkdtempSync(path.join(os.tmpdir(), 'journal-')));
    const a = j.append('run1', batch(0));
    const b = j.append('run1', batch(1));
    j.append('run1', { op: 'update-run', body: { status: 'FINISHED', end_time: 5 } });
    expect(j.pending('run1').map((e) => e.seq)).toEqual([1, 2, 3]);
    j.ack('run1', a.seq);
    expect(j.pending('run1').map((e) => e.seq)).toEqual([b.seq, 3]);
    expect(j.runsWithPending()).toEqual(['run1']);
    j.ack('run1', b.seq);
    j.compact('run1');
    expect(fs.existsSync(j.file('run1'))).toBe(true); // entry 3 is still pending
    j.ack('run1', 3);
    j.compact('run1');
    expect(fs.existsSync(j.file('run1'))).toBe(false);
    expect(j.runsWithPending()).toEqual([]);
  });

  it('survives a torn last line (crash mid-append): the next append keeps every complete entry', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-'));
    const j = new RunJournal(dir);
    j.append('r', batch(0));
    fs.appendFileSync(j.file('r'), '{"seq":2,"op":"log-ba'); // no newline: the process died mid-write
    const reopened = new RunJournal(dir);
    expect(reopened.pending('r').map((e) => e.seq)).toEqual([1]);
    // A new process appends straight after the torn bytes; nothing merges into them.
    const next = reopened.append('r', batch(1));
    expect(next.seq).toBe(2);
    expect(new RunJournal(dir).pending('r').map((e) => e.seq)).toEqual([1, 2]);
    expect(new RunJournal(dir).runsWithPending()).toEqual(['r']);
    expect(fs.readFileSync(`${j.file('r')}.torn`, 'utf8')).toBe('{"seq":2,"op":"log-ba\n');
  });

  it('an ack after a torn tail is kept too', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-'));
    const j = new RunJournal(dir);
    j.append('r', batch(0));
    j.append('r', batch(1));
    fs.appendFileSync(j.file('r'), '{"ack":');
    new RunJournal(dir).ack('r', 1);
    expect(new RunJournal(dir).pending('r').map((e) => e.seq)).toEqual([2]);
  });

  it('sets aside a line merged by an older version instead of refusing the whole run', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'journal-'));
    const j = new RunJournal(dir);
    j.append('r', batch(0));
    const merged = `{"seq":2,"op":"log-ba${JSON.stringify({ ...batch(2), seq: 3, at: 1 })}\n`;
    fs.appendFileSync(j.file('r'), merged);
    j.append('r', batch(3));
    const reopened = new RunJournal(dir);
    expect(reopened.pending('r').map((e) => e.seq)).toEqual([1, 2]);
    expect(reopened.runsWithPending()).toEqual(['r']);
    expect(fs.readFileSync(`${j.file('r')}.torn`, 'utf8')).toBe(merged);
  });

  it('refuses run ids that could escape its folder', () => {
    expect(() => new RunJournal('/tmp/x').file('../etc/passwd')).toThrow(/invalid run id/);
  });
});
