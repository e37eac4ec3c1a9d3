import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { offTopicCheck, readOffTopic } from '../../src/open-intent/off-topic';
import type { Scope } from '../../src/kinds/types';

// make eval-offtopic's arithmetic: which off-topic queries a scope lets through (with the label they would
// get), and the share of in-scope queries it keeps, at the scope's own (or a deployment's) threshold.
describe('off-topic check', () => {
  it('counts rejected off-topic and kept in-scope queries at the threshold; names what got through', async () => {
    const labels = ['card', 'transfer', 'refund'];
    // Each text's score is its number; its probabilities put the top class at (number mod 3).
    const judge = async (texts: readonly string[]) => {
      const probs = new Float32Array(texts.length * 3).fill(0.1);
      texts.forEach((t, i) => (probs[i * 3 + (Number(t) % 3)] = 0.8));
      return { probs, scores: Float64Array.from(texts, Number) };
    };
    const scope = { threshold: 5, judge } as unknown as Scope;
    const r = await offTopicCheck(scope, labels, ['1', '7', '4', '5'], ['6', '9', '2', '5', '8']);
    expect(r.offTopic).toBe(4);
    expect(r.inScope).toBe(5);
    expect(r.offTopicRejected).toBeCloseTo(2 / 4, 12); // 7 and 5 reach the threshold
    expect(r.accepted).toEqual([
      { text: '7', label: 'transfer', score: 7 },
      { text: '5', label: 'refund', score: 5 },
    ]);
    expect(r.inScopeKept).toBeCloseTo(4 / 5, 12); // 2 falls below
    expect(r.threshold).toBe(5);
  });

  it("reads one query per line, skipping comments and blanks; the project's set is large and has no repeats", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'offtopic-')), 'q.txt');
    fs.writeFileSync(file, '# header\n\n  what is the weather  \nplay some jazz\n# note\n');
    expect(readOffTopic(file)).toEqual(['what is the weather', 'play some jazz']);
    expect(() => readOffTopic(`${file}.missing`)).toThrow(/no off-topic set/);
    const project = readOffTopic(path.join(__dirname, '../../data/eval/off-topic.txt'));
    expect(project.length).toBeGreaterThanOrEqual(150);
    expect(new Set(project.map((q) => q.toLowerCase())).size).toBe(project.length);
  });
});
