/**
 * The data stage of a task: ingest (validated, quarantined) -> clean -> split -> encode labels,
 * plus digests and stats. `prepareTask` only reads; `writePrepared` writes; logging to MLflow is
 * the caller's (scripts/prepare-data.ts), so notebooks can run the same steps without side effects.
 */
import fs from 'node:fs';
import path from 'node:path';
import { cleanText } from './clean';
import { digestExamples, shortDigest } from './digest';
import { ingestFile, writeQuarantine, type BadRow } from './ingest';
import { buildLabelMap, classWeights, encodeLabels, type LabelMap } from './labels';
import { classShares, stratifiedSplit } from './split';
import type { AnyTaskSpec, Example } from './tasks';

export const SPLITS = ['train', 'validation', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];

export interface PrepareOptions {
  /** Overrides the task's split seed. */
  seed?: number;
  /** Small-data mode: keep at most this many examples per split (stratified), e.g. for CI. */
  maxPerSplit?: number;
}

export interface PreparedTask {
  task: string;
  seed: number;
  splits: Record<SplitName, Example[]>;
  labelMap: LabelMap;
  classWeights: number[];
  /** Full sha256 per split. */
  digests: Record<SplitName, string>;
  quarantine: BadRow[];
  stats: {
    rowsRead: number;
    rowsBad: number;
    badShare: number;
    badReasons: Record<string, number>;
    sizes: Record<SplitName, number>;
    classShares: Record<SplitName | 'all', Record<string, number>>;
  };
}

/** Keeps a stratified, deterministic subset of at most `n` examples. */
export function stratifiedSubset(examples: Example[], n: number, seed: number): Example[] {
  if (examples.length <= n) return examples;
  const parts = stratifiedSplit(
    examples.map((e) => e.label),
    { keep: n / examples.length, drop: 1 - n / examples.length },
    seed,
  );
  return parts.keep.map((i) => examples[i]!);
}

export function prepareTask(spec: AnyTaskSpec, rawDir: string, opts: PrepareOptions = {}): PreparedTask {
  const seed = opts.seed ?? spec.split.seed;
  const pools: Example[] = [];
  const fixedTest: Example[] = [];
  const quarantine: BadRow[] = [];
  let rowsRead = 0;
  for (const file of spec.files) {
    const full = path.join(rawDir, file.path);
    const res = ingestFile(full, {
      schema: spec.schema,
      maxBadShare: spec.maxBadShare,
      textFields: spec.textFields,
      maxTextChars: spec.maxTextChars,
    });
    rowsRead += res.stats.total;
    quarantine.push(...res.bad.map((b) => ({ ...b, file: file.path })));
    res.rows.forEach((row, i) => {
      const rowNo = res.rowNumbers[i]!;
      const id = `${file.path}#${rowNo}`;
      const ex = spec.toExample(row, id);
      const text = spec.cleaning ? cleanText(ex.text, spec.cleaning) : ex.text;
      if (!text.trim()) {
        quarantine.push({ file: file.path, row: rowNo, line: 0, reason: 'text is empty after cleaning', raw: row });
        return;
      }
      (file.role === 'test' ? fixedTest : pools).push({
        id,
        text,
        label: ex.label,
        ...(ex.fineLabel ? { fineLabel: ex.fineLabel } : {}),
      });
    });
  }
  const badShare = rowsRead ? quarantine.length / rowsRead : 0;
  if (badShare > spec.maxBadShare) {
    throw new Error(
      `${spec.name}: ${quarantine.length} of ${rowsRead} rows are invalid (${(badShare * 100).toFixed(1)}%, limit ` +
        `${spec.maxBadShare * 100}%)`,
    );
  }

  const labels = pools.map((e) => e.label);
  let splits: Record<SplitName, Example[]>;
  if (fixedTest.length > 0) {
    const v = spec.split.validationShare;
    const p = stratifiedSplit(labels, { train: 1 - v, validation: v }, seed);
    splits = { train: p.train.map((i) => pools[i]!), validation: p.validation.map((i) => pools[i]!), test: fixedTest };
  } else {
    const { validationShare: v, testShare: t } = spec.split;
    const p = stratifiedSplit(labels, { train: 1 - v - t, validation: v, test: t }, seed);
    splits = {
      train: p.train.map((i) => pools[i]!),
      validation: p.validation.map((i) => pools[i]!),
      test: p.test.map((i) => pools[i]!),
    };
  }
  if (opts.maxPerSplit) {
    const n = opts.maxPerSplit;
    splits = {
      train: stratifiedSubset(splits.train, n, seed),
      validation: stratifiedSubset(splits.validation, n, seed),
      test: stratifiedSubset(splits.test, n, seed),
    };
  }

  const labelMap = buildLabelMap([...pools, ...fixedTest].map((e) => e.label));
  const trainIds = encodeLabels(
    splits.train.map((e) => e.label),
    labelMap,
  );
  const badReasons: Record<string, number> = {};
  for (const b of quarantine) badReasons[b.reason] = (badReasons[b.reason] ?? 0) + 1;
  return {
    task: spec.name,
    seed,
    splits,
    labelMap,
    classWeights: classWeights(trainIds, labelMap.labels.length),
    digests: {
      train: digestExamples(splits.train),
      validation: digestExamples(splits.validation),
      test: digestExamples(splits.test),
    },
    quarantine,
    stats: {
      rowsRead,
      rowsBad: quarantine.length,
      badShare,
      badReasons,
      sizes: { train: splits.train.length, validation: splits.validation.length, test: splits.test.length },
      classShares: {
        all: classShares([...splits.train, ...splits.validation, ...splits.test].map((e) => e.label)),
        train: classShares(splits.train.map((e) => e.label)),
        validation: classShares(splits.validation.map((e) => e.label)),
        test: classShares(splits.test.map((e) => e.label)),
      },
    },
  };
}

