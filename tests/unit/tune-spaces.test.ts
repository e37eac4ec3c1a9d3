import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/data/split';
import { DEFAULT_LOGREG, logRegEpochs, trainLogReg } from '../../src/estimators/logreg';
import { denseLogRegEpochs } from '../../src/estimators/logreg-dense';
import { FROZEN_LOGREG } from '../../src/kinds/frozen-encoder/recipe';
import { frozenHeadFromParams, frozenParams } from '../../src/kinds/frozen-encoder/train';
import { DEFAULT_BASELINE } from '../../src/kinds/tfidf-logreg/recipe';
import { baselineConfigFromParams, baselineParams } from '../../src/kinds/tfidf-logreg/train';
import { fineTuneConfigFromParams } from '../../src/kinds/bert/train';
import { DEFAULT_FINETUNE } from '../../src/train/recipe';
import { validateSpace, type SearchParam, type TrialParams } from '../../src/tune/space';
import { BERT_TUNING, FROZEN_TUNING, TFIDF_TUNING } from '../../src/tune/spaces';
import { redactStorage, spaceParams } from '../../src/tune/study';
import { budgetTrain } from '../../src/tune/objectives';

const inSpace = (space: readonly SearchParam[], p: TrialParams) =>
  space.every((s) => {
    const v = p[s.name];
    if (s.type === 'categorical') return s.choices.includes(v as never);
    return typeof v === 'number' && v >= s.low && v <= s.high && (s.type !== 'int' || Number.isInteger(v));
  });
const asStrings = (r: Record<string, string | number | boolean>) =>
  Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)]));

describe('search spaces (notebooks/04_tuning.ipynb)', () => {
  it.each([
    ['tfidf', TFIDF_TUNING],
    ['frozen', FROZEN_TUNING],
    ['bert', BERT_TUNING],
  ] as const)('%s: a valid space whose defaults lie inside it', (_name, t) => {
    expect(validateSpace(t.space)).toHaveLength(t.space.length);
    expect(Object.keys(t.defaults).sort()).toEqual(t.space.map((p) => p.name).sort());
    expect(inSpace(t.space, t.defaults)).toBe(true);
  });

  it("the default trial reproduces today's configuration of each kind", () => {
    expect(TFIDF_TUNING.config(TFIDF_TUNING.defaults)).toEqual(DEFAULT_BASELINE);
    expect(FROZEN_TUNING.config(FROZEN_TUNING.defaults)).toEqual(FROZEN_LOGREG);
    // BERT trials differ from the default fine-tune only in batching: length-grouped, to be cheap.
    const { dropout: _d, ...bert } = BERT_TUNING.config(BERT_TUNING.defaults);
    expect(bert).toEqual({ ...DEFAULT_FINETUNE, groupByLength: true });
  });

  it('a tuned trial round-trips through the params its run logs (what make retrain reads back)', () => {
    const tfidf = TFIDF_TUNING.config({
      ...TFIDF_TUNING.defaults,
      ngram_max: 3,
      min_df: 4,
      learning_rate: 0.123,
      l2: 1e-4,
      epochs: 15,
      class_weights: false,
      sublinear_tf: false,
    });
    expect(baselineConfigFromParams(asStrings(baselineParams('t', tfidf)))).toEqual(tfidf);
    const head = FROZEN_TUNING.config({ learning_rate: 0.0371, l2: 1e-5, epochs: 20, batch_size: 128 });
    expect(frozenHeadFromParams(asStrings(frozenParams('t', 'ckpt', 64, head)))).toEqual(head);
    const bert = BERT_TUNING.config({ ...BERT_TUNING.defaults, learning_rate: 5e-5, freeze_layers: 2, batch_size: 32 });
    expect(
      fineTuneConfigFromParams(asStrings({ learning_rate: 5e-5, freeze_layers: 2, batch_size: 32 })).learningRate,
    ).toBe(bert.learningRate);
  });

  it('rejects spaces that cannot be sampled', () => {
    expect(() => validateSpace([{ name: 'lr', type: 'float', low: 0, high: 1, log: true }])).toThrow(/low must be > 0/);
    expect(() => validateSpace([{ name: 'n', type: 'int', low: 5, high: 1 }])).toThrow(/low 5 > high 1/);
    expect(() =>
      validateSpace([
        { name: 'a', type: 'categorical', choices: [1] },
        { name: 'a', type: 'categorical', choices: [2] },
      ]),
    ).toThrow(/appears twice/);
    expect(() => validateSpace([{ name: 'x', type: 'nope', low: 1, high: 2 }])).toThrow();
  });

  it('describes a space as MLflow params and hides storage passwords', () => {
    expect(spaceParams(FROZEN_TUNING.space)).toMatchObject({
      'space.learning_rate': 'float[0.001, 0.1] log',
      'space.epochs': 'int[10, 60] step 10',
      'space.batch_size': '{16, 32, 64, 128}',
    });
    expect(redactStorage('postgresql://mlflow:s3cret@127.0.0.1:5432/optuna')).toBe(
      'postgresql://mlflow:***@127.0.0.1:5432/optuna',
    );
    expect(redactStorage('sqlite:////tmp/optuna.db')).toBe('sqlite:////tmp/optuna.db');
  });
});

