import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AdamW, clipScale, decays, linearSchedule } from '../../src/train/optimizer';
import { targets, trainableParams, epochOrder, lengthGroupedOrder, noiseSeed } from '../../src/train/finetune';
import { seededRandom } from '../../src/data/split';
import type { EncoderConfig } from '../../src/engine/checkpoint';

// Reference: torch.optim.AdamW + get_linear_schedule_with_warmup + clip_grad_norm_ (scripts/fixtures/make_adamw_fixture.py).
const f = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/adamw-torch.json'), 'utf8')) as {
  lr: number;
  weight_decay: number;
  warmup: number;
  steps: number;
  max_grad_norm: number;
  init: Record<string, number[]>;
  grads: Record<string, number[]>[];
  lrs: number[];
  grad_norms: number[];
  final: Record<string, number[]>;
};

describe('AdamW, schedule and clipping against PyTorch', () => {
  it('follows torch.optim.AdamW over six clipped, scheduled steps to 1e-6', () => {
    const params = new Map(Object.entries(f.init).map(([k, v]) => [k, Float32Array.from(v)]));
    const opt = new AdamW({ learningRate: f.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: f.weight_decay });
    for (let t = 0; t < f.steps; t++) {
      const grads = new Map(Object.entries(f.grads[t]!).map(([k, v]) => [k, Float32Array.from(v)]));
      const lr = f.lr * linearSchedule(t, f.warmup, f.steps);
      expect(lr).toBeCloseTo(f.lrs[t]!, 10);
      // The norm is torch's (clip_grad_norm_'s return value); the engine's own norm is checked against
      // torch in tests/integration/training-parity.test.ts. Clipping by it must then match torch's update.
      opt.update(params, grads, new Map(), lr, clipScale(f.grad_norms[t]!, f.max_grad_norm));
    }
    for (const [k, want] of Object.entries(f.final)) {
      const got = params.get(k)!;
      expect(Math.max(...want.map((w, i) => Math.abs(w - got[i]!))), k).toBeLessThan(1e-6);
    }
  });

  it('the SIMD kernel equals a plain float64 AdamW on 1,003 random values (vector body and scalar tail)', () => {
    const rnd = seededRandom(9);
    const n = 1003;
    const w0 = Float32Array.from({ length: n }, () => rnd() * 2 - 1);
    const grads = [0, 1, 2].map(() => Float32Array.from({ length: n }, () => (rnd() - 0.5) * 0.1));
    const cfg = { learningRate: 1e-3, beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.05 };
    const w = w0.slice();
    const opt = new AdamW(cfg);
    grads.forEach((g) =>
      opt.update(
        new Map([['layers.0.ffn_in.weight', w]]),
        new Map([['layers.0.ffn_in.weight', g]]),
        new Map(),
        1e-3,
        0.5,
      ),
    );
    // Reference, straight from the AdamW paper's update with torch's bias corrections.
    const ref = Array.from(w0);
    const m = new Array<number>(n).fill(0);
    const v = new Array<number>(n).fill(0);
    grads.forEach((g, t) => {
      for (let i = 0; i < n; i++) {
        const gi = g[i]! * 0.5;
        m[i] = 0.9 * m[i]! + 0.1 * gi;
        v[i] = 0.98 * v[i]! + 0.02 * gi * gi;
        const mh = m[i]! / (1 - 0.9 ** (t + 1));
        const vh = v[i]! / (1 - 0.98 ** (t + 1));
        ref[i] = ref[i]! * (1 - 1e-3 * 0.05) - (1e-3 * mh) / (Math.sqrt(vh) + 1e-6);
      }
    });
    expect(Math.max(...ref.map((r, i) => Math.abs(r - w[i]!)))).toBeLessThan(2e-6);
  });

  it('a state restored from a checkpoint continues exactly as the original optimizer', () => {
    const rnd = seededRandom(4);
    const names = ['layers.1.q.weight', 'layers.1.q.bias'];
    const mk = () => new Map(names.map((k, i) => [k, Float32Array.from({ length: 37 + i }, () => rnd())]));
    const p1 = mk();
    const p2 = new Map([...p1].map(([k, v]) => [k, v.slice()]));
    const cfg = { learningRate: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
    const a = new AdamW(cfg);
    const g1 = mk();
    a.update(p1, g1, new Map(), 0.01);
    const b0 = new AdamW(cfg);
    b0.update(p2, g1, new Map(), 0.01);
    const saved = b0.state;
    const copy = {
      step: saved.step,
      m: new Map([...saved.m].map(([k, v]) => [k, v.slice()])),
      v: new Map([...saved.v].map(([k, v]) => [k, v.slice()])),
    };
    const b = new AdamW(cfg, copy);
    const g2 = mk();
    a.update(p1, g2, new Map(), 0.005);
    b.update(p2, g2, new Map(), 0.005);
    for (const k of names) expect(Array.from(p2.get(k)!)).toEqual(Array.from(p1.get(k)!));
    expect(b.state.step).toBe(2);
  });

  it('updates only the rows an embedding gradient names (lazy Adam)', () => {
    const w = new Float32Array(12).fill(1);
    const opt = new AdamW({ learningRate: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
    opt.update(
      new Map([['embeddings.word', w]]),
      new Map(),
      new Map([['embeddings.word', { rows: Int32Array.from([2]), grad: Float32Array.from([1, -1, 0.5]) }]]),
      0.1,
    );
    expect(Array.from(w.subarray(0, 6))).toEqual([1, 1, 1, 1, 1, 1]);
    expect(w[6]).toBeLessThan(1);
    expect(w[7]).toBeGreaterThan(1);
    expect(Array.from(w.subarray(9))).toEqual([1, 1, 1]);
  });

  it('decays weights but not biases or LayerNorm gains', () => {
    expect(decays('layers.3.ffn_in.weight')).toBe(true);
    expect(decays('embeddings.word')).toBe(true);
    expect(decays('layers.3.ffn_in.bias')).toBe(false);
    expect(decays('layers.3.ln2.weight')).toBe(false);
    expect(decays('embeddings.ln.weight')).toBe(false);
  });
});

describe('fine-tuning loop helpers', () => {
  it('weighted one-hot targets sum to 1 and follow the class weights', () => {
    const t = targets([0, 2, 2], 3, [1, 1, 3]);
    expect(Array.from(t).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(t[0]).toBeCloseTo(1 / 7, 6);
    expect(t[5]).toBeCloseTo(3 / 7, 6);
    expect(t[1]).toBe(0);
  });

  it('freezing leaves out the embeddings and exactly the lowest N layers', () => {
    const cfg = { family: 'bert', layers: 3, typeVocab: 2 } as EncoderConfig;
    const frozen2 = trainableParams(cfg, { pooling: 'mean', freezeEmbeddings: false, freezeLayers: 2 });
    expect(
      [...frozen2].some((n) => n.startsWith('embeddings.') || n.startsWith('layers.0.') || n.startsWith('layers.1.')),
    ).toBe(false);
    expect(frozen2.has('layers.2.q.weight')).toBe(true);
    expect(frozen2.has('classifier.weight')).toBe(true);
    const embOnly = trainableParams(cfg, { pooling: 'pooler', freezeEmbeddings: true, freezeLayers: 0 });
    expect(embOnly.has('embeddings.word')).toBe(false);
    expect(embOnly.has('layers.0.q.weight')).toBe(true);
    expect(embOnly.has('pooler.weight')).toBe(true);
    expect(
      trainableParams(cfg, { pooling: 'mean', freezeEmbeddings: false, freezeLayers: 0 }).has('embeddings.word'),
    ).toBe(true);
  });

  it('epoch order and dropout seeds depend only on (seed, epoch/step)', () => {
    expect(epochOrder(50, 7, 2)).toEqual(epochOrder(50, 7, 2));
    expect(epochOrder(50, 7, 2)).not.toEqual(epochOrder(50, 7, 3));
    expect([...epochOrder(50, 7, 2)].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(noiseSeed(42, 10)).toBe(noiseSeed(42, 10));
    expect(noiseSeed(42, 10)).not.toBe(noiseSeed(42, 11));
    expect(noiseSeed(42, 10)).not.toBe(noiseSeed(43, 10));
  });
});

describe('length-grouped batches', () => {
  const random = seededRandom(3);
  // Skewed like customer queries: mostly short, a tail of long ones.
  const lengths = Array.from({ length: 2000 }, () => Math.round(6 + 60 * random() ** 4));
  const padded = (order: number[], b: number) => {
    let tokens = 0;
    for (let s = 0; s < order.length; s += b) tokens += b * Math.max(...order.slice(s, s + b).map((i) => lengths[i]!));
    return tokens;
  };

  it('is a deterministic permutation, redrawn every epoch', () => {
    const o = lengthGroupedOrder(lengths, 16, 42, 0);
    expect([...o].sort((a, b) => a - b)).toEqual(Array.from({ length: lengths.length }, (_, i) => i));
    expect(lengthGroupedOrder(lengths, 16, 42, 0)).toEqual(o);
    expect(lengthGroupedOrder(lengths, 16, 42, 1)).not.toEqual(o);
  });

  it('pads far less than random batches, and the batch order is still shuffled', () => {
    const grouped = lengthGroupedOrder(lengths, 16, 42, 0);
    expect(padded(grouped, 16)).toBeLessThan(0.6 * padded(epochOrder(lengths.length, 42, 0), 16));
    const batchMax = Array.from({ length: 125 }, (_, s) =>
      Math.max(...grouped.slice(s * 16, s * 16 + 16).map((i) => lengths[i]!)),
    );
    const sorted = [...batchMax].sort((a, b) => b - a);
    expect(batchMax).not.toEqual(sorted);
  });

  it('keeps a short final batch last: the shortest texts of the last mega-batch', () => {
    const some = lengths.slice(0, 1000);
    const o = lengthGroupedOrder(some, 16, 1, 0);
    expect(o).toHaveLength(1000);
    // 1000 = mega-batches of 800 and 200; the second is 12 full batches + 8, and those 8 come last.
    const lastMega = epochOrder(1000, 1, 0)
      .slice(800)
      .map((i) => some[i]!)
      .sort((a, b) => a - b);
    expect(
      o
        .slice(992)
        .map((i) => some[i]!)
        .sort((a, b) => a - b),
    ).toEqual(lastMega.slice(0, 8));
  });
});
