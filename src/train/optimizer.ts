/**
 * AdamW (Loshchilov & Hutter: weight decay decoupled from the gradient step, as torch.optim.AdamW),
 * the linear warm-up then linear decay schedule of BERT fine-tuning, and global-norm gradient
 * clipping. Weights are updated in place by a WebAssembly SIMD kernel (adamw-simd.ts) that also holds
 * the moments; the state round-trips through checkpoints so a resumed run continues exactly.
 */
import type { Params, RowGrads } from '../engine/train-step';
import { SimdAdamW, type KernelArgs } from './adamw-simd';

export interface AdamWConfig {
  learningRate: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const DEFAULT_ADAMW: AdamWConfig = {
  learningRate: 5e-5,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
};

/** Biases and LayerNorm weights are not decayed (the usual BERT fine-tuning recipe). */
export const decays = (name: string): boolean => !name.endsWith('.bias') && !/(^|\.)ln\d?\.weight$/.test(name);

/**
 * Learning-rate multiplier at `step` (0-based): linear warm-up over `warmup` steps, then linear decay
 * to 0 at `total` (transformers' get_linear_schedule_with_warmup, step 0 included).
 */
export function linearSchedule(step: number, warmup: number, total: number): number {
  if (step < warmup) return step / warmup;
  return Math.max(0, (total - step) / Math.max(1, total - warmup));
}

export interface AdamWState {
  step: number;
  m: Params;
  v: Params;
}

export class AdamW {
  private readonly kernel = new SimdAdamW();
  /** Byte offsets of each parameter's moments in the kernel's memory. */
  private readonly slots = new Map<string, { m: number; v: number; n: number }>();
  private step = 0;

  constructor(
    readonly config: AdamWConfig,
    state?: AdamWState,
  ) {
    if (state) this.load(state);
  }

  /** Step count and moments (views into the kernel's memory: serialise them before the next update). */
  get state(): AdamWState {
    const m: Params = new Map();
    const v: Params = new Map();
    for (const [name, s] of this.slots) {
      m.set(name, this.kernel.view(s.m, s.n));
      v.set(name, this.kernel.view(s.v, s.n));
    }
    return { step: this.step, m, v };
  }

  /** Restores a checkpointed state. */
  load(state: AdamWState): void {
    this.step = state.step;
    for (const [name, m] of state.m) {
      const s = this.slot(name, m.length);
      this.kernel.view(s.m, s.n).set(m);
      this.kernel.view(s.v, s.n).set(state.v.get(name)!);
    }
  }

  /**
   * One update at learning rate `lr` of every parameter with a gradient. `gradScale` multiplies the
   * gradients on the fly (global-norm clipping without another pass). Embedding tables are updated
   * on the rows their row gradient names only (lazy Adam, as TF's LazyAdam and torch's SparseAdam):
   * rows a batch did not use keep their weights and moments.
   */
  update(params: Params, grads: Params, rowGrads: ReadonlyMap<string, RowGrads>, lr: number, gradScale = 1): void {
    const { beta1, beta2, eps, weightDecay } = this.config;
    const t = ++this.step;
    const k: KernelArgs = {
      b1: beta1,
      b2: beta2,
      decay: 1,
      stepSize: lr / (1 - beta1 ** t),
      c2: 1 / Math.sqrt(1 - beta2 ** t),
      eps,
      gradScale,
    };
    const weights = (name: string) => {
      const w = params.get(name);
      if (!w) throw new Error(`no parameter ${name} to update`);
      k.decay = decays(name) ? 1 - lr * weightDecay : 1;
      return w;
    };
    for (const [name, g] of grads) {
      const w = weights(name);
      const s = this.slot(name, w.length);
      this.kernel.update(w, 0, g, 0, w.length, s.m, s.v, k);
    }
    for (const [name, { rows, grad }] of rowGrads) {
      const w = weights(name);
      const s = this.slot(name, w.length);
      const width = grad.length / Math.max(1, rows.length);
      rows.forEach((row, r) =>
        this.kernel.update(w, row * width, grad, r * width, width, s.m + row * width * 4, s.v + row * width * 4, k),
      );
    }
  }

  private slot(name: string, n: number): { m: number; v: number; n: number } {
    let s = this.slots.get(name);
    if (!s) {
      s = { m: this.kernel.alloc(n), v: this.kernel.alloc(n), n };
      this.slots.set(name, s);
    }
    return s;
  }
}

/** The factor that brings a gradient of norm `norm` down to at most `maxNorm` (torch's clip_grad_norm_). */
export const clipScale = (norm: number, maxNorm: number): number =>
  maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
