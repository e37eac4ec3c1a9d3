import { afterAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/data/split';
import type { EncoderConfig } from '../../src/engine/checkpoint';
import { classifierParamNames, paramShape, type Pooling } from '../../src/engine/bert-graph';
import { TrainStep, type Params } from '../../src/engine/train-step';
import type { EncodedBatch } from '../../src/features/tokenize';

// A tiny random BERT: every gradient the emitted backward graph returns is checked against central
// finite differences of the loss the forward graph computes (dropout masks fixed by the noise seed).
const cfg: EncoderConfig = {
  family: 'bert',
  vocabSize: 23,
  hidden: 8,
  layers: 2,
  heads: 2,
  intermediate: 16,
  maxPositions: 8,
  typeVocab: 2,
  layerNormEps: 1e-12,
  activation: 'gelu',
  hiddenDropout: 0.1,
  attentionDropout: 0.1,
};
const K = 3;

function randomParams(pooling: Pooling, seed: number): Params {
  const rnd = seededRandom(seed);
  const normal = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
  const p: Params = new Map();
  for (const name of classifierParamNames(cfg, pooling)) {
    const n = paramShape(cfg, name, K).reduce((a, b) => a * b, 1);
    const isGamma = /ln\d?\.weight$|ln\.weight$/.test(name);
    p.set(
      name,
      Float32Array.from({ length: n }, () => (isGamma ? 1 + 0.2 * normal() : 0.5 * normal())),
    );
  }
  return p;
}

// Row 2 is padded: its last two positions must not influence anything.
const batch: EncodedBatch = {
  inputIds: Int32Array.from([2, 5, 9, 13, 3, 2, 7, 7, 1, 3, 2, 21, 3, 0, 0]),
  attentionMask: Int32Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]),
  tokenTypeIds: Int32Array.from([0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
  batchSize: 3,
  seqLen: 5,
};
// Labels 0, 2, 1 with class weights 1, 2, 0.5, normalised by the batch's total weight.
const target = Float32Array.from([1, 0, 0, 0, 0, 2, 0, 0.5, 0].map((v) => v / 3.5));

const steps: TrainStep[] = [];
afterAll(async () => Promise.all(steps.map((s) => s.release())));

async function check(pooling: Pooling, dropout: number) {
  const all = classifierParamNames(cfg, pooling);
  const step = await TrainStep.create(
    {
      config: cfg,
      pooling,
      numLabels: K,
      trainable: new Set(all),
      dropout: { hidden: dropout, attention: dropout, classifier: dropout },
    },
    { threads: 1 },
  );
  steps.push(step);
  const params = randomParams(pooling, 11);
  const base = await step.run(params, batch, target, 99);
  expect(Number.isFinite(base.loss)).toBe(true);
  const rnd = seededRandom(5);
  const eps = 1e-3;
  const failures: string[] = [];
  for (const name of all) {
    const w = params.get(name)!;
    const dir = Float32Array.from(w, () => rnd() * 2 - 1);
    const rows = base.rowGrads.get(name);
    const grad = base.grads.get(name);
    expect(grad ?? rows, name).toBeDefined();
    const H = cfg.hidden;
    const analytic = rows
      ? [...rows.rows].reduce(
          (s, row, r) => s + rows.grad.subarray(r * H, (r + 1) * H).reduce((a, g, j) => a + g * dir[row * H + j]!, 0),
          0,
        )
      : grad!.reduce((s, g, i) => s + g * dir[i]!, 0);
    const orig = w.slice();
    w.set(orig.map((v, i) => v + eps * dir[i]!));
    const plus = (await step.run(params, batch, target, 99)).loss;
    w.set(orig.map((v, i) => v - eps * dir[i]!));
    const minus = (await step.run(params, batch, target, 99)).loss;
    w.set(orig);
    const numeric = (plus - minus) / (2 * eps);
    if (Math.abs(numeric - analytic) > 2e-3 + 3e-2 * Math.abs(analytic))
      failures.push(`${name}: analytic ${analytic.toExponential(4)} vs numeric ${numeric.toExponential(4)}`);
  }
  expect(failures).toEqual([]);
  // The reported norm is that of every gradient together.
  let sq = 0;
  for (const g of [...base.grads.values(), ...[...base.rowGrads.values()].map((r) => r.grad)])
    for (const x of g) sq += x * x;
  expect(base.gradNorm).toBeCloseTo(Math.sqrt(sq), 4);
}

describe('training graph gradients (finite differences, tiny random BERT)', () => {
  it('mean pooling with dropout: every parameter, embedding tables included', async () => {
    await check('mean', 0.1);
  });
  it('[CLS] pooling without dropout', async () => {
    await check('cls', 0);
  });
  it('BERT pooler (dense + tanh on [CLS]) with dropout', async () => {
    await check('pooler', 0.2);
  });

  it('padding positions do not change the loss; the noise seed changes the dropout masks', async () => {
    const all = classifierParamNames(cfg, 'mean');
    const step = await TrainStep.create(
      {
        config: cfg,
        pooling: 'mean',
        numLabels: K,
        trainable: new Set(all),
        dropout: { hidden: 0.1, attention: 0.1, classifier: 0.1 },
      },
      { threads: 1 },
    );
    steps.push(step);
    const params = randomParams('mean', 3);
    const a = await step.run(params, batch, target, 1);
    const padded = { ...batch, inputIds: batch.inputIds.slice() };
    padded.inputIds[13] = 17;
    padded.inputIds[14] = 4;
    expect((await step.run(params, padded, target, 1)).loss).toBeCloseTo(a.loss, 6);
    expect((await step.run(params, batch, target, 1)).loss).toBe(a.loss);
    expect((await step.run(params, batch, target, 2)).loss).not.toBe(a.loss);
  });

  it('freezing the embeddings and the lower layer leaves their gradients out and the others unchanged', async () => {
    const all = classifierParamNames(cfg, 'cls');
    const trainable = new Set(all.filter((n) => !n.startsWith('embeddings.') && !n.startsWith('layers.0.')));
    const drop = { hidden: 0.1, attention: 0.1, classifier: 0.1 };
    const full = await TrainStep.create(
      { config: cfg, pooling: 'cls', numLabels: K, trainable: new Set(all), dropout: drop },
      { threads: 1 },
    );
    const part = await TrainStep.create(
      { config: cfg, pooling: 'cls', numLabels: K, trainable, dropout: drop },
      { threads: 1 },
    );
    steps.push(full, part);
    const params = randomParams('cls', 8);
    const f = await full.run(params, batch, target, 4);
    const p = await part.run(params, batch, target, 4);
    expect(p.loss).toBe(f.loss);
    expect([...p.grads.keys()].sort()).toEqual([...trainable].sort());
    expect(p.rowGrads.size).toBe(0);
    for (const name of trainable) {
      const a = p.grads.get(name)!;
      const b = f.grads.get(name)!;
      expect(
        a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0),
        name,
      ).toBeLessThan(1e-6);
    }
  });
});
