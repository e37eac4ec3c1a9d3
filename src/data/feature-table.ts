/**
 * The data stage of a tabular task: ingest (validated, quarantined) -> split -> the feature table,
 * one row per customer with its split, label and validated feature values, versioned by a content
 * digest. Training, retraining and batch scoring read the table (and check its digest); none of
 * them re-reads the raw CSV. `prepareTabular` only reads; `writeFeatureTable` writes.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { DatasetInput } from '../mlflow';
import { shortDigest } from './digest';
import { ingestFile, writeQuarantine, type BadRow } from './ingest';
import { buildLabelMap, type LabelMap } from './labels';
import { SPLITS, stratifiedSubset, type SplitName } from './prepare';
import { classShares, stratifiedSplit } from './split';
import { rawRowSchema, type FeatureRecord, type TabularTaskSpec } from './tabular-tasks';

export interface FeatureRow {
  /** The row's id column (a customer id). */
  id: string;
  /** 1-based data row in the raw file, so a prediction can be traced to its source. */
  row: number;
  split: SplitName;
  label: string;
  features: FeatureRecord;
}

export interface FeatureTable {
  task: string;
  seed: number;
  rows: FeatureRow[];
  labelMap: LabelMap;
  /** sha256 of the table's canonical JSONL (what features.jsonl holds). */
  digest: string;
  quarantine: BadRow[];
  stats: { rowsRead: number; rowsBad: number; badReasons: Record<string, number>; sizes: Record<SplitName, number> };
}

const canonical = (r: FeatureRow) => JSON.stringify(r);
export const digestRows = (rows: readonly FeatureRow[]): string => {
  const h = createHash('sha256');
  for (const r of rows) h.update(canonical(r)).update('\n');
  return h.digest('hex');
};

export function prepareTabular(
  spec: TabularTaskSpec,
  rawDir: string,
  opts: { seed?: number; maxPerSplit?: number } = {},
): FeatureTable {
  const seed = opts.seed ?? spec.split.seed;
  const file = path.join(rawDir, spec.file);
  const res = ingestFile(file, { schema: rawRowSchema(spec), maxBadShare: spec.maxBadShare });
  const quarantine = res.bad.map((b) => ({ ...b, file: spec.file }));
  const all = res.rows.map((r, i) => ({ ...r, row: res.rowNumbers[i]! }));
  const { validationShare: v, testShare: t } = spec.split;
  const parts = stratifiedSplit(
    all.map((r) => r.label),
    { train: 1 - v - t, validation: v, test: t },
    seed,
  );
  const split = new Map<number, SplitName>();
  for (const s of SPLITS) for (const i of parts[s]) split.set(i, s);
  let rows: FeatureRow[] = all.map((r, i) => ({ ...r, split: split.get(i)! }));
  if (opts.maxPerSplit) {
    const n = opts.maxPerSplit;
    const keep = new Set<string>();
    for (const s of SPLITS) {
      const inSplit = rows.filter((r) => r.split === s).map((r) => ({ id: r.id, text: '', label: r.label }));
      for (const e of stratifiedSubset(inSplit, n, seed)) keep.add(e.id);
    }
    rows = rows.filter((r) => keep.has(r.id));
  }
  const badReasons: Record<string, number> = {};
  for (const b of quarantine) badReasons[b.reason] = (badReasons[b.reason] ?? 0) + 1;
  return {
    task: spec.name,
    seed,
    rows,
    labelMap: buildLabelMap(all.map((r) => r.label)),
    digest: digestRows(rows),
    quarantine,
    stats: {
      rowsRead: res.stats.total,
      rowsBad: quarantine.length,
      badReasons,
      sizes: Object.fromEntries(SPLITS.map((s) => [s, rows.filter((r) => r.split === s).length])) as Record<
        SplitName,
        number
      >,
    },
  };
}

export interface FeatureTableFiles {
  dir: string;
  table: string;
  labelMap: string;
  manifest: string;
  quarantine: string;
}

export function featureTableFiles(dir: string): FeatureTableFiles {
  return {
    dir,
    table: path.join(dir, 'features.jsonl'),
    labelMap: path.join(dir, 'label_map.json'),
    manifest: path.join(dir, 'manifest.json'),
    quarantine: path.join(dir, 'quarantine.jsonl'),
  };
}

