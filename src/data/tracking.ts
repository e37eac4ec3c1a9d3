/**
 * What the data stage records in MLflow, as pure functions of a prepared task: params, metrics,
 * dataset inputs (digest, source, schema) and the HTML data report. The caller does the logging.
 */
import path from 'node:path';
import type { DatasetInput } from '../mlflow';
import { metricKeyPart } from '../mlflow/validation';
import { histogramFigure, labelDistributionFigure } from '../plots/figures';
import { reportHtml } from '../plots/html';
import { digestExamples, shortDigest } from './digest';
import { SPLITS, type PreparedTask, type SplitName } from './prepare';
import type { AnyTaskSpec, Example } from './tasks';

export function preparationParams(spec: AnyTaskSpec, p: PreparedTask): Record<string, string | number | boolean> {
  return {
    task: spec.name,
    dataset: spec.dataset,
    seed: p.seed,
    validation_share: spec.split.validationShare,
    test_share: spec.files.some((f) => f.role === 'test') ? 'fixed test file' : spec.split.testShare,
    max_bad_share: spec.maxBadShare,
    num_labels: p.labelMap.labels.length,
    ...Object.fromEntries(
      Object.entries(spec.cleaning ?? {})
        .filter(([, v]) => typeof v === 'boolean')
        .map(([k, v]) => [`cleaning.${k}`, v as boolean]),
    ),
  };
}

export function preparationMetrics(p: PreparedTask): Record<string, number> {
  const m: Record<string, number> = {
    rows_read: p.stats.rowsRead,
    rows_bad: p.stats.rowsBad,
    bad_share: p.stats.badShare,
  };
  for (const s of SPLITS) m[`n_${s}`] = p.stats.sizes[s];
  for (const [label, share] of Object.entries(p.stats.classShares.all))
    m[`class_share/${metricKeyPart(label)}`] = share;
  return m;
}

const TEXT_SCHEMA = JSON.stringify({
  mlflow_colspec: [
    { type: 'string', name: 'id' },
    { type: 'string', name: 'text' },
    { type: 'string', name: 'label' },
  ],
});

export function datasetInputs(p: PreparedTask, files: Record<string, string>, root: string): DatasetInput[] {
  const schema = TEXT_SCHEMA;
  return SPLITS.map((s) => ({
    context: s,
    dataset: {
      name: `${p.task}-${s}`,
      digest: shortDigest(p.digests[s]),
      source_type: 'local',
      source: JSON.stringify({ uri: path.relative(root, files[s]!), sha256: p.digests[s] }),
      schema,
      profile: JSON.stringify({ num_rows: p.stats.sizes[s], num_labels: p.labelMap.labels.length }),
    },
  }));
}

/**
 * A split as MLflow names it: the same name and digest as the data stage logs, so the UI shows a
 * training run and its data run on one dataset.
 */
export function splitDataset(
  task: string,
  split: SplitName,
  examples: readonly Pick<Example, 'text' | 'label'>[],
): { name: string; digest: string } {
  return { name: `${task}-${split}`, digest: shortDigest(digestExamples(examples)) };
}

/** The train, validation and test splits a training run used, as its dataset inputs. */
export function trainingInputs(
  task: string,
  data: Readonly<Record<SplitName, readonly Example[]>>,
  source = `data/processed/${task}`,
): DatasetInput[] {
  return SPLITS.map((s) => {
    const { name, digest } = splitDataset(task, s, data[s]);
    const labels = new Set(data[s].map((e) => e.label)).size;
    return {
      context: s,
      dataset: {
        name,
        digest,
        source_type: 'local',
        source: JSON.stringify({ uri: `${source}/${s}.jsonl`, sha256: digestExamples(data[s]) }),
        schema: TEXT_SCHEMA,
        profile: JSON.stringify({ num_rows: data[s].length, num_labels: labels }),
      },
    };
  });
}

/** Counts per label and split, shares per split, text lengths per label: the report a person looks at. */
export function dataReportHtml(spec: AnyTaskSpec, p: PreparedTask): string {
  const lengths: Record<string, number[]> = {};
  for (const e of p.splits.train) (lengths[e.label] ??= []).push(e.text.split(/\s+/).length);
  const top = Object.entries(lengths)
    .sort((a, b) => b[1].length - a[1].length)
    .slice(0, 8);
  const counts = (s: (typeof SPLITS)[number]) =>
    p.splits[s].reduce<Record<string, number>>((acc, e) => ((acc[e.label] = (acc[e.label] ?? 0) + 1), acc), {});
  const bySplit = Object.fromEntries(SPLITS.map((s) => [s, counts(s)]));
  return reportHtml(`Data report: ${spec.name}`, [
    { heading: 'Task', text: `${spec.description}${spec.notes ? ` Note: ${spec.notes}` : ''}` },
    {
      heading: 'Rows',
      table: {
        columns: ['', 'count'],
        rows: [
          ['rows read', p.stats.rowsRead],
          ['quarantined', p.stats.rowsBad],
          ...SPLITS.map((s) => [s, p.stats.sizes[s]] as [string, number]),
          ...Object.entries(p.stats.badReasons).map(([r, n]) => [`bad: ${r}`, n] as [string, number]),
        ],
      },
    },
    {
      heading: 'Label distribution',
      figure: labelDistributionFigure({
        all: p.stats.classShares.all,
        train: p.stats.classShares.train,
        validation: p.stats.classShares.validation,
        test: p.stats.classShares.test,
      }),
    },
    {
      heading: 'Counts per label',
      table: {
        columns: ['label', ...SPLITS, 'class weight'],
        rows: p.labelMap.labels.map((l, i) => [l, ...SPLITS.map((s) => bySplit[s]![l] ?? 0), p.classWeights[i] ?? 0]),
      },
    },
    {
      heading: 'Text length (words, train)',
      figure: histogramFigure(Object.fromEntries(top), 'Words per example, by label (largest 8 classes)', 'words'),
    },
  ]);
}
