import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { runCommand } from '../helpers/cli';

const cfg = loadConfig();

describe('tslab kernel', () => {
  it('is registered inside the venv, not in the user home', () => {
    const spec = JSON.parse(fs.readFileSync(path.join(cfg.venv, 'share/jupyter/kernels/tslab/kernel.json'), 'utf8'));
    expect(spec.argv[0]).toBe(path.join(cfg.root, 'scripts/tslab-kernel'));
    expect(spec.language).toBe('typescript');
  });

  it('executes the smoke notebook headless: shared variables, top-level await, HTML display', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'nb-'));
    await runCommand(path.join(cfg.venv, 'bin/jupyter'), [
      'nbconvert',
      '--to',
      'notebook',
      '--execute',
      '--output-dir',
      out,
      '--output',
      'smoke.ipynb',
      path.join(cfg.root, 'notebooks/00_kernel_smoke.ipynb'),
    ]);
    const nb = JSON.parse(fs.readFileSync(path.join(out, 'smoke.ipynb'), 'utf8'));
    const outputs = nb.cells.flatMap((c: { outputs: unknown[] }) => c.outputs) as {
      output_type: string;
      text?: string[];
      data?: Record<string, string[]>;
    }[];
    const stdout = outputs
      .filter((o) => o.output_type === 'stream')
      .flatMap((o) => o.text ?? [])
      .join('');
    expect(stdout).toContain('hello from tslab 42');
    const html = outputs
      .filter((o) => o.output_type === 'display_data')
      .map((o) => (o.data?.['text/html'] ?? []).join(''));
    expect(html).toContain('<b id="smoke">kernel ok: 42</b>');
    expect(outputs.some((o) => o.output_type === 'error')).toBe(false);
  });
});
