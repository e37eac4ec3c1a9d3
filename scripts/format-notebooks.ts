/**
 * Prettier for notebook code cells (the formatter `make format` runs on src/ also runs on the cells
 * that `make promote` exports, and on the rest): lines stay within the print width, so nothing is
 * clipped in JupyterLab. `--check` lists the cells that are not formatted and exits 1 (make lint). Both
 * modes also report code that type-checks but fails under the tslab kernel (src/export/tslab-pitfalls.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import * as prettier from 'prettier';
import { loadConfig } from '../src/config';
import { readNotebooks } from '../src/export/notebooks';
import { crossCellShorthands } from '../src/export/tslab-pitfalls';
import { log, runMain } from '../src/cli/progress';

const cfg = loadConfig();

/** A cell's source formatted (without the trailing newline a file would have). */
async function formatCell(source: string, options: prettier.Options): Promise<string> {
  return (await prettier.format(source, { ...options, parser: 'typescript' })).replace(/\n+$/, '');
}

const program = new Command()
  .name('format-notebooks')
  .description('format the TypeScript cells of notebooks/*.ipynb with Prettier (the project config)')
  .option('--check', 'only report unformatted cells (exit 1 if any)')
  .action((opts: { check?: boolean }) =>
    runMain(async () => {
      const options = (await prettier.resolveConfig(path.join(cfg.root, 'src', 'config.ts'))) ?? {};
      const unformatted: string[] = [];
      const tooLong: string[] = [];
      const pitfalls: string[] = [];
      for (const { path: file, notebook } of readNotebooks(cfg.root)) {
        const code = notebook.cells.filter((c) => c.cell_type === 'code');
        for (const f of crossCellShorthands(code.map((c) => (Array.isArray(c.source) ? c.source.join('') : c.source))))
          pitfalls.push(`${file} cell ${code[f.cell]!.id ?? f.cell} line ${f.line}: ${f.message}`);
        let changed = false;
        for (const [i, cell] of notebook.cells.entries()) {
          if (cell.cell_type !== 'code') continue;
          const source = Array.isArray(cell.source) ? cell.source.join('') : cell.source;
          let formatted: string;
          try {
            formatted = await formatCell(source, options);
          } catch (err) {
            throw new Error(`${file} cell ${i} (${cell.id ?? 'no id'}) does not parse: ${(err as Error).message}`);
          }
          // Prettier does not split long strings; those lines need a hand edit.
          const width = options.printWidth ?? 80;
          formatted.split('\n').forEach((line, n) => {
            if (line.length > width)
              tooLong.push(
                `${file} cell ${i} (${cell.id ?? 'no id'}) line ${n + 1}: ${line.length} > ${width} characters`,
              );
          });
          if (formatted === source) continue;
          unformatted.push(`${file} cell ${i} (${cell.id ?? 'no id'})`);
          cell.source = formatted.split(/(?<=\n)/);
          changed = true;
        }
        if (changed && !opts.check)
          fs.writeFileSync(path.join(cfg.root, file), `${JSON.stringify(notebook, null, 1)}\n`);
      }
      if (pitfalls.length) {
        log(`notebook code that fails under the tslab kernel:\n  ${pitfalls.join('\n  ')}`);
        process.exitCode = 1;
      }
      if (tooLong.length) {
        log(`notebook lines longer than the print width (split the string):\n  ${tooLong.join('\n  ')}`);
        process.exitCode = 1;
      }
      if (opts.check && unformatted.length) {
        log(`notebook cells not formatted (run make format, then make promote):\n  ${unformatted.join('\n  ')}`);
        process.exitCode = 1;
      } else if (!opts.check) log(`formatted ${unformatted.length} notebook cell(s)`);
    }),
  );

program.parse();
