import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkLayers, importSpecifiers, LAYERS, nodeOf } from '../../scripts/import-layers';

const ROOT = path.resolve(__dirname, '../..');

describe('import layers of src/ and scripts/', () => {
  it('every import points down a layer and no files import in a circle', () => {
    const r = checkLayers(ROOT);
    expect(r.files).toBeGreaterThan(100);
    expect(r.edges.length).toBeGreaterThan(300);
    expect(r.unplaced).toEqual([]);
    expect(r.upward.map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
    expect(r.cycles).toEqual([]);
  });

  it('declares each folder once', () => {
    const all = LAYERS.flat();
    expect(new Set(all).size).toBe(all.length);
    expect(nodeOf('src/config.ts')).toBe('src');
    expect(nodeOf('src/kinds/scope/rule.ts')).toBe('kinds');
    expect(nodeOf('scripts/serve.ts')).toBe('scripts');
  });
});

describe('the checker itself', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'layers-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(tmp, file)), { recursive: true });
    fs.writeFileSync(path.join(tmp, file), text);
  };

  it('finds static, type-only, re-exported, dynamic and required imports', () => {
    const src = [
      "import { a } from './a';",
      "import type { B } from '../b';",
      "export { c } from './c/index';",
      "const d = await import('./d');",
      "const e = require('./e');",
      "import fs from 'node:fs';",
    ].join('\n');
    expect(importSpecifiers(src).sort()).toEqual(['../b', './a', './c/index', './d', './e']);
  });

  it('reports an upward import, an unplaced folder and a cycle', () => {
    write('src/kinds/model.ts', 'export const m = 1;\n');
    write('src/data/reader.ts', "import { m } from '../kinds/model';\nexport const r = m;\n");
    write('src/kinds/a.ts', "import { b } from './b';\nexport const a = b;\n");
    write('src/kinds/b.ts', "export { a as b } from './a';\n");
    write('src/gadgets/x.ts', 'export const x = 1;\n');
    write('scripts/run.ts', "import { r } from '../src/data/reader';\nvoid r;\n");
    const r = checkLayers(tmp);
    expect(r.upward.map((e) => `${e.fromNode}>${e.toNode}`)).toEqual(['data>kinds']);
    expect(r.unplaced).toEqual(['gadgets']);
    expect(r.cycles).toEqual([['src/kinds/a.ts', 'src/kinds/b.ts']]);
  });
});
