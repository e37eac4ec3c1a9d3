import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalNames, loadEncoderCheckpoint, readEncoderConfig } from '../../src/engine/checkpoint';
import { parseSafetensors, serializeSafetensors, type Tensor } from '../../src/engine/safetensors';

const t = (shape: number[], fill = (i: number) => i / 10): Tensor => ({
  shape,
  data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => fill(i)),
});

describe('safetensors', () => {
  it('round-trips F32 tensors and metadata, with an 8-byte aligned header', () => {
    const tensors = new Map([
      ['b.weight', t([2, 3])],
      ['a.bias', t([3], (i) => -i)],
    ]);
    const buf = serializeSafetensors(tensors, { format: 'pt' });
    expect(Number(buf.readBigUInt64LE(0)) % 8).toBe(0);
    const back = parseSafetensors(buf);
    expect(back.metadata).toEqual({ format: 'pt' });
    expect([...back.tensors.keys()].sort()).toEqual(['a.bias', 'b.weight']);
    expect(Array.from(back.tensors.get('b.weight')!.data)).toEqual(Array.from(tensors.get('b.weight')!.data));
    expect(back.tensors.get('a.bias')!.shape).toEqual([3]);
  });

  it('decodes F16 and BF16 to F32', () => {
    const header = Buffer.from(
      JSON.stringify({
        h: { dtype: 'F16', shape: [3], data_offsets: [0, 6] },
        b: { dtype: 'BF16', shape: [2], data_offsets: [6, 10] },
      }),
    );
    const data = Buffer.alloc(10);
    [0x3c00, 0xc000, 0x3555].forEach((v, i) => data.writeUInt16LE(v, i * 2));
    [0x3f80, 0x4049].forEach((v, i) => data.writeUInt16LE(v, 6 + i * 2));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const { tensors } = parseSafetensors(Buffer.concat([len, header, data]));
    expect(Array.from(tensors.get('h')!.data)).toEqual([1, -2, expect.closeTo(0.33325, 5)]);
    expect(Array.from(tensors.get('b')!.data)).toEqual([1, 3.140625]);
  });

  it('rejects truncated files and unsupported dtypes with a clear message', () => {
    expect(() => parseSafetensors(Buffer.alloc(4))).toThrow(/shorter than its 8-byte header/);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(1000n);
    expect(() => parseSafetensors(Buffer.concat([len, Buffer.from('{}')]))).toThrow(/exceeds the file/);
    const h = Buffer.from(
      JSON.stringify({
        x: { dtype: 'F64', shape: [1], data_offsets: [0, 8] },
        ids: { dtype: 'I64', shape: [1], data_offsets: [8, 16] },
      }),
    );
    const l2 = Buffer.alloc(8);
    l2.writeBigUInt64LE(BigInt(h.length));
    expect(() => parseSafetensors(Buffer.concat([l2, h, Buffer.alloc(16)]))).toThrow(/dtype F64 is not supported/);
    const h3 = Buffer.from(JSON.stringify({ ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }));
    const l3 = Buffer.alloc(8);
    l3.writeBigUInt64LE(BigInt(h3.length));
    expect(parseSafetensors(Buffer.concat([l3, h3, Buffer.alloc(8)])).skipped).toEqual(['ids']);
  });
});

function writeCheckpoint(dir: string, config: object, tensors: Map<string, Tensor>) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  fs.writeFileSync(path.join(dir, 'model.safetensors'), serializeSafetensors(tensors));
}

describe('BERT-family checkpoints', () => {
  it('maps DistilBERT key names onto the canonical layout', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'distil-'));
    const h = 4;
    const cfg = {
      model_type: 'distilbert',
      vocab_size: 10,
      dim: h,
      n_layers: 1,
      n_heads: 2,
      hidden_dim: 8,
      max_position_embeddings: 16,
      activation: 'gelu',
    };
    const tensors = new Map<string, Tensor>([
      ['distilbert.embeddings.word_embeddings.weight', t([10, h])],
      ['distilbert.embeddings.position_embeddings.weight', t([16, h])],
      ['distilbert.embeddings.LayerNorm.weight', t([h])],
      ['distilbert.embeddings.LayerNorm.bias', t([h])],
    ]);
    const parts: Record<string, number[]> = {
      'attention.q_lin': [h, h],
      'attention.k_lin': [h, h],
      'attention.v_lin': [h, h],
      'attention.out_lin': [h, h],
      sa_layer_norm: [h],
      'ffn.lin1': [8, h],
      'ffn.lin2': [h, 8],
      output_layer_norm: [h],
    };
    for (const [p, shape] of Object.entries(parts)) {
      tensors.set(`distilbert.transformer.layer.0.${p}.weight`, t(shape));
      tensors.set(`distilbert.transformer.layer.0.${p}.bias`, t([shape[0]!]));
    }
    writeCheckpoint(dir, cfg, tensors);
    const { config, weights } = loadEncoderCheckpoint(dir);
    expect(config).toMatchObject({
      family: 'distilbert',
      hidden: 4,
      layers: 1,
      heads: 2,
      intermediate: 8,
      typeVocab: 0,
    });
    expect([...weights.keys()].sort()).toEqual(canonicalNames(config).sort());
    expect(weights.get('layers.0.ffn_in.weight')!.shape).toEqual([8, 4]);
  });

  it('names every missing tensor, and refuses non-encoder model types', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'broken-'));
    writeCheckpoint(
      dir,
      {
        model_type: 'bert',
        vocab_size: 10,
        hidden_size: 4,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        intermediate_size: 8,
        max_position_embeddings: 16,
      },
      new Map([['embeddings.word_embeddings.weight', t([10, 4])]]),
    );
    expect(() => loadEncoderCheckpoint(dir)).toThrow(/lacks 20 tensor\(s\):[\s\S]*embeddings\.position/);
    fs.writeFileSync(
      path.join(dir, 'config.json'),
      JSON.stringify({ model_type: 'gpt2', vocab_size: 1, max_position_embeddings: 1 }),
    );
    expect(() => readEncoderConfig(dir)).toThrow(/not a BERT-family encoder/);
  });
});
