/**
 * Nearest-neighbour cosine similarity as one small ONNX graph: Gemm(queries, bank^T) and ReduceMax over
 * the bank, on ONNX Runtime's SIMD matrix kernels. It computes what `nearestNeighbourSimilarity`
 * (src/evaluate/open-set.ts) computes, for serving: a 10k-row bank costs about 6 ms per text in the
 * plain loop and a small fraction of that here. Rows of both are L2-normalised.
 */
import * as ort from 'onnxruntime-node';
import { Graph } from './graph';
import { DataType } from './onnx-proto';
import { createSession, type SessionOptions } from './ort-session';

export interface NeighbourIndex {
  /** Per query row ([n, dim]), the largest dot product with a bank row. */
  nearest(queries: Float32Array): Promise<Float64Array>;
  release(): Promise<void>;
}

/** The graph of an index over `bank` ([rows, dim], row-major): input `queries` [n, dim], output `nearest` [n]. */
export function neighbourIndexGraph(bank: Float32Array, dim: number): Buffer {
  const rows = bank.length / dim;
  if (!Number.isInteger(rows) || rows === 0) throw new Error(`the bank is not rows of ${dim}`);
  const g = new Graph('neighbour_index');
  const q = g.input('queries', DataType.FLOAT, ['n', dim]);
  const b = g.initializer('bank', [rows, dim], bank);
  const sims = g.op('Gemm', [q, b], [{ name: 'transB', value: 1 }]);
  const best = g.op('ReduceMax', [sims, g.ints([1])], [{ name: 'keepdims', value: 0 }]);
  g.output(best, 'nearest', DataType.FLOAT, ['n']);
  return g.toModel();
}

export async function neighbourIndex(bank: Float32Array, dim: number, o: SessionOptions = {}): Promise<NeighbourIndex> {
  const session = await createSession(neighbourIndexGraph(bank, dim), o);
  return {
    async nearest(queries) {
      const n = queries.length / dim;
      if (n === 0) return new Float64Array(0);
      const out = await session.run({ queries: new ort.Tensor('float32', queries, [n, dim]) });
      return Float64Array.from(out.nearest!.data as Float32Array);
    },
    release: () => session.release(),
  };
}
