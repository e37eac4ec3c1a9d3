/**
 * Hugging Face BERT-family checkpoints (BERT, MiniLM, DistilBERT): config.json read into one typed
 * object and weights mapped from the checkpoint's key names to one canonical layout, so the encoder
 * code does not care which family a checkpoint comes from.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { readSafetensors, type Tensor } from './safetensors';

const ConfigSchema = z
  .object({
    model_type: z.string(),
    vocab_size: z.number().int(),
    hidden_size: z.number().int().optional(),
    dim: z.number().int().optional(), // DistilBERT
    num_hidden_layers: z.number().int().optional(),
    n_layers: z.number().int().optional(),
    num_attention_heads: z.number().int().optional(),
    n_heads: z.number().int().optional(),
    intermediate_size: z.number().int().optional(),
    hidden_dim: z.number().int().optional(),
    max_position_embeddings: z.number().int(),
    type_vocab_size: z.number().int().optional(),
    layer_norm_eps: z.number().optional(),
    hidden_act: z.string().optional(),
    activation: z.string().optional(),
    hidden_dropout_prob: z.number().optional(),
    dropout: z.number().optional(),
    attention_probs_dropout_prob: z.number().optional(),
    attention_dropout: z.number().optional(),
    id2label: z.record(z.string(), z.string()).optional(),
  })
  .passthrough();

export interface EncoderConfig {
  family: 'bert' | 'distilbert';
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  maxPositions: number;
  typeVocab: number;
  layerNormEps: number;
  activation: 'gelu';
  hiddenDropout: number;
  attentionDropout: number;
  id2label?: Record<string, string>;
}

export function readEncoderConfig(dir: string): EncoderConfig {
  const raw = ConfigSchema.parse(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')));
  const family = raw.model_type === 'distilbert' ? 'distilbert' : raw.model_type === 'bert' ? 'bert' : undefined;
  if (!family)
    throw new Error(`${dir}: model_type "${raw.model_type}" is not a BERT-family encoder (bert, distilbert)`);
  const act = raw.hidden_act ?? raw.activation ?? 'gelu';
  if (act !== 'gelu') throw new Error(`${dir}: activation "${act}" is not supported (gelu)`);
  const req = (v: number | undefined, name: string) => {
    if (v === undefined) throw new Error(`${dir}/config.json lacks ${name}`);
    return v;
  };
  return {
    family,
    vocabSize: raw.vocab_size,
    hidden: req(raw.hidden_size ?? raw.dim, 'hidden_size'),
    layers: req(raw.num_hidden_layers ?? raw.n_layers, 'num_hidden_layers'),
    heads: req(raw.num_attention_heads ?? raw.n_heads, 'num_attention_heads'),
    intermediate: req(raw.intermediate_size ?? raw.hidden_dim, 'intermediate_size'),
    maxPositions: raw.max_position_embeddings,
    typeVocab: family === 'distilbert' ? 0 : (raw.type_vocab_size ?? 2),
    layerNormEps: raw.layer_norm_eps ?? 1e-12,
    activation: 'gelu',
    hiddenDropout: raw.hidden_dropout_prob ?? raw.dropout ?? 0.1,
    attentionDropout: raw.attention_probs_dropout_prob ?? raw.attention_dropout ?? 0.1,
    id2label: raw.id2label,
  };
}

/** Canonical names: embeddings.*, layers.<i>.{q,k,v,o,ln1,ffn_in,ffn_out,ln2}.{weight,bias}, pooler.* */
export type EncoderWeights = Map<string, Tensor>;

function bertKey(canon: string): string[] {
  const m = /^layers\.(\d+)\.(\w+)\.(weight|bias)$/.exec(canon);
  if (m) {
    const [, i, part, wb] = m;
    const p = `layer.${i}`;
    const map: Record<string, string> = {
      q: 'attention.self.query',
      k: 'attention.self.key',
      v: 'attention.self.value',
      o: 'attention.output.dense',
      ln1: 'attention.output.LayerNorm',
      ffn_in: 'intermediate.dense',
      ffn_out: 'output.dense',
      ln2: 'output.LayerNorm',
    };
    const lnAlt = wb === 'weight' ? 'gamma' : 'beta';
    return [
      `encoder.${p}.${map[part!]}.${wb}`,
      `bert.encoder.${p}.${map[part!]}.${wb}`,
      ...(part!.startsWith('ln') ? [`bert.encoder.${p}.${map[part!]}.${lnAlt}`] : []),
    ];
  }
  const e: Record<string, string> = {
    'embeddings.word': 'embeddings.word_embeddings.weight',
    'embeddings.position': 'embeddings.position_embeddings.weight',
    'embeddings.type': 'embeddings.token_type_embeddings.weight',
    'embeddings.ln.weight': 'embeddings.LayerNorm.weight',
    'embeddings.ln.bias': 'embeddings.LayerNorm.bias',
    'pooler.weight': 'pooler.dense.weight',
    'pooler.bias': 'pooler.dense.bias',
  };
  const k = e[canon];
  return k ? [k, `bert.${k}`] : [];
}

