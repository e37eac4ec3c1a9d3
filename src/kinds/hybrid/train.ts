/**
 * Training of the hybrid kind on frozen embeddings: embed every conversation once, fit the promoted
 * feature transform on the account records, and a logistic regression on the joint vector; given
 * validation rows, one temperature fitted on them calibrates the served probabilities (scope.json).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LabelMap } from '../../data/labels';
import { classWeights, encodeLabels } from '../../data/labels';
import type { FeatureRecord, TabularTaskSpec } from '../../data/tabular-tasks';
import { OrtEncoder } from '../../engine/encoder-onnx';
import { DEFAULT_LOGREG, logRegToJson, predictLogits, trainLogReg, type LogRegOptions } from '../../estimators/logreg';
import { fitFeatureTransform, TASK_DERIVED_FEATURES } from '../../features/tabular';
import { TextTokenizer } from '../../features/tokenize';
import { embedTexts, writeEncoderFolder } from '../../engine/encoder-folder';
import { addPythonFlavor } from '../pyfunc';
import { fitScope, removeScope, writeScope } from '../scope/rule';
import { SCOPE_CHOICE } from '../scope/choice';
import type { TabularTrainRequest } from '../types';
import { HYBRID_FLAVOR, jointRows, type HybridHead } from './model';

/** One customer: the conversation and the account record, with the label. */
export interface HybridRow {
  text: string;
  features: FeatureRecord;
  label: string;
}

export interface HybridTrainOptions {
  spec: TabularTaskSpec;
  labelMap: LabelMap;
  /** The pretrained checkpoint (copied into the model folder, so it is served on its own). */
  checkpointDir: string;
  maxLength?: number;
  textColumn?: string;
  logreg?: LogRegOptions;
  /** Rows the head does not train on: the temperature that calibrates its probabilities is fitted on them. */
  validation?: readonly HybridRow[];
}

/**
 * Trains the head and writes a self-contained model folder into `dir` (encoder/, head, transform,
 * labels, the python_function loader); returns the MLmodel flavors of the folder.
 */
export async function trainHybrid(
  train: readonly HybridRow[],
  o: HybridTrainOptions,
  dir: string,
): Promise<Record<string, Record<string, unknown>>> {
  const maxLength = o.maxLength ?? 128;
  const tokenizer = await TextTokenizer.fromDir(o.checkpointDir);
  const encoder = await OrtEncoder.fromCheckpoint(o.checkpointDir);
  const validation = o.validation ?? [];
  let emb: Float32Array[];
  let valEmb: Float32Array[];
  try {
    const embed = (rows: readonly HybridRow[]) =>
      embedTexts(
        tokenizer,
        encoder,
        rows.map((r) => r.text),
        { maxLength, batchSize: 32 },
      );
    emb = await embed(train);
    valEmb = await embed(validation);
  } finally {
    await encoder.release();
  }
  const records = train.map((r) => r.features);
  const transform = fitFeatureTransform(records, o.spec.columns, TASK_DERIVED_FEATURES[o.spec.name] ?? []);
  const ys = encodeLabels(
    train.map((r) => r.label),
    o.labelMap,
  );
  const xs = jointRows(emb, transform, records);
  const logreg = trainLogReg(xs, ys, emb[0]!.length + transform.outputs.length, o.labelMap.labels.length, {
    ...(o.logreg ?? { ...DEFAULT_LOGREG, epochs: 60, learningRate: 0.02, l2: 0 }),
    classWeights: classWeights(ys, o.labelMap.labels.length),
  });
  // Without validation rows the folder serves uncalibrated probabilities: no scope.json from an earlier fit.
  removeScope(dir);
  if (validation.length > 0) {
    const valRecords = validation.map((r) => r.features);
    const logits = predictLogits(logreg, jointRows(valEmb, transform, valRecords));
    const y = encodeLabels(
      validation.map((r) => r.label),
      o.labelMap,
    );
    fs.mkdirSync(dir, { recursive: true });
    writeScope(
      dir,
      fitScope({
        labels: o.labelMap.labels,
        validation: { raw: { logits }, y },
        score: 'none',
        recall: SCOPE_CHOICE.recall,
        fallbackLabel: SCOPE_CHOICE.fallbackLabel,
      }),
    );
  }
  writeEncoderFolder(o.checkpointDir, path.join(dir, 'encoder'));
  const head: HybridHead = {
    maxLength,
    textColumn: o.textColumn ?? 'text',
    positiveLabel: o.spec.positiveLabel,
    logreg: logRegToJson(logreg),
  };
  fs.writeFileSync(path.join(dir, 'head.json'), JSON.stringify(head));
  fs.writeFileSync(path.join(dir, 'feature_transform.json'), `${JSON.stringify(transform, null, 1)}\n`);
  fs.writeFileSync(path.join(dir, 'label_map.json'), `${JSON.stringify(o.labelMap, null, 2)}\n`);
  return {
    [HYBRID_FLAVOR]: { loader_module: 'src/kinds/hybrid/model', loader: 'loadHybridPredictor' },
    python_function: addPythonFlavor(dir, {
      kind: 'hybrid-frozen-logreg',
      encoder: 'encoder',
      onnx: 'encoder/model.onnx',
      head: 'head.json',
      transform: 'feature_transform.json',
      label_map: 'label_map.json',
    }),
  };
}

/**
 * Retraining needs transcripts joined to account records, which no dataset of this project has (the
 * feature table holds accounts only): refuse with that reason rather than train on half the input.
 */
export function trainFromParams(_req: TabularTrainRequest): Promise<never> {
  return Promise.reject(
    new Error(
      'a hybrid model retrains on conversations joined to account records; the feature table has accounts only. ' +
        'Train it with trainHybrid on your joined data.',
    ),
  );
}
