import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/data/split';
import type { Example } from '../../src/data/tasks';
import { softmaxWithTemperature } from '../../src/evaluate/calibration';
import { knownIntents, openIntentSplits, scoreOpenIntent } from '../../src/open-intent/protocol';
import {
  combinedScore,
  fitStandardization,
  nearestNeighbourSimilarity,
  openSetMetrics,
} from '../../src/kinds/scope/scores';
import { wilsonLower } from '../../src/evaluate/interval';
import {
  fitScope,
  readNeighbourBank,
  readScope,
  scopeScores,
  withScope,
  writeScope,
  type ScopeView,
} from '../../src/kinds/scope/rule';
import type { TextPredictor } from '../../src/kinds/types';
import { neighbourIndex } from '../../src/engine/neighbour-index';

const rand = seededRandom(11);
const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());

/**
 * k classes in `dim` dimensions: unit-variance features around one mean per class (`spread` apart);
 * logits 3x the Bayes-optimal ones, m.x - |m|^2/2 (an overconfident head: the right temperature is 3).
 * Unknown inputs sit around the origin, away from every class mean.
 */
function world(k: number, dim: number, spread: number) {
  const means = Array.from({ length: k }, () => Array.from({ length: dim }, () => spread * gauss()));
  const draw = (c: number | undefined) => {
    const x = Array.from({ length: dim }, (_, d) => (c === undefined ? 0 : means[c]![d]!) + gauss());
    const logits = means.map((m) => 3 * m.reduce((s, v, d) => s + v * x[d]! - (v * v) / 2, 0));
    return { x, logits };
  };
  const sample = (n: number, unknown = false) => {
    const y = Array.from({ length: n }, (_, i) => i % k);
    const rows = y.map((c) => draw(unknown ? undefined : c));
    return {
      y,
      raw: {
        logits: Float32Array.from(rows.flatMap((r) => r.logits)),
        features: { data: Float32Array.from(rows.flatMap((r) => r.x)), dim },
      },
    };
  };
  return { sample };
}