export function writeFeatureTable(t: FeatureTable, dir: string): FeatureTableFiles {
  const files = featureTableFiles(dir);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(files.table, t.rows.map((r) => `${canonical(r)}\n`).join(''));
  fs.writeFileSync(files.labelMap, `${JSON.stringify(t.labelMap, null, 2)}\n`);
  const manifest = {
    task: t.task,
    kind: 'tabular',
    seed: t.seed,
    digest: t.digest,
    shortDigest: shortDigest(t.digest),
    sizes: t.stats.sizes,
    rowsRead: t.stats.rowsRead,
    rowsBad: t.stats.rowsBad,
    badReasons: t.stats.badReasons,
    labels: t.labelMap.labels,
    classShares: classShares(t.rows.map((r) => r.label)),
  };
  fs.writeFileSync(files.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
  writeQuarantine(files.quarantine, t.quarantine);
  return files;
}

export class FeatureTableError extends Error {
  override name = 'FeatureTableError';
}

/** Reads a feature table and checks it is the one its manifest names (by digest), so a stale file is never used. */
export function readFeatureTable(dir: string): { rows: FeatureRow[]; labelMap: LabelMap; digest: string } {
  const files = featureTableFiles(dir);
  for (const f of [files.table, files.manifest, files.labelMap])
    if (!fs.existsSync(f)) throw new FeatureTableError(`${f} does not exist. Run \`make prepare TASK=<task>\` first.`);
  const rows = fs
    .readFileSync(files.table, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as FeatureRow);
  const manifest = JSON.parse(fs.readFileSync(files.manifest, 'utf8')) as { digest: string };
  const digest = digestRows(rows);
  if (digest !== manifest.digest)
    throw new FeatureTableError(
      `${files.table} has digest ${digest.slice(0, 12)}... ` +
        `but its manifest names ${manifest.digest.slice(0, 12)}...: ` +
        'the table was changed after `make prepare`; run it again.',
    );
  return { rows, labelMap: JSON.parse(fs.readFileSync(files.labelMap, 'utf8')) as LabelMap, digest };
}

export const rowsOf = (rows: readonly FeatureRow[], split: SplitName): FeatureRow[] =>
  rows.filter((r) => r.split === split);

/** MLflow dataset inputs for the feature table: one per split, sharing the table's digest and schema. */
export function featureTableInputs(
  spec: TabularTaskSpec,
  t: { rows: readonly FeatureRow[]; digest: string },
  file: string,
  root: string,
): DatasetInput[] {
  const schema = JSON.stringify({
    mlflow_colspec: [
      { type: 'string', name: spec.idColumn },
      ...spec.columns.map((c) => ({ type: c.type === 'number' ? 'double' : 'string', name: c.name })),
      { type: 'string', name: spec.labelColumn },
    ],
  });
  return SPLITS.map((s) => {
    const rows = rowsOf(t.rows, s);
    return {
      context: s,
      dataset: {
        name: `${spec.name}-features-${s}`,
        digest: shortDigest(digestRows(rows)),
        source_type: 'local',
        source: JSON.stringify({ uri: path.relative(root, file), sha256: t.digest, split: s }),
        schema,
        profile: JSON.stringify({
          num_rows: rows.length,
          positive_share: classShares(rows.map((r) => r.label))[spec.positiveLabel] ?? 0,
        }),
      },
    };
  });
}

/** Raw rows read and rows quarantined for a missing or blank value, per column (the reference missing shares). */
export function referenceMissing(
  dir: string,
  columns: readonly { name: string }[],
): { rows: number; missing: Record<string, number> } {
  const files = featureTableFiles(dir);
  const manifest = JSON.parse(fs.readFileSync(files.manifest, 'utf8')) as { rowsRead: number };
  const missing: Record<string, number> = {};
  const lines = fs.existsSync(files.quarantine)
    ? fs.readFileSync(files.quarantine, 'utf8').split('\n').filter(Boolean)
    : [];
  for (const line of lines) {
    const bad = JSON.parse(line) as BadRow;
    for (const part of bad.reason.split('; ')) {
      const [column, message] = [part.slice(0, part.indexOf(': ')), part.slice(part.indexOf(': ') + 2)];
      if (columns.some((c) => c.name === column) && (message === 'missing' || message.startsWith('blank')))
        missing[column] = (missing[column] ?? 0) + 1;
    }
  }
  return { rows: manifest.rowsRead, missing };
}
