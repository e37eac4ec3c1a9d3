/**
 * What `make eval-open` logs and prints: one run's flat MLflow metrics, the mean and standard deviation
 * over seeds per known ratio, and a Markdown table. Pure.
 */
import type { OpenRunResult } from './run';

/** One protocol run as MLflow metrics (per score: test AUROC, FPR@95TPR, validation AUROC). */
export function openIntentMetrics(r: OpenRunResult): Record<string, number> {
  const out: Record<string, number> = {
    known_accuracy: r.knownAccuracy,
    known_accuracy_closed: r.knownAccuracyClosed,
    known_accuracy_drop_points: (r.knownAccuracyClosed - r.knownAccuracy) * 100,
    known_kept: r.knownKept,
    open_rejected: r.openRejected,
    // Accuracy over every test example with "open" as one more class (the TEXTOIR/ADB tables' Accuracy).
    accuracy_all:
      (r.knownAccuracy * r.sizes.testKnown + r.openRejected * r.sizes.testUnknown) /
      (r.sizes.testKnown + r.sizes.testUnknown),
    macro_f1_all: r.macroF1All,
    macro_f1_known: r.macroF1Known,
    f1_open: r.f1Open,
    temperature: r.temperature,
    test_ece_uncalibrated: r.testEce.before,
    test_ece_calibrated: r.testEce.after,
    train_seconds: r.trainSeconds,
    auroc: r.methods[r.chosen]!.testAuroc,
    fpr_at_95tpr: r.methods[r.chosen]!.testFprAt95Tpr,
    auroc_gain_over_msp: r.methods[r.chosen]!.testAuroc - r.methods.msp!.testAuroc,
  };
  for (const [name, m] of Object.entries(r.methods)) {
    // MLflow keys take letters, digits, _ - . / and spaces: `mahalanobis+knn` is logged as mahalanobis_knn.
    const key = name.replace(/[^\w./ -]/g, '_');
    out[`test_auroc_${key}`] = m.testAuroc;
    out[`test_fpr95_${key}`] = m.testFprAt95Tpr;
    out[`val_auroc_${key}`] = m.valAuroc;
  }
  return out;
}

export interface OpenSummary {
  knownRatio: number;
  seeds: number[];
  mean: Record<string, number>;
  std: Record<string, number>;
  /** How often each score was chosen on validation. */
  chosen: Record<string, number>;
}

/** Mean and (sample) standard deviation of every metric over the seeds of each known ratio. */
export function summariseOpenRuns(runs: readonly OpenRunResult[]): OpenSummary[] {
  const ratios = [...new Set(runs.map((r) => r.knownRatio))].sort((a, b) => a - b);
  return ratios.map((knownRatio) => {
    const rs = runs.filter((r) => r.knownRatio === knownRatio);
    const metrics = rs.map(openIntentMetrics);
    const keys = Object.keys(metrics[0]!).filter((k) => metrics.every((m) => k in m));
    const mean: Record<string, number> = {};
    const std: Record<string, number> = {};
    for (const k of keys) {
      const xs = metrics.map((m) => m[k]!);
      const mu = xs.reduce((a, b) => a + b, 0) / xs.length;
      mean[k] = mu;
      std[k] = xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mu) ** 2, 0) / (xs.length - 1)) : 0;
    }
    const chosen: Record<string, number> = {};
    for (const r of rs) chosen[r.chosen] = (chosen[r.chosen] ?? 0) + 1;
    return { knownRatio, seeds: rs.map((r) => r.seed), mean, std, chosen };
  });
}

const pct = (x: number) => (x * 100).toFixed(2);

/** The report: per run and per ratio (mean ± std over seeds). */
export function openIntentMarkdown(
  task: string,
  summary: readonly OpenSummary[],
  runs: readonly OpenRunResult[],
): string {
  const scores = [...new Set(runs.flatMap((r) => Object.keys(r.methods)))];
  const lines = [
    `# Open intent classification: ${task}, ${runs[0]?.model ?? ''}`,
    '',
    'Known intents train the model; the held-out intents are the open class. Scores and thresholds are chosen ' +
      `on validation (the plain quantile at in-scope recall ${runs[0]?.recall ?? 0.95}; a served model's threshold ` +
      'adds a 95% confidence bound and keeps about one point more); every number below is on the test split. ' +
      'AUROC and FPR@95TPR (in-scope vs open) do not depend on the threshold.',
    '',
    `| known | seed | chosen | ${scores.map((s) => `AUROC ${s}`).join(' | ')} | FPR@95 (chosen) | ` +
      'known acc. closed | known acc. | accuracy all | macro-F1 all | F1 open |',
    `|---|---|---|${scores.map(() => '---|').join('')}---|---|---|---|---|---|`,
    ...runs.map(
      (r) =>
        `| ${pct(r.knownRatio)}% | ${r.seed} | ${r.chosen} | ${scores
          .map((s) => (r.methods[s] ? r.methods[s]!.testAuroc.toFixed(4) : '–'))
          .join(' | ')} | ${r.methods[r.chosen]!.testFprAt95Tpr.toFixed(3)} | ${pct(r.knownAccuracyClosed)} | ${pct(
          r.knownAccuracy,
        )} | ${pct(openIntentMetrics(r).accuracy_all!)} | ${pct(r.macroF1All)} | ${pct(r.f1Open)} |`,
    ),
    '',
    '| known | seeds | chosen (times) | AUROC | AUROC MSP | gain over MSP | FPR@95 | known acc. closed | ' +
      'known acc. | accuracy all | macro-F1 all |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...summary.map((s) => {
      const f = (k: string, scale = 1, d = 4) =>
        `${(s.mean[k]! * scale).toFixed(d)} ± ${(s.std[k]! * scale).toFixed(d)}`;
      return `| ${pct(s.knownRatio)}% | ${s.seeds.join(',')} | ${Object.entries(s.chosen)
        .map(([c, n]) => `${c} (${n})`)
        .join(
          ', ',
        )} | ${f('auroc')} | ${f('test_auroc_msp')} | ${f('auroc_gain_over_msp')} | ${f('fpr_at_95tpr', 1, 3)} | ${f(
        'known_accuracy_closed',
        100,
        2,
      )} | ${f('known_accuracy', 100, 2)} | ${f('accuracy_all', 100, 2)} | ${f('macro_f1_all', 100, 2)} |`;
    }),
    '',
  ];
  return lines.join('\n');
}