describe('scope.json: temperature, score and threshold fitted on validation', () => {
  const k = 4;
  const w = world(k, 6, 0.6);
  const train = w.sample(400);
  const validation = w.sample(400);
  const labels = ['a', 'b', 'c', 'd'];

  it('keeps the stated in-scope recall (with 95% confidence) and calibrates the overconfident head', () => {
    for (const score of ['msp', 'energy', 'mahalanobis'] as const) {
      const s = fitScope({
        labels,
        validation,
        train: { features: train.raw.features, y: train.y },
        score,
        recall: 0.9,
        fallbackLabel: 'out_of_scope',
      });
      if (score !== 'mahalanobis') {
        const scores = scopeScores(validation.raw, k, s);
        // The fewest kept whose 95% lower bound is still the stated recall (so new data keeps it too).
        const kept = Array.from(scores).filter((v) => v >= s.threshold).length;
        expect(wilsonLower(kept, scores.length), score).toBeGreaterThanOrEqual(0.9);
        expect(wilsonLower(kept - 1, scores.length), score).toBeLessThan(0.9);
      }
      expect(s.temperature).toBeGreaterThan(2.5); // the head is 3x overconfident: T flattens it
      expect(s.temperature).toBeLessThan(3.5);
      expect(s.calibration.nll_after).toBeLessThan(s.calibration.nll_before);
      expect(s.calibration.ece_after).toBeLessThan(s.calibration.ece_before);
    }
  });

  it('round-trips through scope.json, and a wrapped predictor serves calibrated probabilities and judges inputs', async () => {
    const s = fitScope({
      labels,
      validation,
      train: { features: train.raw.features, y: train.y },
      score: 'mahalanobis',
      recall: 0.95,
      fallbackLabel: 'human',
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scope-'));
    writeScope(dir, s);
    const read = readScope(dir)!;
    expect(read).toEqual(s);
    expect(readScope(path.join(dir, 'nothing-here'))).toBeUndefined();
    fs.writeFileSync(path.join(dir, 'scope.json'), JSON.stringify({ ...s, threshold: 'high' }));
    expect(() => readScope(dir)).toThrow(/not a valid scope file/);
    fs.rmSync(dir, { recursive: true });

    const far = world(k, 6, 2);
    const farTrain = far.sample(400);
    const s2 = fitScope({
      labels,
      validation: far.sample(400),
      train: { features: farTrain.raw.features, y: farTrain.y },
      score: 'mahalanobis',
      recall: 0.95,
      fallbackLabel: 'human',
    });
    const known = far.sample(200);
    const unknown = far.sample(200, true);
    let i = 0;
    const inputs = new Map<string, { logits: number[]; x: number[] }>();
    const add = (set: typeof known) =>
      set.y.map((_, r) => {
        const text = `t${i++}`;
        inputs.set(text, {
          logits: Array.from(set.raw.logits.subarray(r * k, (r + 1) * k)),
          x: Array.from(set.raw.features.data.subarray(r * 6, (r + 1) * 6)),
        });
        return text;
      });
    const knownTexts = add(known);
    const unknownTexts = add(unknown);
    const base: TextPredictor = {
      input: 'text',
      kind: 'frozen-encoder-logreg',
      flavor: 'test',
      labels,
      release: async () => {},
      predictProba: async () => new Float32Array(),
      predictRaw: async (texts) => ({
        logits: Float32Array.from(texts.flatMap((t) => inputs.get(t)!.logits)),
        features: { data: Float32Array.from(texts.flatMap((t) => inputs.get(t)!.x)), dim: 6 },
      }),
    };
    const p = withScope(base, s2);
    expect(p.scope!.fallbackLabel).toBe('human');
    const probs = await p.predictProba(knownTexts.slice(0, 3));
    const expected = softmaxWithTemperature((await base.predictRaw(knownTexts.slice(0, 3))).logits, k, s2.temperature);
    probs.forEach((v, j) => expect(v).toBeCloseTo(expected[j]!, 6));
    const inShare = async (texts: string[]) => {
      const v = await p.scope!.judge(texts);
      return Array.from(v.scores).filter((x) => x >= p.scope!.threshold).length / texts.length;
    };
    expect(await inShare(knownTexts)).toBeGreaterThan(0.9);
    expect(await inShare(unknownTexts)).toBeLessThan(0.1);

    const strict = withScope(base, s2, { threshold: 0, fallbackLabel: 'queue-x' });
    expect(strict.scope!.threshold).toBe(0);
    expect(strict.scope!.modelThreshold).toBe(s2.threshold);
    expect(strict.scope!.fallbackLabel).toBe('queue-x');
  });

  it("a task with score 'none' keeps everything in scope but is still calibrated", () => {
    const s = fitScope({ labels, validation, score: 'none', recall: 0.95, fallbackLabel: 'x' });
    expect(Array.from(scopeScores(validation.raw, k, s)).every((v) => v >= s.threshold)).toBe(true);
    expect(s.temperature).toBeGreaterThan(2.5);
  });
});

describe('mahalanobis+knn: the nearest training text in a second (pretrained) view', () => {
  const unit = (v: number[]) => {
    const n = Math.hypot(...v) || 1;
    return v.map((x) => x / n);
  };

  it('nearest-neighbour similarity is the largest cosine to a bank row; z-scored parts combine by weight', () => {
    const bank = Float32Array.from([...unit([1, 0, 0]), ...unit([0, 1, 0]), ...unit([1, 1, 0])]);
    const q = Float32Array.from([...unit([1, 0.1, 0]), ...unit([0, 0, 1]), ...unit([-1, -1, 0])]);
    const nn = nearestNeighbourSimilarity(bank, q, 3);
    expect(nn[0]).toBeCloseTo(1 / Math.hypot(1, 0.1), 6); // nearest: [1, 0, 0]
    expect(nn[1]).toBeCloseTo(0, 6); // orthogonal to every row
    expect(nn[2]).toBeCloseTo(-Math.SQRT1_2, 6); // the least opposed rows, not the most
    expect(() => nearestNeighbourSimilarity(bank, q.subarray(0, 4), 3)).toThrow(/rows of 3/);
    // Leave-one-out: bank rows 1 and 2 scored as queries 0 and 1 do not find themselves.
    const loo = nearestNeighbourSimilarity(bank, bank.subarray(3), 3, 1);
    expect(loo[0]).toBeCloseTo(Math.SQRT1_2, 6); // [0, 1, 0]: nearest other row [1, 1, 0]
    expect(loo[1]).toBeCloseTo(Math.SQRT1_2, 6);
    expect(nearestNeighbourSimilarity(bank, bank.subarray(3), 3)[0]).toBeCloseTo(1, 6);
    const z = fitStandardization([1, 2, 3, 4]);
    expect(z.mean).toBe(2.5);
    expect(z.std).toBeCloseTo(Math.sqrt(5 / 3), 10);
    const c = combinedScore([2.5, 4], z, [10, 0], { mean: 0, std: 10 }, 0.25);
    expect(c[0]).toBeCloseTo(0.75, 10);
    expect(c[1]).toBeCloseTo(0.25 * (1.5 / z.std), 10);
  });

  it('the served index (one ONNX Gemm + ReduceMax) answers as the plain loop', async () => {
    const r = seededRandom(5);
    const rows = (n: number) => Float32Array.from({ length: n }, () => r() - 0.5);
    const normalised = (a: Float32Array, dim: number) => {
      for (let i = 0; i < a.length / dim; i++) {
        const v = a.subarray(i * dim, (i + 1) * dim);
        const n = Math.hypot(...v);
        v.forEach((x, j) => (v[j] = x / n));
      }
      return a;
    };
    const bank = normalised(rows(500 * 16), 16);
    const queries = normalised(rows(40 * 16), 16);
    const index = await neighbourIndex(bank, 16);
    try {
      const fast = await index.nearest(queries);
      const plain = nearestNeighbourSimilarity(bank, queries, 16);
      expect(fast).toHaveLength(40);
      fast.forEach((v, i) => expect(v).toBeCloseTo(plain[i]!, 5));
      expect(await index.nearest(new Float32Array())).toHaveLength(0);
    } finally {
      await index.release();
    }
  });

  /**
   * Unknown texts that the model's own features cannot tell apart (drawn around the known class means,
   * as fine-tuning pulls unknown intents in), but that sit away from every training text in the view.
   */
  function twoViews(k: number, n: number, unknown: boolean, seed: number) {
    const r = seededRandom(seed);
    const g = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    const y = Array.from({ length: n }, (_, i) => i % k);
    const features = y.flatMap((c) => [3 * c + g(), g(), g()]);
    const view = y.flatMap((c) =>
      unit(unknown ? [g() * 0.3, g() * 0.3, 1 + g() * 0.1, c] : [1, c, g() * 0.2, g() * 0.2]),
    );
    const logits = y.flatMap((_, i) => Array.from({ length: k }, (_, j) => -Math.abs(features[i * 3]! - 3 * j)));
    return {
      y,
      raw: {
        logits: Float32Array.from(logits),
        features: { data: Float32Array.from(features), dim: 3 },
        view: { data: Float32Array.from(view), dim: 4 },
      },
    };
  }
  const k = 3;
  const labels = ['a', 'b', 'c'];
  const train = twoViews(k, 300, false, 1);
  const validation = twoViews(k, 300, false, 2);
  // The bank: training texts, then validation texts.
  const bank = Float32Array.from([...train.raw.view.data, ...validation.raw.view.data]);
  const fit = (weight: number) =>
    fitScope({
      labels,
      validation,
      train: { features: train.raw.features, y: train.y },
      neighbours: {
        bank: { data: bank, dim: 4 },
        validationStart: 300,
        encoder: 'scope-encoder',
        maxLength: 64,
        weight,
      },
      score: 'mahalanobis+knn',
      recall: 0.95,
      fallbackLabel: 'out_of_scope',
    });

  /** A served predictor over known + unknown test texts: the model gives logits and features, the view embeds. */
  function served(s: ReturnType<typeof fit>, bank: Float32Array) {
    const rows = new Map<string, { logits: number[]; x: number[]; v: number[] }>();
    const add = (raw: ReturnType<typeof twoViews>['raw'], tag: string) =>
      Array.from({ length: raw.logits.length / k }, (_, r) => {
        const t = `${tag}${r}`;
        rows.set(t, {
          logits: Array.from(raw.logits.subarray(r * k, (r + 1) * k)),
          x: Array.from(raw.features.data.subarray(r * 3, (r + 1) * 3)),
          v: Array.from(raw.view.data.subarray(r * 4, (r + 1) * 4)),
        });
        return t;
      });
    const known = add(twoViews(k, 150, false, 3).raw, 'k');
    const unknown = add(twoViews(k, 150, true, 4).raw, 'u');
    const released: string[] = [];
    const base: TextPredictor = {
      input: 'text',
      kind: 'bert-finetune',
      flavor: 'test',
      labels,
      release: async () => void released.push('model'),
      predictProba: async () => new Float32Array(),
      predictRaw: async (ts) => ({
        logits: Float32Array.from(ts.flatMap((t) => rows.get(t)!.logits)),
        features: { data: Float32Array.from(ts.flatMap((t) => rows.get(t)!.x)), dim: 3 },
      }),
    };
    const view: ScopeView = {
      bank,
      embed: async (ts) => ({ data: Float32Array.from(ts.flatMap((t) => rows.get(t)!.v)), dim: 4 }),
      release: async () => void released.push('view'),
    };
    return { base, view, known, unknown, released };
  }

  it('tells apart unknown texts that Mahalanobis alone cannot; weight 1 is Mahalanobis alone', async () => {
    const s = fit(0.5);
    expect(s.knn).toMatchObject({ rows: 600, dim: 4, weight: 0.5, encoder: 'scope-encoder', max_length: 64 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scope-knn-'));
    try {
      writeScope(dir, s, bank);
      const read = readScope(dir)!;
      expect(read).toEqual(s);
      const saved = readNeighbourBank(dir, read.knn!);
      expect(saved).toEqual(bank);
      const auroc = async (file: typeof s) => {
        const t = served(file, saved);
        const judge = withScope(t.base, file, {}, file.knn ? t.view : undefined).scope!.judge;
        return openSetMetrics((await judge(t.known)).scores, (await judge(t.unknown)).scores).auroc;
      };
      const { knn: _unused, ...mahaOnly } = s;
      const alone = await auroc({ ...mahaOnly, score: 'mahalanobis' });
      expect(alone).toBeLessThan(0.7);
      expect(await auroc(s)).toBeGreaterThan(0.95);
      expect(await auroc({ ...s, knn: { ...s.knn!, weight: 1 } })).toBeCloseTo(alone, 10);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });

  it('a served predictor embeds texts with its view, keeps the stated recall, and releases both', async () => {
    const s = fit(0.5);
    const t = served(s, bank);
    expect(() => withScope(t.base, s)).toThrow(/needs its pretrained encoder view/);
    const p = withScope(t.base, s, {}, t.view);
    const share = async (texts: string[]) => {
      const v = await p.scope!.judge(texts);
      return Array.from(v.scores).filter((x) => x >= p.scope!.threshold).length / texts.length;
    };
    expect(await share(t.known)).toBeGreaterThan(0.9);
    expect(await share(t.unknown)).toBeLessThan(0.05);
    await p.release();
    expect(t.released).toEqual(['model', 'view']);
  });

  it('refuses a bank that is not the one fitted, and a scope.json that lacks what its score needs', () => {
    const s = fit(0.5);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scope-knn-'));
    try {
      expect(() => writeScope(dir, s)).toThrow(/not the one fitted/);
      expect(() => writeScope(dir, s, validation.raw.view.data)).toThrow(/not the one fitted/);
      writeScope(dir, s, bank);
      const file = path.join(dir, s.knn!.bank);
      const bytes = fs.readFileSync(file);
      bytes[10] = bytes[10]! ^ 1;
      fs.writeFileSync(file, bytes);
      expect(() => readNeighbourBank(dir, s.knn!)).toThrow(/sha256 differs/);
      fs.writeFileSync(file, bytes.subarray(0, 40));
      expect(() => readNeighbourBank(dir, s.knn!)).toThrow(/holds 10 floats/);
      const { knn: _unused, ...withoutKnn } = s;
      fs.writeFileSync(path.join(dir, 'scope.json'), JSON.stringify(withoutKnn));
      expect(() => readScope(dir)).toThrow(/needs knn/);
      fs.writeFileSync(path.join(dir, 'scope.json'), JSON.stringify({ ...s, score: 'mahalanobis' }));
      expect(() => readScope(dir)).toThrow(/belongs to mahalanobis\+knn only/);
      // Files are named, never pointed at: a path out of the model folder is not a valid scope file.
      fs.writeFileSync(path.join(dir, 'scope.json'), JSON.stringify({ ...s, knn: { ...s.knn, bank: '../x.f32' } }));
      expect(() => readScope(dir)).toThrow(/not a valid scope file/);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });
});

describe('open intent protocol', () => {
  const labels = Array.from({ length: 20 }, (_, i) => `intent_${i}`);

  it('draws a seeded share of known intents, the same for the same seed', () => {
    const a = knownIntents(labels, 0.75, 0);
    expect(a).toHaveLength(15);
    expect(knownIntents(labels, 0.75, 0)).toEqual(a);
    expect(knownIntents(labels, 0.75, 1)).not.toEqual(a);
    expect(knownIntents(labels, 0.25, 0)).toHaveLength(5);
    expect(() => knownIntents(labels, 1, 0)).toThrow(/between 0 and 1/);
  });

  it('trains on known intents only; validation and test keep the unknown ones apart', () => {
    const ex = (label: string, i: number): Example => ({ id: `${label}-${i}`, text: `${label} ${i}`, label });
    const split = labels.flatMap((l) => [ex(l, 0), ex(l, 1)]);
    const s = openIntentSplits({ train: split, validation: split, test: split }, knownIntents(labels, 0.5, 3));
    expect(new Set(s.train.map((e) => e.label))).toEqual(new Set(s.known));
    expect(s.labelMap.labels).toEqual([...s.known].sort());
    expect(s.test.known).toHaveLength(20);
    expect(s.test.unknown.every((e) => !s.known.includes(e.label))).toBe(true);
  });

  it('scores a run: the score chosen on validation, rejection counted in known accuracy and in macro-F1 over known + open', () => {
    // 2 known classes; test: 4 known (one wrong top class), 2 unknown. Score "good" separates them, "bad" does not.
    const r = scoreOpenIntent({
      scores: {
        bad: { validation: { known: [0.5, 0.4], unknown: [0.6, 0.7] }, test: { known: [1, 1, 1, 1], unknown: [1, 1] } },
        good: {
          validation: { known: [0.9, 0.8], unknown: [0.1, 0.2] },
          test: { known: [0.9, 0.85, 0.95, 0.5], unknown: [0.1, 0.79] },
        },
      },
      testTop: { known: [0, 1, 1, 0], unknown: [0, 1] },
      testKnownY: [0, 1, 0, 0],
      classes: 2,
      recall: 1,
    });
    expect(r.chosen).toBe('good');
    // Threshold 0.8 (keeps all validation known): test known #3 (0.5) is rejected, unknown 0.79 rejected too.
    expect(r.methods.good!.threshold).toBe(0.8);
    expect(r.knownAccuracyClosed).toBe(0.75); // top classes right for #0, #1, #3; #2 wrong
    expect(r.knownAccuracy).toBe(0.5); // and #3 is rejected
    expect(r.knownKept).toBe(0.75);
    expect(r.openRejected).toBe(1);
    expect(r.methods.good!.testAuroc).toBeCloseTo(7 / 8, 10);
    expect(r.methods.bad!.testAuroc).toBe(0.5);
    // Classes: 0 (tp 1, fn 2: #2 -> 1, #3 -> open), 1 (tp 1, fp 1), open (tp 2, fp 1).
    expect(r.f1Open).toBeCloseTo(0.8, 10);
    expect(r.macroF1All).toBeCloseTo((0.5 + 2 / 3 + 0.8) / 3, 10);
  });
});
