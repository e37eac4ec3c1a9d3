/**
 * A fine-tuned classifier as a Hugging Face-compatible folder: config.json (with id2label and
 * label2id), model.safetensors under *ForSequenceClassification key names, and the tokenizer files.
 * With `pooling: 'pooler'` it is a drop-in BertForSequenceClassification checkpoint; other poolings
 * are recorded in config.json under `convo_mlops` (transformers ignores unknown keys).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LabelMap } from '../data/labels';
import { classifierParamNames, paramShape, POOLINGS, type Pooling } from './bert-graph';
import { hfClassifierKey, readEncoderConfig, type EncoderConfig } from './checkpoint';
import { serializeSafetensors, type Tensor } from './safetensors';
import type { Params } from './train-step';

export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt'];

export interface ClassifierMeta {
  pooling: Pooling;
  maxLength: number;
  labelMap: LabelMap;
}

export function saveHfClassifier(
  dir: string,
  baseCheckpointDir: string,
  config: EncoderConfig,
  params: Params,
  meta: ClassifierMeta,
): void {
  fs.mkdirSync(dir, { recursive: true });
  const base = JSON.parse(fs.readFileSync(path.join(baseCheckpointDir, 'config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const numLabels = meta.labelMap.labels.length;
  const hfConfig = {
    ...base,
    architectures: [config.family === 'bert' ? 'BertForSequenceClassification' : 'DistilBertForSequenceClassification'],
    id2label: meta.labelMap.id2label,
    label2id: meta.labelMap.label2id,
    problem_type: 'single_label_classification',
    convo_mlops: { pooling: meta.pooling, max_length: meta.maxLength },
  };
  fs.writeFileSync(path.join(dir, 'config.json'), `${JSON.stringify(hfConfig, null, 2)}\n`);
  const tensors = new Map<string, Tensor>();
  for (const name of classifierParamNames(config, meta.pooling))
    tensors.set(hfClassifierKey(config, name), { shape: paramShape(config, name, numLabels), data: params.get(name)! });
  fs.writeFileSync(path.join(dir, 'model.safetensors'), serializeSafetensors(tensors, { format: 'pt' }));
  for (const f of TOKENIZER_FILES)
    if (fs.existsSync(path.join(baseCheckpointDir, f)))
      fs.copyFileSync(path.join(baseCheckpointDir, f), path.join(dir, f));
}

/** Encoder config and head metadata from a classifier folder's config.json (weights not read). */
export function readClassifierMeta(dir: string): { config: EncoderConfig; meta: ClassifierMeta } {
  const raw = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as {
    id2label?: Record<string, string>;
    convo_mlops?: { pooling?: string; max_length?: number };
  };
  const pooling = (raw.convo_mlops?.pooling ?? 'pooler') as Pooling;
  if (!POOLINGS.includes(pooling)) throw new Error(`${dir}/config.json: unknown pooling "${pooling}"`);
  const labels = Object.entries(raw.id2label ?? {})
    .sort((a, b) => Number(a[0]) - Number(b[0]))
    .map(([, l]) => l);
  const labelMap: LabelMap = {
    labels,
    label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
    id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
  };
  return { config: readEncoderConfig(dir), meta: { pooling, maxLength: raw.convo_mlops?.max_length ?? 128, labelMap } };
}
