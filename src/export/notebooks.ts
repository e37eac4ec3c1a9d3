/** File-system edge of the exporter: reading notebooks, finding and writing generated modules. */
import fs from 'node:fs';
import path from 'node:path';
import { exportNotebooks, type ModuleExport, type Notebook } from './export';

export function readNotebooks(root: string, dir = 'notebooks'): { path: string; notebook: Notebook }[] {
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) return [];
  return fs
    .readdirSync(abs)
    .filter((f) => f.endsWith('.ipynb') && !f.startsWith('.'))
    .sort()
    .map((f) => ({
      path: `${dir}/${f}`,
      notebook: JSON.parse(fs.readFileSync(path.join(abs, f), 'utf8')) as Notebook,
    }));
}

export function exportsOf(root: string): ModuleExport[] {
  return exportNotebooks(readNotebooks(root));
}

/** Project-relative paths of src/ files that carry the AUTO-GENERATED header. */
export function generatedFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(r);
      else if (
        e.name.endsWith('.ts') &&
        fs.readFileSync(path.join(root, r), 'utf8').startsWith('// AUTO-GENERATED from ')
      )
        out.push(r);
    }
  };
  walk('src');
  return out.sort();
}

/** Writes modules whose content changed; returns the paths written. */
export function writeExports(root: string, modules: ModuleExport[]): string[] {
  const written: string[] = [];
  for (const m of modules) {
    const file = path.join(root, m.target);
    if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === m.content) continue;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, m.content);
    written.push(m.target);
  }
  return written;
}