function distilbertKey(canon: string): string[] {
  const m = /^layers\.(\d+)\.(\w+)\.(weight|bias)$/.exec(canon);
  if (m) {
    const [, i, part, wb] = m;
    const map: Record<string, string> = {
      q: 'attention.q_lin',
      k: 'attention.k_lin',
      v: 'attention.v_lin',
      o: 'attention.out_lin',
      ln1: 'sa_layer_norm',
      ffn_in: 'ffn.lin1',
      ffn_out: 'ffn.lin2',
      ln2: 'output_layer_norm',
    };
    return [`transformer.layer.${i}.${map[part!]}.${wb}`, `distilbert.transformer.layer.${i}.${map[part!]}.${wb}`];
  }
  const e: Record<string, string> = {
    'embeddings.word': 'embeddings.word_embeddings.weight',
    'embeddings.position': 'embeddings.position_embeddings.weight',
    'embeddings.ln.weight': 'embeddings.LayerNorm.weight',
    'embeddings.ln.bias': 'embeddings.LayerNorm.bias',
  };
  const k = e[canon];
  return k ? [k, `distilbert.${k}`] : [];
}

/**
 * The Hugging Face key of a canonical parameter in a *ForSequenceClassification checkpoint
 * (encoder under `bert.` / `distilbert.`, head as `classifier.*`), for saving fine-tuned models.
 */
export function hfClassifierKey(cfg: EncoderConfig, canon: string): string {
  if (canon.startsWith('classifier.')) return canon;
  const prefix = cfg.family === 'bert' ? 'bert.' : 'distilbert.';
  const key = (cfg.family === 'bert' ? bertKey : distilbertKey)(canon)[0];
  if (!key) throw new Error(`${canon} has no ${cfg.family} checkpoint key`);
  return prefix + key;
}

export function canonicalNames(cfg: EncoderConfig): string[] {
  const names = [
    'embeddings.word',
    'embeddings.position',
    ...(cfg.family === 'bert' ? ['embeddings.type'] : []),
    'embeddings.ln.weight',
    'embeddings.ln.bias',
  ];
  for (let i = 0; i < cfg.layers; i++)
    for (const p of ['q', 'k', 'v', 'o', 'ln1', 'ffn_in', 'ffn_out', 'ln2'])
      names.push(`layers.${i}.${p}.weight`, `layers.${i}.${p}.bias`);
  return names;
}

/** Loads config and weights; fails naming every missing tensor and any shape that disagrees with the config. */
export function loadEncoderCheckpoint(dir: string): { config: EncoderConfig; weights: EncoderWeights } {
  const config = readEncoderConfig(dir);
  const { tensors } = readSafetensors(path.join(dir, 'model.safetensors'));
  const keyOf = config.family === 'bert' ? bertKey : distilbertKey;
  const weights: EncoderWeights = new Map();
  const missing: string[] = [];
  for (const canon of canonicalNames(config)) {
    const found = keyOf(canon).find((k) => tensors.has(k));
    if (found) weights.set(canon, tensors.get(found)!);
    else missing.push(`${canon} (looked for ${keyOf(canon).join(' | ')})`);
  }
  for (const canon of ['pooler.weight', 'pooler.bias']) {
    const found = keyOf(canon).find((k) => tensors.has(k));
    if (found) weights.set(canon, tensors.get(found)!);
  }
  for (const canon of ['classifier.weight', 'classifier.bias'])
    if (tensors.has(canon)) weights.set(canon, tensors.get(canon)!);
  if (missing.length)
    throw new Error(
      `${dir}/model.safetensors lacks ${missing.length} tensor(s):\n  ${missing.slice(0, 10).join('\n  ')}`,
    );
  const h = config.hidden;
  const expect: Record<string, number[]> = {
    'embeddings.word': [config.vocabSize, h],
    'embeddings.position': [config.maxPositions, h],
    'layers.0.q.weight': [h, h],
    'layers.0.ffn_in.weight': [config.intermediate, h],
    'layers.0.ffn_out.weight': [h, config.intermediate],
  };
  for (const [name, shape] of Object.entries(expect)) {
    const got = weights.get(name)!.shape;
    if (got.join('x') !== shape.join('x'))
      throw new Error(`${name}: shape [${got}] does not match config.json ([${shape}])`);
  }
  return { config, weights };
}
