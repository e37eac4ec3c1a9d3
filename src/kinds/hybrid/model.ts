/**
 * The hybrid kind (flavor ts_hybrid_frozen): one head over the conversation and the account together.
 * The input row is a record of the tabular task's feature columns plus a text column; the frozen
 * pretrained encoder's mean-pooled, L2-normalised embedding of the text is concatenated with the
 * promoted feature transform's output, and a logistic regression is fitted on the joint vector.
 * No public dataset joins real transcripts to account data, so this kind is a capability (tested on a
 * synthetic join), not a claim of accuracy. A folder with a scope.json (score `none`, written when
 * training was given validation rows) serves temperature-scaled probabilities.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LabelMap } from '../../data/labels';
import { recordSchema, type FeatureRecord } from '../../data/tabular-tasks';
import { softmaxWithTemperature } from '../../evaluate/calibration';
import { logRegFromJson, predictLogits, type LogRegJson } from '../../estimators/logreg';
import { applyFeatureTransform, transformExpressions, type FeatureTransform } from '../../features/tabular';
import { TextTokenizer } from '../../features/tokenize';
import type { Attribution, RecordPredictor } from '../types';
import { embedTexts, loadEncoderFolder } from '../../engine/encoder-folder';
import { dense } from '../frozen-encoder/model';
import { readScope } from '../scope/rule';

export const HYBRID_FLAVOR = 'ts_hybrid_frozen';

export interface HybridHead {
  maxLength: number;
  /** The record field that holds the conversation. */
  textColumn: string;
  positiveLabel: string;
  logreg: LogRegJson;
}

/** The joint input rows: [embedding | encoded features] per record (pure, given the embeddings). */
export function jointRows(embeddings: readonly Float32Array[], t: FeatureTransform, records: readonly FeatureRecord[]) {
  const w = t.outputs.length;
  const x = applyFeatureTransform(t, records);
  return embeddings.map((e, i) => {
    const v = new Float32Array(e.length + w);
    v.set(e, 0);
    v.set(x.subarray(i * w, (i + 1) * w), e.length);
    return dense(v);
  });
}

export async function loadHybridPredictor(dir: string): Promise<RecordPredictor> {
  const head = JSON.parse(fs.readFileSync(path.join(dir, 'head.json'), 'utf8')) as HybridHead;
  const transform = JSON.parse(fs.readFileSync(path.join(dir, 'feature_transform.json'), 'utf8')) as FeatureTransform;
  const labelMap = JSON.parse(fs.readFileSync(path.join(dir, 'label_map.json'), 'utf8')) as LabelMap;
  transformExpressions(transform); // a malformed or unknown derived feature fails at load
  const tokenizer = await TextTokenizer.fromDir(path.join(dir, 'encoder'));
  const encoder = await loadEncoderFolder(path.join(dir, 'encoder'));
  const logreg = logRegFromJson(head.logreg);
  const schema = recordSchema(transform.columns);
  const pos = labelMap.label2id[head.positiveLabel]!;
  const temperature = readScope(dir)?.temperature ?? 1;
  const predict = async (records: readonly FeatureRecord[]) => {
    const texts = records.map((r) => String(r[head.textColumn] ?? ''));
    const emb = await embedTexts(tokenizer, encoder, texts, { maxLength: head.maxLength, batchSize: 32 });
    const logits = predictLogits(logreg, jointRows(emb, transform, records));
    return Float32Array.from(softmaxWithTemperature(logits, labelMap.labels.length, temperature));
  };
  return {
    input: 'record',
    kind: 'hybrid-frozen-logreg',
    flavor: HYBRID_FLAVOR,
    labels: labelMap.labels,
    columns: transform.columns,
    positiveLabel: head.positiveLabel,
    parseRecord(value) {
      const r = schema.safeParse(value);
      const text = (value as Record<string, unknown> | null)?.[head.textColumn];
      const issues = r.success ? [] : r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
      if (typeof text !== 'string' || text.trim() === '')
        issues.push({ path: head.textColumn, message: typeof text === 'string' ? 'empty text' : 'missing' });
      return issues.length || !r.success ? { issues } : { record: { ...r.data, [head.textColumn]: text as string } };
    },
    predictProba: predict,
    // Account columns as in the tabular kind (typical value substituted); the conversation as one unit
    // (replaced by an empty text).
    async explain(records) {
      const cols = transform.columns.map((c) => c.name);
      const variants = records.flatMap((r) => [
        r,
        ...cols.map((c) => ({ ...r, [c]: transform.reference[c]! })),
        { ...r, [head.textColumn]: '' },
      ]);
      const p = await predict(variants);
      const step = cols.length + 2;
      const k = labelMap.labels.length;
      return records.map((r, i): Attribution[] => {
        const base = p[i * step * k + pos]!;
        const at = (j: number) => p[(i * step + j + 1) * k + pos]!;
        return [
          ...cols
            .map((c, j) => ({ column: c, value: r[c]!, reference: transform.reference[c]!, effect: base - at(j) }))
            .filter((a) => a.value !== a.reference),
          { column: head.textColumn, value: String(r[head.textColumn]), reference: '', effect: base - at(cols.length) },
        ].sort((a, b) => Math.abs(b.effect) - Math.abs(a.effect));
      });
    },
    release: () => encoder.release(),
  };
}
