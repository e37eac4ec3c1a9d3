import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { classifierParamNames } from '../../src/engine/bert-graph';
import { TrainStep, type StepResult } from '../../src/engine/train-step';
import { initialParams, targets, trainableParams } from '../../src/train/finetune';
import { DEFAULT_FINETUNE } from '../../src/train/recipe';

// Reference: one training step of the real checkpoint in Python transformers + PyTorch autograd
// (scripts/fixtures/make_training_fixture.py): loss, logits and every parameter's gradient.
const enc = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/encoder-parity.json'), 'utf8')) as {
  ids: number[][];
  mask: number[][];
};
const ref = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/training-parity.json'), 'utf8')) as {
  labels: number[];
  num_labels: number;
  loss: number;
  logits: number[][];
  grad_norms: Record<string, number>;
  grad_first: Record<string, number[]>;
};
const K = ref.num_labels;
let step: TrainStep;
let out: StepResult;

beforeAll(async () => {
  const { config, params } = initialParams(path.join(loadConfig().paths.pretrained, 'all-MiniLM-L6-v2'), 'mean', K, 1);
  // The reference head: a closed formula both sides compute.
  const H = config.hidden;
  params.set(
    'classifier.weight',
    Float32Array.from({ length: K * H }, (_, i) => 0.05 * Math.sin(0.37 * i + 1)),
  );
  params.set(
    'classifier.bias',
    Float32Array.from({ length: K }, (_, k) => 0.01 * k),
  );
  step = await TrainStep.create({
    config,
    pooling: 'mean',
    numLabels: K,
    trainable: trainableParams(config, DEFAULT_FINETUNE),
    dropout: { hidden: 0, attention: 0, classifier: 0 },
  });
  const B = enc.ids.length;
  const S = enc.ids[0]!.length;
  out = await step.run(
    params,
    {
      inputIds: Int32Array.from(enc.ids.flat()),
      attentionMask: Int32Array.from(enc.mask.flat()),
      tokenTypeIds: new Int32Array(B * S),
      batchSize: B,
      seqLen: S,
    },
    targets(ref.labels, K),
    0,
  );
});
afterAll(() => step.release());

const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, x) => s + x * x, 0));

describe('training step on the real checkpoint vs transformers + PyTorch autograd', () => {
  it('loss and logits match', () => {
    expect(Math.abs(out.loss - ref.loss)).toBeLessThan(1e-5);
    expect(Math.max(...ref.logits.flat().map((v, i) => Math.abs(v - out.logits[i]!)))).toBeLessThan(1e-4);
  });

  it('every parameter gradient has the reference norm (1e-3 relative), embedding tables included', () => {
    const names = classifierParamNames(step.config, 'mean');
    expect(Object.keys(ref.grad_norms).sort()).toEqual([...names].sort());
    const off: string[] = [];
    for (const name of names) {
      const g = out.grads.get(name) ?? out.rowGrads.get(name)?.grad;
      expect(g, name).toBeDefined();
      const want = ref.grad_norms[name]!;
      if (Math.abs(norm(g!) - want) > 1e-3 * want + 1e-7) off.push(`${name}: ${norm(g!)} vs ${want}`);
    }
    expect(off).toEqual([]);
    expect(out.gradNorm).toBeCloseTo(norm(Object.values(ref.grad_norms).map((v) => v)), 4);
  });

  it('gradient values match element by element where sampled', () => {
    for (const [name, want] of Object.entries(ref.grad_first)) {
      const g = out.grads.get(name)!;
      const scale = Math.max(...want.map(Math.abs));
      expect(Math.max(...want.map((v, i) => Math.abs(v - g[i]!))), name).toBeLessThan(1e-3 * scale + 1e-7);
    }
  });
});
