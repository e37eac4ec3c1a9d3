/**
 * nbdev-style export of notebook cells to modules (pure: notebooks in, file contents out).
 *
 * Directives, on the first lines of a code cell:
 *   //| default_exp src/data/clean.ts   notebook-level target for `//| export` cells
 *   //| export [src/path.ts]            export the cell; its top-level declarations get `export`
 *   //| exporti [src/path.ts]           export the cell as module-private code (no `export` added)
 * Cells are written in notebook order after an AUTO-GENERATED header, each after a `// cell <id>`
 * marker, so `checkExports` can name the cell a hand edit or a stale module disagrees with.
 * Cells stay free of `export` keywords because the tslab kernel exports every top-level name itself.
 */
import path from 'node:path';

export interface NotebookCell {
  id?: string;
  cell_type: string;
  source: string | string[];
}

export interface Notebook {
  cells: NotebookCell[];
}

export interface ExportedCell {
  notebook: string;
  cellId: string;
  code: string;
  /** `export` cells get `export` on their top-level declarations; `exporti` cells stay module-private. */
  kind: 'export' | 'exporti';
}

export interface ModuleExport {
  /** Project-relative path of the generated module. */
  target: string;
  notebook: string;
  cells: ExportedCell[];
  content: string;
}

const DIRECTIVE = /^\/\/\|\s*(default_exp|export|exporti)\b\s*(\S+)?\s*$/;
const DECLARATION = /^(?:async\s+function\*?|function\*?|const|let|class|abstract\s+class|interface|type|enum)\s/;

export const headerFor = (notebook: string): string =>
  `// AUTO-GENERATED from ${notebook} - edit the notebook, then run \`make promote\`.\n// Checked by \`make ` +
  `promote-check\`: hand edits to this file are reported.\n`;

const sourceText = (c: NotebookCell): string => (Array.isArray(c.source) ? c.source.join('') : c.source);

