import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generatedFiles, readNotebooks } from '../../src/export/notebooks';
import {
  checkExports,
  exportNotebooks,
  notebooksWithOutputs,
  rewriteImports,
  splitGenerated,
  syncBack,
  type Notebook,
} from '../../src/export/export';

const code = (id: string, source: string) => ({ id, cell_type: 'code', source });
const nb = (cells: Notebook['cells']): Notebook => ({ cells });

const notebook = nb([
  { id: 'md', cell_type: 'markdown', source: '# Title\n//| export src/nope.ts' },
  code('target', '//| default_exp src/data/things.ts'),
  code(
    'a',
    "//| export\nimport { z } from 'zod';\nimport { TASKS } from './src/data/tasks';\n\n/** Doubles. */\nfunction double(n: number): number {\n  return n * 2;\n}\nconst K = 3;\n  const notTopLevel = 1;\n",
  ),
  code('scratch', 'console.log(double(2));'),
  code('b', '//| exporti\nconst SECRET = /x/g;\n'),
  code('c', '//| export src/other/mod.ts\ntype Label = string;\ninterface Row { text: string }\n'),
]);

describe('exportNotebooks', () => {
  const [things, other] = exportNotebooks([{ path: 'notebooks/02_x.ipynb', notebook }]);

  it('writes export cells in order with a provenance header and cell markers; skips markdown and scratch cells', () => {
    expect(things!.target).toBe('src/data/things.ts');
    expect(things!.content).toBe(
      '// AUTO-GENERATED from notebooks/02_x.ipynb - edit the notebook, then run `make promote`.\n' +
        '// Checked by `make promote-check`: hand edits to this file are reported.\n' +
        "\n// cell a\nimport { z } from 'zod';\nimport { TASKS } from './tasks';\n\n/** Doubles. */\nexport function double(n: number): number {\n  return n * 2;\n}\nexport const K = 3;\n  const notTopLevel = 1;\n" +
        '\n// cell b\nconst SECRET = /x/g;\n',
    );
    expect(other!.target).toBe('src/other/mod.ts');
    expect(other!.content).toContain('export type Label = string;\nexport interface Row');
  });

  it('is deterministic: the same notebooks give byte-identical modules', () => {
    expect(exportNotebooks([{ path: 'notebooks/02_x.ipynb', notebook }])).toEqual(
      exportNotebooks([{ path: 'notebooks/02_x.ipynb', notebook }]),
    );
  });

  it('rejects targets outside src/, missing targets, and a module fed by two notebooks', () => {
    expect(() =>
      exportNotebooks([{ path: 'n.ipynb', notebook: nb([code('x', '//| export ../evil.ts\nconst a = 1;')]) }]),
    ).toThrow(/must be a \.ts file under src\//);
    expect(() => exportNotebooks([{ path: 'n.ipynb', notebook: nb([code('x', '//| export\nconst a = 1;')]) }])).toThrow(
      /no target/,
    );
    const one = nb([code('x', '//| export src/a.ts\nconst a = 1;')]);
    expect(() =>
      exportNotebooks([
        { path: 'n1.ipynb', notebook: one },
        { path: 'n2.ipynb', notebook: one },
      ]),
    ).toThrow(/exported from both/);
  });
});

describe('exported declarations', () => {
  it('exports generators, async functions and async generators as well as plain declarations', () => {
    const nb = {
      ...notebook,
      cells: [code('g', '//| export src/gen.ts\nfunction* a() {}\nasync function b() {}\nasync function* c() {}\n')],
    };
    const [mod] = exportNotebooks([{ path: 'notebooks/09_g.ipynb', notebook: nb }]);
    expect(mod!.content).toContain(
      'export function* a() {}\nexport async function b() {}\nexport async function* c() {}',
    );
  });
});

describe('rewriteImports', () => {
  it('makes ./src imports relative to the generated module', () => {
    expect(
      rewriteImports(
        "import { a } from './src/data/tasks';\nconst m = await import('./src/mlflow');",
        'src/train/x.ts',
      ),
    ).toBe("import { a } from '../data/tasks';\nconst m = await import('../mlflow');");
  });
});

describe('checkExports', () => {
  const modules = exportNotebooks([{ path: 'notebooks/02_x.ipynb', notebook }]);
  const files = Object.fromEntries(modules.map((m) => [m.target, m.content]));

  it('passes when files match and names the cell of a hand edit', () => {
    expect(checkExports(modules, (t) => files[t])).toEqual([]);
    const edited: Record<string, string> = {
      ...files,
      'src/data/things.ts': files['src/data/things.ts']!.replace('return n * 2', 'return n * 3'),
    };
    expect(checkExports(modules, (t) => edited[t])).toEqual([
      {
        target: 'src/data/things.ts',
        notebook: 'notebooks/02_x.ipynb',
        cellId: 'a',
        message:
          'src/data/things.ts differs from notebooks/02_x.ipynb cell a (edited by hand, or the notebook changed since `make promote`)',
      },
    ]);
  });

  it('reports a missing module and an orphaned generated file', () => {
    const problems = checkExports(modules, (t) => (t === 'src/other/mod.ts' ? undefined : files[t]), [
      'src/data/things.ts',
      'src/old.ts',
    ]);
    expect(problems.map((p) => p.message)).toEqual([
      'src/other/mod.ts is missing; notebooks/02_x.ipynb exports it',
      'src/old.ts is marked AUTO-GENERATED but no notebook exports it any more',
    ]);
  });

  it('splits a generated module back into its cells', () => {
    expect([...splitGenerated(files['src/data/things.ts']!).keys()]).toEqual(['a', 'b']);
  });
});

describe('notebooksWithOutputs', () => {
  it('flags notebooks committed with outputs or execution counts', () => {
    const clean = nb([{ id: 'a', cell_type: 'code', source: 'x', outputs: [], execution_count: null } as never]);
    const dirty = nb([
      { id: 'a', cell_type: 'code', source: 'x', outputs: [{ output_type: 'stream' }], execution_count: 1 } as never,
    ]);
    expect(
      notebooksWithOutputs([
        { path: 'a.ipynb', notebook: clean },
        { path: 'b.ipynb', notebook: dirty },
      ]),
    ).toEqual(['b.ipynb']);
  });
});

describe('sync-back (pure)', () => {
  const nbAt = (cells: { id: string; source: string }[]) => ({
    path: 'notebooks/x.ipynb',
    notebook: { cells: cells.map((c) => ({ ...c, cell_type: 'code' })) },
  });
  const before = nbAt([
    {
      id: 'a',
      source: "//| export src/x/y.ts\nimport { z } from './src/data/tasks';\nfunction f(): number {\n  return 1;\n}",
    },
    { id: 'b', source: '//| exporti src/x/y.ts\nconst K = 2;' },
  ]);
  const [mod] = exportNotebooks([before]);

  it('leaves everything alone when nothing was edited, on the real notebooks too', () => {
    expect(syncBack([before], [{ target: mod!.target, content: mod!.content }])).toEqual({
      notebooks: [],
      updated: [],
      conflicts: [],
    });
    const root = path.resolve(__dirname, '../..');
    const real = readNotebooks(root);
    const modules = generatedFiles(root).map((t) => ({
      target: t,
      content: fs.readFileSync(path.join(root, t), 'utf8'),
    }));
    expect(syncBack(real, modules).notebooks).toEqual([]);
  });

  it('round trip: edit module -> sync-back -> export gives the edited module back', () => {
    const edited = mod!.content.replace('  return 1;', '  return K + 1;');
    const r = syncBack([before], [{ target: mod!.target, content: edited }]);
    expect(r.conflicts).toEqual([]);
    expect(r.updated).toEqual([{ target: 'src/x/y.ts', notebook: 'notebooks/x.ipynb', cellId: 'a' }]);
    expect(exportNotebooks(r.notebooks)[0]!.content).toBe(edited);
    const source = r.notebooks[0]!.notebook.cells[0]!.source as string[];
    expect(source.join('')).toBe(
      "//| export src/x/y.ts\nimport { z } from './src/data/tasks';\nfunction f(): number {\n  return K + 1;\n}",
    );
  });

  it('refuses conflicts: both sides edited, cells added, an unexported declaration in an export cell', () => {
    const edited = mod!.content.replace('  return 1;', '  return 3;');
    const notebookChanged = nbAt([
      {
        id: 'a',
        source: "//| export src/x/y.ts\nimport { z } from './src/data/tasks';\nfunction f(): number {\n  return 2;\n}",
      },
      { id: 'b', source: '//| exporti src/x/y.ts\nconst K = 2;' },
    ]);
    const both = syncBack([notebookChanged], [{ target: 'src/x/y.ts', content: edited }], [before]);
    expect(both.notebooks).toEqual([]);
    expect(both.conflicts[0]!.message).toMatch(/cell a was edited, and so was the notebook cell since the last commit/);
    const added = syncBack([before], [{ target: 'src/x/y.ts', content: `${mod!.content}\n// cell c\nconst X = 1;\n` }]);
    expect(added.conflicts[0]!.message).toMatch(/has cells \[a, b, c\], notebooks\/x\.ipynb exports \[a, b\]/);
    const bare = syncBack(
      [before],
      [{ target: 'src/x/y.ts', content: mod!.content.replace('export function f', 'function f') }],
    );
    expect(bare.conflicts[0]!.message).toMatch(/top-level declaration without export in an exported cell/);
  });
});
