import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readRetrainState, writeRetrainState } from '../../src/retrain/state';

describe('retrain state', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'retrain-state-'));

  it('round-trips and leaves no temp file behind', () => {
    const file = path.join(dir, 'a.json');
    writeRetrainState(file, { lastDigest: 'abc', inProgressRunId: 'r1' });
    expect(readRetrainState(file, () => {})).toEqual({ lastDigest: 'abc', inProgressRunId: 'r1' });
    writeRetrainState(file, { lastDigest: null });
    expect(readRetrainState(file, () => {})).toEqual({ lastDigest: null });
    expect(fs.readdirSync(dir)).toEqual(['a.json']);
  });

  it('a torn or foreign file is set aside with a warning, and retrain starts from nothing', () => {
    for (const [name, text] of [
      ['torn.json', '{"lastDigest":"ab'],
      ['foreign.json', '{"lastDigest": 42}'],
    ]) {
      const file = path.join(dir, name!);
      fs.writeFileSync(file, text!);
      const warnings: string[] = [];
      expect(readRetrainState(file, (m) => warnings.push(m))).toEqual({});
      expect(warnings.join()).toMatch(/unreadable; set aside/);
      expect(fs.existsSync(file)).toBe(false);
      const aside = fs.readdirSync(dir).find((f) => f.startsWith(`${name}.damaged-`))!;
      expect(fs.readFileSync(path.join(dir, aside), 'utf8')).toBe(text);
    }
  });
});
