/**
 * An ONNX graph builder with reverse-mode differentiation, so TypeScript can emit both the forward
 * pass and its backward pass as one graph that ONNX Runtime runs with its fast multi-threaded CPU
 * (or GPU) kernels. Only the ops a BERT-family classifier needs are differentiable; each records on a
 * tape how to emit the gradients of its inputs, and `gradients()` walks that tape backwards.
 *
 * Conventions: dense layers see 2-D activations [rows, features]; `linear` keeps weights in the
 * Hugging Face layout [out, in] (Gemm transB), so no weight is ever transposed or copied.
 */
import { encodeModel, type Attr, type Initializer, type OnnxNode, type ValueInfo } from './onnx-proto';

export type Name = string;

interface TapeEntry {
  inputs: Name[];
  output: Name;
  /** Emits the gradients of `inputs` given the gradient of `output` (undefined: no gradient). */
  backward: (gy: Name) => (Name | undefined)[];
}

export const OPSET = 18;

export class Graph {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: Initializer[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  private counter = 0;
  private readonly consts = new Map<string, Name>();
  private readonly tape: TapeEntry[] = [];
  /** Tensors that depend on something being differentiated. */
  private readonly live = new Set<Name>();
  private usesContrib = false;

  constructor(readonly name: string) {}

  // ---- emission ---------------------------------------------------------------------------

  /** Emits one node with `nOut` outputs and returns their names. */
  nodeN(op: string, inputs: Name[], nOut: number, attrs?: Attr[], domain?: string): Name[] {
    const base = `${op.toLowerCase()}_${this.counter++}`;
    const outputs = Array.from({ length: nOut }, (_, i) => (i === 0 ? base : `${base}_${i}`));
    this.nodes.push({ op, inputs, outputs, attrs, domain });
    if (domain === 'com.microsoft') this.usesContrib = true;
    return outputs;
  }

  op(op: string, inputs: Name[], attrs?: Attr[], domain?: string): Name {
    return this.nodeN(op, inputs, 1, attrs, domain)[0]!;
  }

  /** A float32 scalar constant (shared by value). */
  scalar(v: number): Name {
    const key = `f:${v}`;
    let n = this.consts.get(key);
    if (!n) {
      n = `const_f${this.consts.size}`;
      this.initializers.push({ name: n, dims: [], data: Float32Array.of(v) });
      this.consts.set(key, n);
    }
    return n;
  }

  /** An int64 constant: a 1-D list, or a scalar. */
  ints(v: number[], scalar = false): Name {
    const key = `i:${scalar}:${v.join(',')}`;
    let n = this.consts.get(key);
    if (!n) {
      n = `const_i${this.consts.size}`;
      this.initializers.push({ name: n, dims: scalar ? [] : [v.length], data: BigInt64Array.from(v.map(BigInt)) });
      this.consts.set(key, n);
    }
    return n;
  }

  initializer(name: Name, dims: number[], data: Initializer['data']): Name {
    this.initializers.push({ name, dims, data });
    return name;
  }

  input(name: Name, elemType: number, shape: (number | string)[]): Name {
    this.inputs.push({ name, elemType, shape });
    return name;
  }

  output(from: Name, name: Name, elemType: number, shape: (number | string)[]): void {
    if (from !== name) this.nodes.push({ op: 'Identity', inputs: [from], outputs: [name] });
    this.outputs.push({ name, elemType, shape });
  }

  toModel(): Buffer {
    return encodeModel({
      name: this.name,
      nodes: this.nodes,
      initializers: this.initializers,
      inputs: this.inputs,
      outputs: this.outputs,
      opset: OPSET,
      extraOpsets: this.usesContrib ? [{ domain: 'com.microsoft', version: 1 }] : [],
    });
  }

  // ---- differentiation --------------------------------------------------------------------

  /** Marks a tensor as something to differentiate with respect to (a parameter or a tap). */
  differentiable(name: Name): Name {
    this.live.add(name);
    return name;
  }

  private record(inputs: Name[], output: Name, backward: TapeEntry['backward']): Name {
    if (inputs.some((x) => this.live.has(x))) {
      this.live.add(output);
      this.tape.push({ inputs, output, backward });
    }
    return output;
  }

  private sum(parts: Name[]): Name {
    return parts.reduce((acc, p) => this.op('Add', [acc, p]));
  }

  /**
   * Emits the backward pass of scalar `loss` and returns the gradient of each of `wrt` (undefined
   * where the loss does not depend on it). Gradients reaching a tensor along several paths are summed.
   */
  gradients(loss: Name, wrt: Name[]): Map<Name, Name | undefined> {
    const pending = new Map<Name, Name[]>([[loss, [this.scalar(1)]]]);
    for (let i = this.tape.length - 1; i >= 0; i--) {
      const e = this.tape[i]!;
      const parts = pending.get(e.output);
      if (!parts) continue;
      pending.delete(e.output);
      const grads = e.backward(this.sum(parts));
      e.inputs.forEach((x, j) => {
        const gx = grads[j];
        if (gx === undefined || !this.live.has(x)) return;
        const list = pending.get(x);
        if (list) list.push(gx);
        else pending.set(x, [gx]);
      });
    }
    return new Map(wrt.map((w) => [w, pending.has(w) ? this.sum(pending.get(w)!) : undefined]));
  }

  // ---- differentiable ops -----------------------------------------------------------------

  /** y = x W^T + b, x [rows, in], W [out, in] (Hugging Face layout), b [out]. */
  linear(x: Name, w: Name, b?: Name): Name {
    const y = this.op('Gemm', b ? [x, w, b] : [x, w], [{ name: 'transB', value: 1 }]);
    return this.record(b ? [x, w, b] : [x, w], y, (gy) => [
      this.live.has(x) ? this.op('MatMul', [gy, w]) : undefined,
      this.live.has(w) ? this.op('Gemm', [gy, x], [{ name: 'transA', value: 1 }]) : undefined,
      b && this.live.has(b) ? this.op('ReduceSum', [gy, this.ints([0])], [{ name: 'keepdims', value: 0 }]) : undefined,
    ]);
  }

  /** Batched matrix product of two tensors of the same rank (no broadcasting). */
  matmul(a: Name, b: Name, rank: number): Name {
    const y = this.op('MatMul', [a, b]);
    const swap = [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
    const t = (x: Name) => this.op('Transpose', [x], [{ name: 'perm', value: swap }]);
    return this.record([a, b], y, (gy) => [
      this.live.has(a) ? this.op('MatMul', [gy, t(b)]) : undefined,
      this.live.has(b) ? this.op('MatMul', [t(a), gy]) : undefined,
    ]);
  }

  transpose(x: Name, perm: number[]): Name {
    const y = this.op('Transpose', [x], [{ name: 'perm', value: perm }]);
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return this.record([x], y, (gy) => [this.op('Transpose', [gy], [{ name: 'perm', value: inverse }])]);
  }

  reshape(x: Name, shape: Name): Name {
    const y = this.op('Reshape', [x, shape]);
    return this.record([x], y, (gy) => [this.op('Reshape', [gy, this.op('Shape', [x])])]);
  }

  /** Sum of same-shaped tensors (residual connections). */
  add(a: Name, b: Name): Name {
    return this.record([a, b], this.op('Add', [a, b]), (gy) => [gy, gy]);
  }

  /** x * c for a constant (non-differentiated) tensor c that broadcasts to x's shape. */
  mulConst(x: Name, c: Name): Name {
    return this.record([x], this.op('Mul', [x, c]), (gy) => [this.op('Mul', [gy, c])]);
  }

  /** x + c for a constant c (an attention mask): the gradient passes through unchanged. */
  addConst(x: Name, c: Name): Name {
    return this.record([x], this.op('Add', [x, c]), (gy) => [gy]);
  }

  softmax(x: Name): Name {
    const y = this.op('Softmax', [x], [{ name: 'axis', value: -1 }]);
    return this.record([x], y, (gy) => {
      const dot = this.op('ReduceSum', [this.op('Mul', [gy, y]), this.ints([-1])], [{ name: 'keepdims', value: 1 }]);
      return [this.op('Mul', [y, this.op('Sub', [gy, dot])])];
    });
  }

  /** Layer normalisation over the last axis of x [rows, features]. */
  layerNorm(x: Name, gamma: Name, beta: Name, eps: number): Name {
    const [y, mean, invStd] = this.nodeN('LayerNormalization', [x, gamma, beta], 3, [
      { name: 'axis', value: -1 },
      { name: 'epsilon', value: eps, float: true },
    ]);
    return this.record([x, gamma, beta], y!, (gy) => {
      const xhat = this.op('Mul', [this.op('Sub', [x, mean!]), invStd!]);
      const rows = this.ints([0]);
      const last = this.ints([-1]);
      const keep = [{ name: 'keepdims', value: 1 }];
      let dx: Name | undefined;
      if (this.live.has(x)) {
        const dxhat = this.op('Mul', [gy, gamma]);
        const m1 = this.op('ReduceMean', [dxhat, last], keep);
        const m2 = this.op('ReduceMean', [this.op('Mul', [dxhat, xhat]), last], keep);
        dx = this.op('Mul', [invStd!, this.op('Sub', [this.op('Sub', [dxhat, m1]), this.op('Mul', [xhat, m2])])]);
      }
      const noKeep = [{ name: 'keepdims', value: 0 }];
      return [
        dx,
        this.live.has(gamma) ? this.op('ReduceSum', [this.op('Mul', [gy, xhat]), rows], noKeep) : undefined,
        this.live.has(beta) ? this.op('ReduceSum', [gy, rows], noKeep) : undefined,
      ];
    });
  }

  /** Exact (erf) GELU, as BERT uses; the backward pass reuses the forward's normal CDF. */
  gelu(x: Name): Name {
    const cdf = this.op('Mul', [
      this.scalar(0.5),
      this.op('Add', [this.scalar(1), this.op('Erf', [this.op('Mul', [x, this.scalar(Math.SQRT1_2)])])]),
    ]);
    const y = this.op('Mul', [x, cdf]);
    return this.record([x], y, (gy) => {
      const pdf = this.op('Mul', [
        this.op('Exp', [this.op('Mul', [this.op('Mul', [x, x]), this.scalar(-0.5)])]),
        this.scalar(1 / Math.sqrt(2 * Math.PI)),
      ]);
      return [this.op('Mul', [gy, this.op('Add', [cdf, this.op('Mul', [x, pdf])])])];
    });
  }

  tanh(x: Name): Name {
    const y = this.op('Tanh', [x]);
    return this.record([x], y, (gy) => [
      this.op('Mul', [gy, this.op('Sub', [this.scalar(1), this.op('Mul', [y, y])])]),
    ]);
  }

  /** Mean over the sequence axis of h [batch, seq, hidden], counting positions where mask3 [batch, seq, 1] is 1. */
  maskedMean(h: Name, mask3: Name): Name {
    const axis = this.ints([1]);
    const count = this.op('Max', [
      this.op('ReduceSum', [mask3, axis], [{ name: 'keepdims', value: 0 }]),
      this.scalar(1e-9),
    ]);
    const y = this.op('Div', [
      this.op('ReduceSum', [this.op('Mul', [h, mask3]), axis], [{ name: 'keepdims', value: 0 }]),
      count,
    ]);
    return this.record([h], y, (gy) => [
      this.op('Mul', [this.op('Unsqueeze', [this.op('Div', [gy, count]), axis]), mask3]),
    ]);
  }

  /** The first position of h [batch, seq, hidden] ([CLS]); `first3` is [1, seq, 1], 1 at position 0. */
  firstToken(h: Name, first3: Name): Name {
    const y = this.op('Gather', [h, this.ints([0], true)], [{ name: 'axis', value: 1 }]);
    return this.record([h], y, (gy) => [this.op('Mul', [this.op('Unsqueeze', [gy, this.ints([1])]), first3])]);
  }

  /**
   * Cross-entropy of logits [batch, classes] against `target` [batch, classes]: one-hot rows
   * already scaled by each example's class weight / the batch's total weight, so the sum is
   * PyTorch's weighted mean. Returns the scalar loss.
   */
  crossEntropy(logits: Name, target: Name): Name {
    const logp = this.op('LogSoftmax', [logits], [{ name: 'axis', value: -1 }]);
    const loss = this.op('Neg', [
      this.op('ReduceSum', [this.op('Mul', [target, logp])], [{ name: 'keepdims', value: 0 }]),
    ]);
    return this.record([logits], loss, (gy) => {
      const rowWeight = this.op('ReduceSum', [target, this.ints([-1])], [{ name: 'keepdims', value: 1 }]);
      const d = this.op('Sub', [this.op('Mul', [this.op('Exp', [logp]), rowWeight]), target]);
      return [this.op('Mul', [d, gy])];
    });
  }
}
