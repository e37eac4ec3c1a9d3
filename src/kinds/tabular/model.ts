/**
 * The tabular kind: the promoted feature transform (src/features/tabular.ts, fitted on the training
 * split and saved as feature_transform.json) in front of a classical learner exported to ONNX
 * (logistic regression, random forest or LightGBM) that ONNX Runtime runs. Serving validates each
 * record against the columns the model was trained on, so a wrong type names its column. A folder with
 * a scope.json (score `none`) serves temperature-scaled probabilities (fitted on out-of-fold predictions).
 */
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { LabelMap } from '../../data/labels';
import { recordSchema, type FeatureRecord } from '../../data/tabular-tasks';
import { createSession } from '../../engine/ort-session';
import { logitsOfProbs, softmaxWithTemperature } from '../../evaluate/calibration';
import { readScope } from '../scope/rule';
import { applyFeatureTransform, transformExpressions, type FeatureTransform } from '../../features/tabular';
import type { ModelSignature } from '../../mlflow/mlmodel';
import type { Attribution, RecordPredictor } from '../types';

export const TABULAR_FLAVOR = 'ts_tabular_onnx';
export const TABULAR_FILES = {
  onnx: 'model.onnx',
  transform: 'feature_transform.json',
  labelMap: 'label_map.json',
} as const;

export interface TabularModelMeta {
  transform: FeatureTransform;
  labelMap: LabelMap;
  positiveLabel: string;
  /** Which learner the ONNX graph came from (logistic_regression, random_forest, lightgbm). */
  estimator: string;
  idColumn?: string;
}

/** Writes a model folder: the ONNX graph, the fitted transform and the label map. */
export function saveTabularModel(dir: string, onnxFile: string, meta: TabularModelMeta): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(onnxFile, path.join(dir, TABULAR_FILES.onnx));
  fs.writeFileSync(
    path.join(dir, TABULAR_FILES.transform),
    `${JSON.stringify(
      { ...meta.transform, positiveLabel: meta.positiveLabel, estimator: meta.estimator, idColumn: meta.idColumn },
      null,
      1,
    )}\n`,
  );
  fs.writeFileSync(path.join(dir, TABULAR_FILES.labelMap), `${JSON.stringify(meta.labelMap, null, 2)}\n`);
}

/** The MLmodel flavor entry of a tabular model folder. */
export function tabularFlavor(estimator: string): Record<string, unknown> {
  return {
    loader_module: 'src/kinds/tabular/model',
    loader: 'loadTabularPredictor',
    model_file: TABULAR_FILES.onnx,
    feature_transform: TABULAR_FILES.transform,
    label_map: TABULAR_FILES.labelMap,
    estimator,
    runtime: `onnxruntime-node ${(ort.env.versions as { node?: string }).node ?? ''}`.trim(),
  };
}

/**
 * Signature: the input columns with their MLflow types (integer columns as long: MLflow's schema
 * enforcement refuses int64 data for a double column), the label and one probability per class out.
 */
export function tabularSignature(transform: FeatureTransform, labels: readonly string[]): ModelSignature {
  return {
    inputs: transform.columns.map((c) => ({
      name: c.name,
      type: c.type === 'number' ? (c.integer ? 'long' : 'double') : 'string',
    })),
    outputs: [{ name: 'label', type: 'string' }, ...labels.map((l) => ({ name: `p(${l})`, type: 'double' as const }))],
  };
}

export async function loadTabularPredictor(dir: string): Promise<RecordPredictor> {
  const raw = JSON.parse(fs.readFileSync(path.join(dir, TABULAR_FILES.transform), 'utf8')) as FeatureTransform & {
    positiveLabel: string;
    estimator: string;
    idColumn?: string;
  };
  const labelMap = JSON.parse(fs.readFileSync(path.join(dir, TABULAR_FILES.labelMap), 'utf8')) as LabelMap;
  // Derived features: fail now, at load, on a malformed expression (or, in a transform saved before
  // expressions were, a name this build does not know).
  transformExpressions(raw);
  const pos = labelMap.label2id[raw.positiveLabel];
  if (pos === undefined || labelMap.labels.length !== 2)
    throw new Error(`${dir}: a tabular model needs two labels including "${raw.positiveLabel}"`);
  const session = await createSession(path.join(dir, TABULAR_FILES.onnx), { threads: 1, quiet: true });
  const width = raw.outputs.length;
  // Folders saved before calibration existed have no scope.json: T = 1 leaves their probabilities as they were.
  const temperature = readScope(dir)?.temperature ?? 1;
  const schema = recordSchema(raw.columns);

  // The learner's column 1 is the positive class (trained on y = 1 for it); reorder into label-map order.
  const predictProba = async (records: readonly FeatureRecord[]): Promise<Float32Array> => {
    const out = new Float32Array(records.length * 2);
    if (records.length === 0) return out;
    const x = applyFeatureTransform(raw, records);
    const res = await session.run({ features: new ort.Tensor('float32', x, [records.length, width]) });
    const probs = res.probabilities!.data as Float32Array;
    for (let i = 0; i < records.length; i++) {
      out[2 * i + pos] = probs[2 * i + 1]!;
      out[2 * i + (1 - pos)] = probs[2 * i]!;
    }
    return temperature === 1 ? out : Float32Array.from(softmaxWithTemperature(logitsOfProbs(out), 2, temperature));
  };

  return {
    input: 'record',
    kind: 'tabular-onnx',
    flavor: TABULAR_FLAVOR,
    labels: labelMap.labels,
    columns: raw.columns,
    positiveLabel: raw.positiveLabel,
    ...(raw.idColumn ? { idColumn: raw.idColumn } : {}),
    parseRecord(value) {
      const r = schema.safeParse(value);
      return r.success
        ? { record: r.data }
        : { issues: r.error.issues.map((i) => ({ path: i.path.join('.') || '(record)', message: i.message })) };
    },
    predictProba,
    // Baseline substitution: each column in turn takes its typical training value (median or most
    // frequent) and the drop in p(positive) is that column's effect. Model-agnostic and exact for what it
    // measures; it ignores interactions between columns (SHAP would share those out).
    async explain(records) {
      const cols = raw.columns.map((c) => c.name);
      const variants = records.flatMap((r) => [r, ...cols.map((c) => ({ ...r, [c]: raw.reference[c]! }))]);
      const p = await predictProba(variants);
      const step = cols.length + 1;
      return records.map((r, i): Attribution[] => {
        const base = p[2 * i * step + pos]!;
        return cols
          .map((c, j) => ({
            column: c,
            value: r[c]!,
            reference: raw.reference[c]!,
            effect: base - p[2 * (i * step + j + 1) + pos]!,
          }))
          .filter((a) => a.value !== a.reference)
          .sort((a, b) => Math.abs(b.effect) - Math.abs(a.effect));
      });
    },
    release: () => session.release(),
  };
}
