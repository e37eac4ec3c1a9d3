import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config';

const cfg = loadConfig();

/**
 * A runnable copy of the project in `dest`, for commands that write under the project root (prepare,
 * promote, retrain): the sources and the files named are copied, the installs and inputs linked
 * (node_modules, data/raw, and models/pretrained when asked), so nothing a test runs touches the repo.
 */
export function copyProject(dest: string, o: { files: string[]; pretrained?: boolean }): void {
  for (const f of ['notebooks', 'src', 'scripts'])
    fs.cpSync(path.join(cfg.root, f), path.join(dest, f), { recursive: true });
  for (const f of o.files) fs.copyFileSync(path.join(cfg.root, f), path.join(dest, f));
  fs.symlinkSync(path.join(cfg.root, 'node_modules'), path.join(dest, 'node_modules'));
  fs.mkdirSync(path.join(dest, 'data'), { recursive: true });
  fs.symlinkSync(cfg.paths.dataRaw, path.join(dest, 'data', 'raw'));
  if (o.pretrained) {
    fs.mkdirSync(path.join(dest, 'models'), { recursive: true });
    fs.symlinkSync(cfg.paths.pretrained, path.join(dest, 'models', 'pretrained'));
  }
}
