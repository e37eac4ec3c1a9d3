/**
 * The import layers of src/ and scripts/ (make layers): each folder of src/ is one node, scripts/ another,
 * and a module may import only from its own folder or from a strictly lower layer. Declared here, once, so
 * that a new upward import fails `make test` (tests/unit/import-layers.test.ts) instead of slowly
 * re-growing the cycles a reader cannot walk. Cycles between files inside one folder are refused too.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { Command } from 'commander';

/** Bottom to top. `src` is the root files of src/ (config.ts). */
export const LAYERS: readonly (readonly string[])[] = [
  ['src', 'io', 'cli', 'export', 'plots', 'image'],
  ['assets', 'mlflow'],
  ['data', 'stack'],
  ['features'],
  ['engine'],
  ['estimators'],
  ['evaluate'],
  ['train'],
  ['kinds'],
  ['monitor', 'open-intent', 'production', 'tune'],
  ['feedback'],
  ['report', 'retrain', 'serve'],
  ['scripts'],
];

export interface ImportEdge {
  from: string;
  to: string;
}

export interface LayerReport {
  files: number;
  edges: ImportEdge[];
  /** Imports from a folder into one that is not strictly below it. */
  upward: (ImportEdge & { fromNode: string; toNode: string })[];
  /** Folders found that LAYERS does not place. */
  unplaced: string[];
  /** File-level import cycles, each as the files around it. */
  cycles: string[][];
}

/** The node a repository-relative file belongs to: scripts, src (root files) or the src/ folder. */
export function nodeOf(file: string): string {
  const parts = file.split('/');
  if (parts[0] === 'scripts') return 'scripts';
  return parts.length > 2 ? parts[1]! : 'src';
}

const layerOf = (node: string): number => LAYERS.findIndex((l) => l.includes(node));

function tsFiles(root: string, dir: string): string[] {
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) return [];
  return fs.readdirSync(abs, { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : tsFiles(root, rel);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [rel] : [];
  });
}

/** Relative specifiers of a file: static imports, re-exports, `import()` and `require()`. */
export function importSpecifiers(source: string): string[] {
  const info = ts.preProcessFile(source, true, true);
  return info.importedFiles.map((f) => f.fileName).filter((s) => s.startsWith('.'));
}

function resolve(root: string, from: string, spec: string): string | undefined {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec)).replace(/\.(js|ts)$/, '');
  for (const cand of [`${base}.ts`, `${base}/index.ts`]) if (fs.existsSync(path.join(root, cand))) return cand;
  return undefined;
}

function findCycles(graph: Map<string, string[]>): string[][] {
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (u: string): void => {
    state.set(u, 1);
    stack.push(u);
    for (const v of graph.get(u) ?? []) {
      if (state.get(v) === 1) cycles.push(stack.slice(stack.indexOf(v)));
      else if (!state.has(v)) visit(v);
    }
    stack.pop();
    state.set(u, 2);
  };
  for (const u of [...graph.keys()].sort()) if (!state.has(u)) visit(u);
  return cycles;
}

/** Reads every TypeScript file under src/ and scripts/ of `root` and judges its imports. */
export function checkLayers(root: string): LayerReport {
  const files = [...tsFiles(root, 'src'), ...tsFiles(root, 'scripts')];
  const edges: ImportEdge[] = [];
  const graph = new Map<string, string[]>();
  for (const from of files) {
    const targets = importSpecifiers(fs.readFileSync(path.join(root, from), 'utf8'))
      .map((s) => resolve(root, from, s))
      .filter((t): t is string => t !== undefined);
    graph.set(from, targets);
    for (const to of targets) edges.push({ from, to });
  }
  const nodes = new Set(files.map(nodeOf));
  const upward = edges
    .map((e) => ({ ...e, fromNode: nodeOf(e.from), toNode: nodeOf(e.to) }))
    .filter((e) => e.fromNode !== e.toNode && !(layerOf(e.toNode) >= 0 && layerOf(e.toNode) < layerOf(e.fromNode)));
  return {
    files: files.length,
    edges,
    upward,
    unplaced: [...nodes].filter((n) => layerOf(n) < 0).sort(),
    cycles: findCycles(graph),
  };
}

/** The folder graph, bottom layer first: each node with the lower nodes it imports. */
export function layerDiagram(r: LayerReport): string {
  const uses = new Map<string, Set<string>>();
  for (const e of r.edges) {
    const [a, b] = [nodeOf(e.from), nodeOf(e.to)];
    if (a !== b) uses.set(a, (uses.get(a) ?? new Set()).add(b));
  }
  return LAYERS.map(
    (layer, i) =>
      `${String(i).padStart(2)}  ${layer
        .map((n) => `${n}${uses.has(n) ? ` -> ${[...uses.get(n)!].sort().join(' ')}` : ''}`)
        .join('\n    ')}`,
  ).join('\n');
}

if (require.main === module) {
  const opts = new Command('layers')
    .description(
      'Print the import layers of src/ and scripts/; exit 1 on an upward import, an unplaced folder or a cycle.',
    )
    .option('--root <dir>', 'repository root', process.cwd())
    .parse()
    .opts<{ root: string }>();
  const r = checkLayers(opts.root);
  console.log(layerDiagram(r));
  const folderEdges = new Set(
    r.edges.map((e) => `${nodeOf(e.from)}>${nodeOf(e.to)}`).filter((k) => !/^(.+)>\1$/.test(k)),
  );
  console.log(`\n${r.files} files, ${LAYERS.length} layers, ${folderEdges.size} folder edges`);
  for (const e of r.upward)
    console.error(`upward import: ${e.from} -> ${e.to} (${e.fromNode} may not import ${e.toNode})`);
  for (const n of r.unplaced) console.error(`folder not placed in LAYERS (scripts/import-layers.ts): ${n}`);
  for (const c of r.cycles) console.error(`import cycle: ${[...c, c[0]].join(' -> ')}`);
  const bad = r.upward.length + r.unplaced.length + r.cycles.length;
  console.log(bad ? `layers: ${bad} problem(s)` : 'layers: every import points down, no cycles');
  process.exit(bad ? 1 : 0);
}
