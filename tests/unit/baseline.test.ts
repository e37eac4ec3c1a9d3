import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildLabelMap } from '../../src/data/labels';
import type { Example } from '../../src/data/tasks';
import { fitTfidf, TfidfVectorizer } from '../../src/estimators/tfidf';
import {
  evaluateBaseline,
  loadBaseline,
  predictBaseline,
  saveBaseline,
  trainBaseline,
  DEFAULT_BASELINE,
} from '../../src/kinds/tfidf-logreg/model';

const sk = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/tfidf-sklearn.json'), 'utf8')) as {
  docs: string[];
  vocabulary: string[];
  idf: number[];
  matrix: number[][];
};

describe('TF-IDF', () => {
  it('matches scikit-learn TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)', () => {
    const state = fitTfidf(sk.docs, { ngramRange: [1, 2], minDf: 1, sublinearTf: true });
    expect(state.vocabulary).toEqual(sk.vocabulary);
    state.idf.forEach((v, i) => expect(v).toBeCloseTo(sk.idf[i]!, 10));
    const vec = new TfidfVectorizer(state);
    sk.docs.forEach((d, r) => {
      const dense = new Array<number>(state.vocabulary.length).fill(0);
      const x = vec.transform(d);
      x.indices.forEach((j, n) => (dense[j] = x.values[n]!));
      dense.forEach((v, j) => expect(v).toBeCloseTo(sk.matrix[r]![j]!, 6));
    });
  });
});

// Three queues with distinctive words, plus noise words shared by all.
const words: Record<string, string[]> = {
  card: ['card', 'pin', 'contactless', 'atm'],
  billing: ['charged', 'fee', 'refund', 'invoice'],
  account: ['close', 'password', 'verify', 'identity'],
};
const noise = ['please', 'help', 'my', 'today', 'why', 'the'];
function synth(n: number, seed: number): Example[] {
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const labels = Object.keys(words);
  return Array.from({ length: n }, (_, i) => {
    const label = labels[i % labels.length]!;
    const pick = (a: string[]) => a[Math.floor(rnd() * a.length)]!;
    return {
      id: `s#${i}`,
      label,
      text: [pick(noise), pick(words[label]!), pick(noise), pick(words[label]!), pick(noise)].join(' '),
    };
  });
}

describe('TF-IDF + logistic regression baseline', () => {
  const train = synth(300, 1);
  const test = synth(90, 2);
  const map = buildLabelMap(train.map((e) => e.label));
  const cfg = {
    ...DEFAULT_BASELINE,
    tfidf: { ...DEFAULT_BASELINE.tfidf, minDf: 1 },
    logreg: { ...DEFAULT_BASELINE.logreg, epochs: 10 },
  };

  it('learns a separable task, with a falling loss', () => {
    const losses: number[] = [];
    const model = trainBaseline(train, map, [1, 1, 1], cfg, (e) => losses.push(e.loss));
    expect(losses[losses.length - 1]!).toBeLessThan(losses[0]! / 3);
    const e = evaluateBaseline(model, test);
    expect(e.accuracy).toBe(1);
    expect(e.rocAuc).toBe(1);
  });

  it('is deterministic for a seed and round-trips through save/load', () => {
    const a = trainBaseline(train, map, [1, 1, 1], cfg);
    const b = trainBaseline(train, map, [1, 1, 1], cfg);
    expect(Buffer.from(a.logreg.weights.buffer).equals(Buffer.from(b.logreg.weights.buffer))).toBe(true);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baseline-'));
    saveBaseline(a, dir);
    const loaded = loadBaseline(dir);
    const texts = test.map((e) => e.text);
    expect(Array.from(predictBaseline(loaded, texts).probs)).toEqual(Array.from(predictBaseline(a, texts).probs));
  });
});