export interface PreparedFiles {
  dir: string;
  splits: Record<SplitName, string>;
  labelMap: string;
  manifest: string;
  quarantine: string;
}

export function preparedFiles(dir: string): PreparedFiles {
  return {
    dir,
    splits: {
      train: path.join(dir, 'train.jsonl'),
      validation: path.join(dir, 'validation.jsonl'),
      test: path.join(dir, 'test.jsonl'),
    },
    labelMap: path.join(dir, 'label_map.json'),
    manifest: path.join(dir, 'manifest.json'),
    quarantine: path.join(dir, 'quarantine.jsonl'),
  };
}

/** The manifest: what a later stage (training, retrain's "new data?" check) needs to know about the data. */
export function manifestOf(p: PreparedTask): Record<string, unknown> {
  return {
    task: p.task,
    seed: p.seed,
    digests: p.digests,
    shortDigests: Object.fromEntries(SPLITS.map((s) => [s, shortDigest(p.digests[s])])),
    sizes: p.stats.sizes,
    rowsRead: p.stats.rowsRead,
    rowsBad: p.stats.rowsBad,
    badReasons: p.stats.badReasons,
    labels: p.labelMap.labels,
    classWeights: p.classWeights,
    classShares: p.stats.classShares,
  };
}

/** Writes splits (JSONL), label map, manifest and the quarantine file side by side. */
export function writePrepared(p: PreparedTask, dir: string): PreparedFiles {
  const files = preparedFiles(dir);
  fs.mkdirSync(dir, { recursive: true });
  for (const s of SPLITS)
    fs.writeFileSync(files.splits[s], p.splits[s].map((e) => JSON.stringify(e)).join('\n') + '\n');
  fs.writeFileSync(files.labelMap, `${JSON.stringify(p.labelMap, null, 2)}\n`);
  fs.writeFileSync(files.manifest, `${JSON.stringify(manifestOf(p), null, 2)}\n`);
  writeQuarantine(files.quarantine, p.quarantine);
  return files;
}

/** Reads a split written by `writePrepared`. */
export function readSplit(dir: string, split: SplitName): Example[] {
  const file = preparedFiles(dir).splits[split];
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist. Run \`make prepare\` first.`);
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Example);
}

export interface PreparedData {
  train: Example[];
  validation: Example[];
  test: Example[];
  labelMap: LabelMap;
  /** Full sha256 of the training split (from the data manifest). */
  trainDigest?: string;
}

/** Reads what `make prepare` wrote for a task. */
export function readPrepared(dir: string): PreparedData {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as {
    digests: Record<string, string>;
  };
  return {
    train: readSplit(dir, 'train'),
    validation: readSplit(dir, 'validation'),
    test: readSplit(dir, 'test'),
    labelMap: JSON.parse(fs.readFileSync(path.join(dir, 'label_map.json'), 'utf8')) as LabelMap,
    trainDigest: manifest.digests.train,
  };
}
