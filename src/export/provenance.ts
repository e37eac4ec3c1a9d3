/**
 * Provenance of the promoted code: a digest of what the notebooks export (each generated module's
 * content), recorded on every run and checked by `make promote`, so a model is never registered next
 * to notebook code that did not produce it.
 */
import { createHash } from 'node:crypto';
import type { ModuleExport } from './export';

export const EXPORTS_DIGEST_TAG = 'mlops.exports.digest';
export const EXPORTS_MODULES_TAG = 'mlops.exports.modules';

export interface ExportsDigest {
  /** sha256 over every exported module (target and content), in target order. */
  digest: string;
  /** target -> the first 12 hex characters of its content's sha256. */
  modules: Record<string, string>;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

export function exportsDigest(modules: readonly ModuleExport[]): ExportsDigest {
  const sorted = [...modules].sort((a, b) => a.target.localeCompare(b.target));
  return {
    digest: sha(sorted.map((m) => `${m.target}\n${sha(m.content)}`).join('\n')),
    modules: Object.fromEntries(sorted.map((m) => [m.target, sha(m.content).slice(0, 12)])),
  };
}

/** The tags a run carries for its exported code. */
export const exportsTags = (d: ExportsDigest): Record<string, string> => ({
  [EXPORTS_DIGEST_TAG]: d.digest,
  [EXPORTS_MODULES_TAG]: JSON.stringify(d.modules),
});

/** Modules that differ between the run's recorded exports and the current ones (pure). */
export function changedModules(recorded: Record<string, string>, current: ExportsDigest): string[] {
  const targets = [...new Set([...Object.keys(recorded), ...Object.keys(current.modules)])].sort();
  return targets.filter((t) => recorded[t] !== current.modules[t]);
}
