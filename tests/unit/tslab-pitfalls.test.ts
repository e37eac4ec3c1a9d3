import { describe, expect, it } from 'vitest';
import { crossCellShorthands } from '../../src/export/tslab-pitfalls';

// tslab runs `{ spec }` in a later cell as a ReferenceError (checked against the kernel while writing
// notebooks/06_open_set.ipynb); `make lint` must name such lines and leave working code alone.
describe('cross-cell shorthand properties (a tslab pitfall)', () => {
  it("finds a shorthand naming an earlier cell's variable or import, with its cell and line", () => {
    const found = crossCellShorthands([
      "import { taskSpec } from './src/data/tasks';\nconst spec = taskSpec('support-intent');\nconst [a, { b }] = [1, { b: 2 }];",
      'const r = run({\n  spec,\n  seed: 0,\n  taskSpec,\n  b,\n});',
    ]);
    expect(found.map((f) => [f.cell, f.line, f.name])).toEqual([
      [1, 2, 'spec'],
      [1, 4, 'taskSpec'],
      [1, 5, 'b'],
    ]);
    expect(found[0]!.message).toMatch(/write spec: spec/);
  });

  it('leaves alone the same cell, explicit properties, locals and parameters that shadow, and type-only imports', () => {
    expect(
      crossCellShorthands([
        "import type { Spec } from './src/data/tasks';\nconst spec = 1;\nconst same = { spec };",
        'const a = { spec: spec };\nfunction f(spec: number) {\n  return { spec };\n}\nconst g = () => {\n  const spec = 2;\n  return { spec };\n};',
        'const spec = 3;\nconst again = { spec };\nconst t = { Spec };',
      ]),
    ).toEqual([]);
  });

  it('finds an `export` written in a cell (tslab exports top-level names itself)', () => {
    const found = crossCellShorthands([
      '//| export src/x.ts\nconst A = 1;\nexport const B = 2;\nexport function f() {}',
    ]);
    expect(found.map((f) => [f.line, f.name])).toEqual([
      [3, 'export'],
      [4, 'export'],
    ]);
  });
});