/** Rewrites `./src/...` imports (as notebooks write them, from the project root) relative to the module. */
export function rewriteImports(code: string, target: string): string {
  const fromDir = path.posix.dirname(target);
  return code.replace(
    /(from\s+|import\s*\(\s*|require\(\s*)(['"])\.\/(src\/[^'"]+)\2/g,
    (_m, kw: string, q: string, spec: string) => {
      let rel = path.posix.relative(fromDir, spec);
      if (!rel.startsWith('.')) rel = `./${rel}`;
      return `${kw}${q}${rel}${q}`;
    },
  );
}

/** Adds `export` to top-level declarations (column 0), leaving everything else as written. */
export function exportDeclarations(code: string): string {
  return code
    .split('\n')
    .map((line) => (DECLARATION.test(line) ? `export ${line}` : line))
    .join('\n');
}

/** The cells of one notebook that go to each target module, in order. */
export function collectExports(notebookPath: string, nb: Notebook): Map<string, ExportedCell[]> {
  let defaultTarget: string | undefined;
  const byTarget = new Map<string, ExportedCell[]>();
  nb.cells.forEach((cell, index) => {
    if (cell.cell_type !== 'code') return;
    const lines = sourceText(cell).split('\n');
    let kind: 'export' | 'exporti' | undefined;
    let target: string | undefined;
    let body = 0;
    while (body < lines.length) {
      const m = DIRECTIVE.exec(lines[body]!.trim());
      if (!m) break;
      if (m[1] === 'default_exp') defaultTarget = m[2];
      else {
        kind = m[1] as 'export' | 'exporti';
        target = m[2];
      }
      body++;
    }
    if (!kind) return;
    const to = target ?? defaultTarget;
    if (!to)
      throw new Error(
        `${notebookPath} cell ${cell.id ?? index}: //| ${kind} has no target and the notebook has no //| default_exp`,
      );
    if (!/^src\/.+\.ts$/.test(to))
      throw new Error(`${notebookPath} cell ${cell.id ?? index}: export target "${to}" must be a .ts file under src/`);
    const code = lines.slice(body).join('\n').replace(/\s+$/, '');
    const transformed = rewriteImports(kind === 'export' ? exportDeclarations(code) : code, to);
    byTarget.set(to, [
      ...(byTarget.get(to) ?? []),
      { notebook: notebookPath, cellId: cell.id ?? `index-${index}`, code: transformed, kind },
    ]);
  });
  return byTarget;
}

export function renderModule(target: string, notebook: string, cells: ExportedCell[]): string {
  return `${headerFor(notebook)}${cells.map((c) => `\n// cell ${c.cellId}\n${c.code}\n`).join('')}`;
}

/** All modules the given notebooks export. A module may take cells from one notebook only. */
export function exportNotebooks(notebooks: { path: string; notebook: Notebook }[]): ModuleExport[] {
  const out = new Map<string, ModuleExport>();
  for (const { path: nbPath, notebook } of [...notebooks].sort((a, b) => a.path.localeCompare(b.path))) {
    for (const [target, cells] of collectExports(nbPath, notebook)) {
      const prev = out.get(target);
      if (prev)
        throw new Error(
          `${target} is exported from both ${prev.notebook} and ${nbPath}; a module has one source notebook`,
        );
      out.set(target, { target, notebook: nbPath, cells, content: renderModule(target, nbPath, cells) });
    }
  }
  return [...out.values()].sort((a, b) => a.target.localeCompare(b.target));
}

export interface SyncProblem {
  target: string;
  notebook?: string;
  cellId?: string;
  message: string;
}

/** Splits a generated module back into its cells (by `// cell <id>` markers). */
export function splitGenerated(content: string): Map<string, string> {
  const cells = new Map<string, string>();
  const parts = content.split(/\n\/\/ cell (\S+)\n/);
  for (let i = 1; i < parts.length; i += 2) cells.set(parts[i]!, parts[i + 1]!.replace(/\n$/, ''));
  return cells;
}

/**
 * Compares what the notebooks export with the files on disk (`read` returns undefined for a
 * missing file) and names the notebook cell behind each difference. `generatedOnDisk` lists files
 * that carry the AUTO-GENERATED header, to catch modules whose notebook no longer exports them.
 */
export function checkExports(
  expected: ModuleExport[],
  read: (target: string) => string | undefined,
  generatedOnDisk: string[] = [],
): SyncProblem[] {
  const problems: SyncProblem[] = [];
  for (const mod of expected) {
    const actual = read(mod.target);
    if (actual === undefined) {
      problems.push({
        target: mod.target,
        notebook: mod.notebook,
        message: `${mod.target} is missing; ${mod.notebook} exports it`,
      });
      continue;
    }
    if (actual === mod.content) continue;
    const onDisk = splitGenerated(actual);
    const bad = mod.cells.find((c) => onDisk.get(c.cellId) !== c.code);
    if (bad) {
      problems.push({
        target: mod.target,
        notebook: mod.notebook,
        cellId: bad.cellId,
        message: onDisk.has(bad.cellId)
          ? `${mod.target} differs from ${mod.notebook} cell ${bad.cellId} (edited by hand, or the notebook changed ` +
            `since \`make promote\`)`
          : `${mod.target} lacks ${mod.notebook} cell ${bad.cellId} (new or re-ordered export cell)`,
      });
    } else {
      const extra = [...onDisk.keys()].filter((id) => !mod.cells.some((c) => c.cellId === id));
      problems.push({
        target: mod.target,
        notebook: mod.notebook,
        cellId: extra[0],
        message: extra.length
          ? `${mod.target} has cell ${extra[0]} that ${mod.notebook} no longer exports`
          : `${mod.target} differs from ${mod.notebook} outside its cells (header or order)`,
      });
    }
  }
  const expectedTargets = new Set(expected.map((m) => m.target));
  for (const f of generatedOnDisk) {
    if (!expectedTargets.has(f))
      problems.push({ target: f, message: `${f} is marked AUTO-GENERATED but no notebook exports it any more` });
  }
  return problems;
}

/** Notebooks are committed without outputs (small diffs, no data in git); lists those that have some. */
export function notebooksWithOutputs(notebooks: { path: string; notebook: Notebook }[]): string[] {
  return notebooks
    .filter(({ notebook }) =>
      notebook.cells.some((c) => {
        const cell = c as NotebookCell & { outputs?: unknown[]; execution_count?: number | null };
        return (cell.outputs?.length ?? 0) > 0 || (cell.execution_count ?? null) !== null;
      }),
    )
    .map((n) => n.path);
}

// ---- sync-back: hand edits in a generated module -> its notebook cells (nbdev_update) ----------

/** The inverse of `rewriteImports`: imports relative to the module that point into src/ become `./src/...`. */
export function unrewriteImports(code: string, target: string): string {
  const fromDir = path.posix.dirname(target);
  return code.replace(
    /(from\s+|import\s*\(\s*|require\(\s*)(['"])(\.\.?\/[^'"]+)\2/g,
    (m, kw: string, q: string, spec: string) => {
      const resolved = path.posix.normalize(path.posix.join(fromDir, spec));
      return resolved.startsWith('src/') ? `${kw}${q}./${resolved}${q}` : m;
    },
  );
}

/** The inverse of `exportDeclarations`: `export` goes from top-level declarations (the kernel exports them itself). */
export function unexportDeclarations(code: string): string {
  return code
    .split('\n')
    .map((line) => (line.startsWith('export ') && DECLARATION.test(line.slice(7)) ? line.slice(7) : line))
    .join('\n');
}

export interface SyncBackResult {
  /** Notebooks whose cells changed, with their new content. */
  notebooks: { path: string; notebook: Notebook }[];
  updated: { target: string; notebook: string; cellId: string }[];
  conflicts: SyncProblem[];
}

const toSource = (text: string): string[] => text.split(/(?<=\n)/);

/**
 * Takes hand edits of generated modules back into the notebook cells they came from (pure). A cell is
 * taken back when the module's copy differs from what the notebook exports now. It is a conflict, and
 * nothing of that module is written, when the notebook cell also changed since `base` (the notebooks as
 * last committed), when the module's cells were added, removed or re-ordered (do that in the notebook),
 * or when an `export` cell gained a top-level declaration without `export` (it would come back exported).
 */
export function syncBack(
  current: { path: string; notebook: Notebook }[],
  modules: { target: string; content: string }[],
  base: { path: string; notebook: Notebook }[] = [],
): SyncBackResult {
  const expected = new Map(exportNotebooks(current).map((m) => [m.target, m]));
  const baseExports = new Map<string, ExportedCell>();
  for (const nb of base)
    for (const cells of collectExports(nb.path, nb.notebook).values())
      for (const c of cells) baseExports.set(`${nb.path}#${c.cellId}`, c);
  const edits = new Map<string, Map<string, string>>(); // notebook -> cell id -> new body
  const result: SyncBackResult = { notebooks: [], updated: [], conflicts: [] };
  for (const mod of modules) {
    const exp = expected.get(mod.target);
    if (!exp || exp.content === mod.content) continue;
    const onDisk = splitGenerated(mod.content);
    const conflict = (message: string, cellId?: string) =>
      result.conflicts.push({ target: mod.target, notebook: exp.notebook, cellId, message });
    if ([...onDisk.keys()].join(',') !== exp.cells.map((c) => c.cellId).join(',')) {
      conflict(
        `${mod.target} has cells [${[...onDisk.keys()].join(', ')}], ${exp.notebook} exports ` +
          `[${exp.cells.map((c) => c.cellId).join(', ')}]: add, remove or re-order cells in the notebook`,
      );
      continue;
    }
    const pending: { cellId: string; body: string }[] = [];
    let ok = true;
    for (const cell of exp.cells) {
      const code = onDisk.get(cell.cellId)!;
      if (code === cell.code) continue;
      const before = baseExports.get(`${exp.notebook}#${cell.cellId}`);
      if (before && before.code !== cell.code) {
        conflict(
          `${mod.target} cell ${cell.cellId} was edited, and so was the notebook cell since the last commit: ` +
            'merge by hand in the notebook, then run make promote',
          cell.cellId,
        );
        ok = false;
        continue;
      }
      const bare = cell.kind === 'export' ? code.split('\n').find((l) => DECLARATION.test(l)) : undefined;
      if (bare) {
        conflict(
          `${mod.target} cell ${cell.cellId}: "${bare.slice(0, 60)}" is a top-level declaration without export in an ` +
            'exported cell; add `export` (or move it to an //| exporti cell in the notebook)',
          cell.cellId,
        );
        ok = false;
        continue;
      }
      pending.push({ cellId: cell.cellId, body: unexportDeclarations(unrewriteImports(code, mod.target)) });
    }
    if (!ok) continue;
    const cells = edits.get(exp.notebook) ?? new Map<string, string>();
    for (const p of pending) {
      cells.set(p.cellId, p.body);
      result.updated.push({ target: mod.target, notebook: exp.notebook, cellId: p.cellId });
    }
    edits.set(exp.notebook, cells);
  }
  for (const nb of current) {
    const cells = edits.get(nb.path);
    if (!cells?.size) continue;
    result.notebooks.push({
      path: nb.path,
      notebook: {
        ...nb.notebook,
        cells: nb.notebook.cells.map((c, index) => {
          const body = cells.get(c.id ?? `index-${index}`);
          if (body === undefined) return c;
          const lines = sourceText(c).split('\n');
          let n = 0;
          while (n < lines.length && DIRECTIVE.test(lines[n]!.trim())) n++;
          return { ...c, source: toSource([...lines.slice(0, n), body].join('\n')) };
        }),
      },
    });
  }
  return result;
}
