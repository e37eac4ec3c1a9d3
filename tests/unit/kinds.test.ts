import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kindById, kindOfFlavors, MODEL_KINDS } from '../../src/kinds';
import { trainKind } from '../../src/kinds/training';

const root = path.resolve(__dirname, '../..');

describe('the model-kind registry', () => {
  it('declares each kind once, with its own id and flavor, and refuses unknown ones with the known list', () => {
    const kinds = Object.values(MODEL_KINDS);
    expect(kinds.map((k) => k.id)).toEqual([
      'tfidf-logreg',
      'frozen-encoder-logreg',
      'bert-finetune',
      'tabular-onnx',
      'hybrid-frozen-logreg',
    ]);
    expect(new Set(kinds.map((k) => k.flavor)).size).toBe(kinds.length);
    for (const k of kinds) {
      expect(MODEL_KINDS[k.id]).toBe(k);
      expect(kindById(k.id)).toBe(k);
      expect(kindOfFlavors(['python_function', k.flavor])).toBe(k);
    }
    expect(() => kindById('xgboost')).toThrow(
      /unknown model kind "xgboost" \(known: tfidf-logreg, frozen-encoder-logreg, bert-finetune, tabular-onnx, hybrid-frozen-logreg\)/,
    );
    expect(() => kindOfFlavors(['sklearn'])).toThrow(/no model kind serves the flavors sklearn/);
    expect(() => trainKind('xgboost', undefined as never)).toThrow(/unknown model kind "xgboost"/);
  });

  it('a serving process loads no training code', () => {
    const probe =
      "require('./src/kinds'); require('./src/serve/app'); require('./src/serve/champion'); process.stdout.write(JSON.stringify(Object.keys(require.cache)))";
    const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', probe], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    const loaded = (JSON.parse(r.stdout) as string[])
      .map((f) => path.relative(root, f))
      .filter((f) => f.startsWith('src/'));
    expect(loaded).toEqual(
      expect.arrayContaining(['src/kinds/index.ts', 'src/kinds/bert/model.ts', 'src/serve/app.ts']),
    );
    expect(
      loaded.filter((f) => /^src\/train\/|^src\/kinds\/[^/]+\/train\.ts$|^src\/engine\/train-step\.ts$/.test(f)),
    ).toEqual([]);
  });
});
