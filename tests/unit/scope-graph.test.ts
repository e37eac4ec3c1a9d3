import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/data/split';
import { createSession } from '../../src/engine/ort-session';
import { SCOPE_GRAPH_FILE, scopeRuleGraph } from '../../src/kinds/scope/graph';
import { fitScope, readScope, removeScope, scopeScores, writeScope } from '../../src/kinds/scope/rule';
import { fitMahalanobis, type MahalanobisModel } from '../../src/kinds/scope/scores';
import { SCOPE_SCORES, type RawOutputs } from '../../src/kinds/types';

// The scope rule's ONNX graph (what the Python flavor runs) computes the scores TypeScript serves with.
const rand = seededRandom(5);
const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
const k = 5;
const dim = 6;
const viewDim = 4;
const n = 60;
const rows = 40;
const matrix = (r: number, c: number, scale = 1) => Float32Array.from({ length: r * c }, () => scale * gauss());
const normalised = (r: number, c: number) => {
  const m = matrix(r, c);
  for (let i = 0; i < r; i++) {
    const norm = Math.hypot(...m.subarray(i * c, (i + 1) * c));
    for (let j = 0; j < c; j++) m[i * c + j]! /= norm;
  }
  return m;
};

const trainY = Array.from({ length: 200 }, (_, i) => i % k);
const fitted = fitMahalanobis(matrix(200, dim, 2), trainY, k, dim);
// As saved in scope.json: float32 means and factor.
const maha: MahalanobisModel = {
  ...fitted,
  means: Float32Array.from(fitted.means),
  cholesky: Float32Array.from(fitted.cholesky),
};
const bank = normalised(rows, viewDim);
const knn = {
  bank,
  dim: viewDim,
  weight: 0.3,
  mahalanobisScale: { mean: -20, std: 7 },
  knnScale: { mean: 0.4, std: 0.2 },
};
const raw: RawOutputs = {
  logits: matrix(n, k, 3),
  features: { data: matrix(n, dim, 2), dim },
  view: { data: normalised(n, viewDim), dim: viewDim },
};

async function runGraph(model: Buffer): Promise<Float64Array> {
  const session = await createSession(model, { threads: 1 });
  const tensors: Record<string, ort.Tensor> = {
    logits: new ort.Tensor('float64', Float64Array.from(raw.logits), [n, k]),
    features: new ort.Tensor('float64', Float64Array.from(raw.features!.data), [n, dim]),
    view: new ort.Tensor('float32', raw.view!.data, [n, viewDim]),
    bank: new ort.Tensor('float32', bank, [rows, viewDim]),
  };
  try {
    const out = await session.run(Object.fromEntries(session.inputNames.map((name) => [name, tensors[name]!])));
    return out.score!.data as Float64Array;
  } finally {
    await session.release();
  }
}

describe('the scope rule as an ONNX graph (src/kinds/scope/graph.ts)', () => {
  it.each(SCOPE_SCORES)('%s: ONNX Runtime computes the scores TypeScript serves with (float64)', async (score) => {
    const rule = { score, temperature: 1.7, mahalanobis: maha, knn };
    const ours = scopeScores(raw, k, rule, maha, knn);
    const graph = await runGraph(scopeRuleGraph(rule));
    expect(graph).toHaveLength(n);
    let worst = 0;
    graph.forEach((v, i) => {
      if (score === 'none') expect(v).toBe(Infinity);
      else worst = Math.max(worst, Math.abs(v - ours[i]!) / Math.max(1, Math.abs(ours[i]!)));
    });
    expect(worst).toBeLessThan(1e-9);
    // The scores spread: a graph that ignored an input would not match by chance.
    if (score !== 'none') expect(new Set(Array.from(ours, (v) => v.toFixed(6))).size).toBe(n);
  });

  it('is written beside scope.json, named by it, and removed with it', () => {
    const s = fitScope({
      labels: ['a', 'b', 'c', 'd', 'e'],
      validation: { raw: { logits: raw.logits }, y: Array.from({ length: n }, (_, i) => i % k) },
      score: 'energy',
      recall: 0.9,
      fallbackLabel: 'x',
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scope-graph-'));
    try {
      writeScope(dir, s);
      expect(readScope(dir)!.graph).toBe(SCOPE_GRAPH_FILE);
      expect(fs.readFileSync(path.join(dir, SCOPE_GRAPH_FILE))).toEqual(
        scopeRuleGraph({ score: 'energy', temperature: s.temperature }),
      );
      removeScope(dir);
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });
});
