/**
 * Retraining a tabular task: new labelled customers from data/incoming/<task>/ (the raw CSV's
 * columns: id, features, label), validated and quarantined like the raw data, appended to the
 * training split of the feature table; drift of the incoming features against the training rows
 * (tests per column); the promoted candidate's recipe refitted on the new table; both models scored
 * through their registered artifacts on the table's test split. The gate is the one in ./retrain.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { digestRows, rowsOf, type FeatureRow } from '../data/feature-table';
import { ingestFile, refuseRows, writeQuarantine } from '../data/ingest';
import type { LabelMap } from '../data/labels';
import { rawRowSchema, type TabularTaskSpec } from '../data/tabular-tasks';
import { evaluate, type Evaluation } from '../evaluate/metrics';
import { loadModel, type RecordPredictor } from '../kinds';
import { trainKind } from '../kinds/training';
import type { TabularData } from '../kinds/types';
import type { ModelVersion } from '../mlflow';
import { isMissingIssue, tabularDriftReport } from '../monitor/tabular-drift';
import type { ProductionConfig } from '../production/config';
import type { ModelCache } from '../production/model-cache';
import type { RetrainData } from './retrain';

export interface IncomingRows {
  rows: FeatureRow[];
  files: string[];
  bad: number;
  /** Incoming rows quarantined for a missing or blank value, per column (drift of missing shares). */
  missing: Record<string, number>;
  read: number;
}

/** Reads every CSV/JSONL in `dir` as labelled raw rows of the task, quarantining bad ones with their row numbers. */
export function ingestIncomingTabular(
  dir: string,
  spec: TabularTaskSpec,
  quarantineDir: string,
  /** Customers of the held-out splits: a row with their id would put the same customer in training. */
  heldOutIds: ReadonlySet<string> = new Set(),
): IncomingRows {
  const out: IncomingRows = { rows: [], files: [], bad: 0, missing: {}, read: 0 };
  if (!fs.existsSync(dir)) return out;
  out.files = fs
    .readdirSync(dir)
    .filter((f) => /\.(csv|jsonl)$/i.test(f))
    .sort();
  for (const f of out.files) {
    const file = path.join(dir, f);
    const res = refuseRows(file, ingestFile(file, { schema: rawRowSchema(spec), maxBadShare: 0.2 }), (r) =>
      heldOutIds.has(r.id) ? `id: customer ${r.id} is in a held-out split; held-out rows never train` : undefined,
    );
    res.rows.forEach((r, i) =>
      out.rows.push({ id: r.id, row: res.rowNumbers[i]!, split: 'train', label: r.label, features: r.features }),
    );
    if (res.bad.length) writeQuarantine(path.join(quarantineDir, `${f}.quarantine.jsonl`), res.bad);
    for (const b of res.bad)
      for (const part of b.reason.split('; ')) {
        const at = part.indexOf(': ');
        if (at > 0 && isMissingIssue(part.slice(at + 2)))
          out.missing[part.slice(0, at)] = (out.missing[part.slice(0, at)] ?? 0) + 1;
      }
    out.bad += res.bad.length;
    out.read += res.stats.total;
  }
  return out;
}

/** Scores a registered tabular version the way serving would (its downloaded artifact) on feature rows. */
export async function evaluateRegisteredRecords(
  cache: ModelCache,
  mv: ModelVersion,
  rows: readonly FeatureRow[],
  labelMap: LabelMap,
): Promise<Evaluation> {
  const p = await loadModel(await cache.fetch(mv));
  try {
    if (p.input !== 'record') throw new Error(`${mv.name} version ${mv.version} is a ${p.kind} model: it scores texts`);
    const predictor: RecordPredictor = p;
    const probs = await predictor.predictProba(rows.map((r) => r.features));
    const k = predictor.labels.length;
    const yPred = rows.map((_, i) => (probs[i * k + 1]! > probs[i * k]! ? 1 : 0));
    return evaluate(
      rows.map((r) => labelMap.label2id[r.label]!),
      yPred,
      predictor.labels,
      probs,
      predictor.labels.indexOf(predictor.positiveLabel),
    );
  } finally {
    await p.release();
  }
}

export interface TabularRetrainInputs {
  spec: TabularTaskSpec;
  production: ProductionConfig;
  table: TabularData;
  /** Where the table lives (recorded as the dataset source). */
  tableFile: string;
  incoming: IncomingRows;
  lastDigest: string | null;
}

export function tabularRetrainData(inp: TabularRetrainInputs): RetrainData {
  // Incoming customers join the training split; an id seen before replaces its old row (their newer state).
  const seen = new Set(inp.incoming.rows.map((r) => r.id));
  const rows = [...inp.table.rows.filter((r) => !seen.has(r.id) || r.split !== 'train'), ...inp.incoming.rows];
  const data: TabularData = { rows, labelMap: inp.production.labelMap, digest: digestRows(rows) };
  const train = rowsOf(inp.table.rows, 'train');
  return {
    task: inp.spec.name,
    production: inp.production,
    digest: data.digest,
    incomingRows: inp.incoming.rows.length,
    lastDigest: inp.lastDigest,
    drift: (policy) =>
      inp.incoming.rows.length > 0
        ? tabularDriftReport(
            {
              columns: inp.spec.columns,
              reference: {
                records: train.map((r) => r.features),
                labels: train.map((r) => r.label),
                missing: { rows: train.length, missing: {} },
              },
              current: {
                records: inp.incoming.rows.map((r) => r.features),
                labels: inp.incoming.rows.map((r) => r.label),
                missing: { rows: inp.incoming.read, missing: inp.incoming.missing },
              },
            },
            policy,
          )
        : undefined,
    trainChallenger: async (run, paths) => {
      await trainKind(inp.production.kind, {
        input: 'record',
        tabular: { spec: inp.spec, data, tableFile: inp.tableFile },
        hyper: inp.production.hyperparameters,
        run,
        paths,
      });
    },
    evaluate: (cache, mv) => evaluateRegisteredRecords(cache, mv, rowsOf(rows, 'test'), inp.production.labelMap),
  };
}
