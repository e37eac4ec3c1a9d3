import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { canonicalNames, loadEncoderCheckpoint } from '../../src/engine/checkpoint';

describe('the real pretrained checkpoint', () => {
  it('loads all-MiniLM-L6-v2 (BERT key names) into the canonical layout with the expected shapes', () => {
    const cfg = loadConfig();
    const { config, weights } = loadEncoderCheckpoint(path.join(cfg.paths.pretrained, 'all-MiniLM-L6-v2'));
    expect(config).toMatchObject({
      family: 'bert',
      vocabSize: 30522,
      hidden: 384,
      layers: 6,
      heads: 12,
      intermediate: 1536,
      maxPositions: 512,
      typeVocab: 2,
      layerNormEps: 1e-12,
    });
    for (const name of canonicalNames(config)) expect(weights.has(name), name).toBe(true);
    expect(weights.get('embeddings.word')!.shape).toEqual([30522, 384]);
    expect(weights.get('layers.5.ffn_out.weight')!.shape).toEqual([384, 1536]);
    const total = [...weights.values()].reduce((s, t) => s + t.data.length, 0);
    expect(total).toBeGreaterThan(22_000_000); // about 22.7M parameters
    const ln = weights.get('layers.0.ln1.weight')!.data;
    expect(ln.every(Number.isFinite)).toBe(true);
  });
});