describe('logistic regression one epoch at a time', () => {
  const random = seededRandom(7);
  const [n, d, k] = [200, 12, 4];
  const rows = Array.from({ length: n }, () => Float32Array.from({ length: d }, () => random() - 0.5));
  const ys = rows.map((r) => (r[0]! > 0 ? 1 : 0) + (r[1]! > 0 ? 2 : 0));
  const denseRows = rows.map((v) => ({ indices: Int32Array.from(v, (_, i) => i), values: v }));
  const opts = { ...DEFAULT_LOGREG, epochs: 6, l2: 1e-3 };

  it('the generator yields every epoch and ends with the weights trainLogReg returns', () => {
    const losses: number[] = [];
    const whole = trainLogReg(denseRows, ys, d, k, opts, (e) => losses.push(e.loss));
    const gen = logRegEpochs(denseRows, ys, d, k, opts);
    const stepped: number[] = [];
    let r = gen.next();
    for (; !r.done; r = gen.next()) stepped.push(r.value.loss);
    expect(stepped).toEqual(losses);
    expect(Array.from(r.value.weights)).toEqual(Array.from(whole.weights));
    expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.8);
  });

  it('the ONNX Runtime trainer for dense rows trains the model the sparse trainer trains', async () => {
    const weights = [1, 2, 0.5, 1];
    const o = { ...opts, classWeights: weights };
    const sparse = trainLogReg(denseRows, ys, d, k, o);
    const losses: number[] = [];
    const gen = denseLogRegEpochs(rows, ys, d, k, o);
    let r = await gen.next();
    for (; !r.done; r = await gen.next()) losses.push(r.value.loss);
    expect(losses).toHaveLength(opts.epochs);
    const sparseLosses: number[] = [];
    trainLogReg(denseRows, ys, d, k, o, (e) => sparseLosses.push(e.loss));
    losses.forEach((l, i) => expect(l).toBeCloseTo(sparseLosses[i]!, 5));
    for (let j = 0; j < d * k; j++) expect(r.value.weights[j]!).toBeCloseTo(sparse.weights[j]!, 4);
    for (let c = 0; c < k; c++) expect(r.value.bias[c]!).toBeCloseTo(sparse.bias[c]!, 4);
  });
});

describe('data-fraction budget', () => {
  const examples = (n: number, split: string) =>
    Array.from({ length: n }, (_, i) => ({
      id: `${split}#${i}`,
      text: `${split} ${i}`,
      label: i % 3 === 0 ? 'a' : 'b',
    }));
  const data = {
    train: examples(400, 'train'),
    validation: examples(50, 'val'),
    test: examples(50, 'test'),
    labelMap: { labels: ['a', 'b'], label2id: { a: 0, b: 1 }, id2label: { 0: 'a', 1: 'b' } },
    trainDigest: 'abc',
  };

  it('keeps a seeded share of the training split, the same for every trial, and leaves validation whole', () => {
    const a = budgetTrain(data, 0.25);
    expect(a.train).toHaveLength(100);
    expect(budgetTrain(data, 0.25).train).toEqual(a.train);
    expect(a.train).not.toEqual(data.train.slice(0, 100));
    expect(new Set(a.train.map((e) => e.text)).size).toBe(100);
    expect(a.validation).toBe(data.validation);
    // The subset is not the split its digest names.
    expect(a.trainDigest).toBeUndefined();
    expect(budgetTrain(data, 1)).toBe(data);
    expect(() => budgetTrain(data, 0)).toThrow(/not in \(0, 1\]/);
    expect(() => budgetTrain(data, 1.5)).toThrow(/not in \(0, 1\]/);
  });
});
