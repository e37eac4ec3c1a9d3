/**
 * The scope rule as data for other runtimes: a small ONNX graph, written beside scope.json
 * (scope.onnx), that computes the in-scope score `scopeScores` (./rule.ts) computes, from the same
 * saved parameters. The Python flavor (src/py/convo_pyfunc.py) runs it with onnxruntime and holds no
 * score formula; TypeScript serves with its own implementation, and tests compare the two
 * (tests/unit/scope-graph.test.ts, tests/integration/pyfunc.test.ts).
 *
 * Inputs, each only where the score reads it: `logits` [n, k] and `features` [n, dim] as float64 (the
 * model's raw outputs), `view` [n, dim] (the texts in the pretrained encoder's space) and `bank`
 * [rows, dim] (the neighbour bank file) as float32. Output: `score` [n], float64, higher = more in
 * scope. Every step runs in float64, as the TypeScript scores do:
 * - none: +Infinity per row (every input in scope);
 * - msp: max softmax(logits / T);
 * - energy: logsumexp(logits), as m + log(sum(exp(logits - m)));
 * - mahalanobis: -min_c |x W - mu'_c|^2 with W = (L^-1)^T and mu'_c = L^-1 mu_c (the whitened class
 *   means), expanded as |z|^2 - 2 z.mu'_c + |mu'_c|^2;
 * - mahalanobis+knn: w (maha - m_mean) / m_std + (1 - w) (nearest - k_mean) / k_std, where nearest is
 *   max over bank rows of view . row (both cast to float64).
 */
import { Graph, type Name } from '../../engine/graph';
import { DataType } from '../../engine/onnx-proto';
import type { ScopeScore } from '../types';
import type { MahalanobisModel, Standardization } from './scores';

/** The rule graph's file in a model folder (a fixed name, as scope.json names it). */
export const SCOPE_GRAPH_FILE = 'scope.onnx';

export interface ScopeRule {
  score: ScopeScore;
  temperature: number;
  mahalanobis?: MahalanobisModel;
  knn?: { dim: number; weight: number; mahalanobisScale: Standardization; knnScale: Standardization };
}

/** Solves L z = b for lower-triangular L ([dim, dim], row-major), in float64. */
function forwardSolve(l: ArrayLike<number>, dim: number, b: ArrayLike<number>): Float64Array {
  const z = new Float64Array(dim);
  for (let a = 0; a < dim; a++) {
    let s = b[a]!;
    for (let k = 0; k < a; k++) s -= l[a * dim + k]! * z[k]!;
    z[a] = s / l[a * dim + a]!;
  }
  return z;
}

/** W = (L^-1)^T [dim, dim] and the whitened means L^-1 mu_c [classes, dim], with their squared norms. */
export function whitening(m: MahalanobisModel): { w: Float64Array; means: Float64Array; norms: Float64Array } {
  const { dim } = m;
  const classes = m.means.length / dim;
  const w = new Float64Array(dim * dim);
  const unit = new Float64Array(dim);
  for (let j = 0; j < dim; j++) {
    unit.fill(0);
    unit[j] = 1;
    // Column j of L^-1 is row j of W.
    w.set(forwardSolve(m.cholesky, dim, unit), j * dim);
  }
  const means = new Float64Array(classes * dim);
  const norms = new Float64Array(classes);
  for (let c = 0; c < classes; c++) {
    const mu = Array.from({ length: dim }, (_, a) => m.means[c * dim + a]!);
    const z = forwardSolve(m.cholesky, dim, mu);
    means.set(z, c * dim);
    norms[c] = z.reduce((s, v) => s + v * v, 0);
  }
  return { w, means, norms };
}

/** The ONNX model of a fitted scope rule (see the module comment for inputs, output and formulas). */
export function scopeRuleGraph(rule: ScopeRule): Buffer {
  const g = new Graph('scope_rule');
  let constants = 0;
  const f64 = (data: Float64Array, dims: number[] = []): Name => g.initializer(`p${constants++}`, dims, data);
  const scalar = (v: number) => f64(Float64Array.of(v));
  const axis1 = g.ints([1]);
  const keepdims = (value: 0 | 1) => [{ name: 'keepdims', value }];
  const logits = g.input('logits', DataType.DOUBLE, ['n', 'k']);

  const mahalanobis = (m: MahalanobisModel): Name => {
    const { w, means, norms } = whitening(m);
    const classes = norms.length;
    const x = g.input('features', DataType.DOUBLE, ['n', m.dim]);
    const z = g.op('MatMul', [x, f64(w, [m.dim, m.dim])]);
    const zz = g.op('ReduceSum', [g.op('Mul', [z, z]), axis1], keepdims(1));
    // -2 z.mu'_c + |mu'_c|^2, [n, classes]
    const cross = g.op(
      'Gemm',
      [z, f64(means, [classes, m.dim]), f64(norms, [classes])],
      [
        { name: 'alpha', value: -2, float: true },
        { name: 'transB', value: 1 },
      ],
    );
    return g.op('Neg', [g.op('ReduceMin', [g.op('Add', [zz, cross]), axis1], keepdims(0))]);
  };

  let score: Name;
  switch (rule.score) {
    case 'none': {
      const rows = g.op('Slice', [g.op('Shape', [logits]), g.ints([0]), g.ints([1])]);
      score = g.op('Expand', [scalar(Infinity), rows]);
      break;
    }
    case 'msp': {
      const probs = g.op('Softmax', [g.op('Div', [logits, scalar(rule.temperature)])], [{ name: 'axis', value: 1 }]);
      score = g.op('ReduceMax', [probs, axis1], keepdims(0));
      break;
    }
    case 'energy': {
      const m = g.op('ReduceMax', [logits, axis1], keepdims(1));
      const sum = g.op('ReduceSum', [g.op('Exp', [g.op('Sub', [logits, m])]), axis1], keepdims(0));
      score = g.op('Add', [g.op('Squeeze', [m, axis1]), g.op('Log', [sum])]);
      break;
    }
    case 'mahalanobis':
      if (!rule.mahalanobis) throw new Error('the mahalanobis rule needs its fitted model');
      score = mahalanobis(rule.mahalanobis);
      break;
    case 'mahalanobis+knn': {
      if (!rule.mahalanobis || !rule.knn) throw new Error('the mahalanobis+knn rule needs both fitted parts');
      const { dim, weight, mahalanobisScale: ms, knnScale: ks } = rule.knn;
      const toDouble = (x: Name) => g.op('Cast', [x], [{ name: 'to', value: DataType.DOUBLE }]);
      const view = toDouble(g.input('view', DataType.FLOAT, ['n', dim]));
      const bank = toDouble(g.input('bank', DataType.FLOAT, ['rows', dim]));
      const nearest = g.op(
        'ReduceMax',
        [g.op('Gemm', [view, bank], [{ name: 'transB', value: 1 }]), axis1],
        keepdims(0),
      );
      const part = (x: Name, w: number, s: Standardization) =>
        g.op('Div', [g.op('Mul', [scalar(w), g.op('Sub', [x, scalar(s.mean)])]), scalar(s.std)]);
      score = g.op('Add', [part(mahalanobis(rule.mahalanobis), weight, ms), part(nearest, 1 - weight, ks)]);
      break;
    }
  }
  g.output(score, 'score', DataType.DOUBLE, ['n']);
  return g.toModel();
}
