/**
 * AdamW (Loshchilov & Hutter: weight decay decoupled from the gradient step, as torch.optim.AdamW),
 * the linear warm-up then linear decay schedule of BERT fine-tuning, and global-norm gradient
 * clipping. Pure arithmetic on Float32Arrays, updated in place; the state round-trips through
 * checkpoints so a resumed run continues exactly.
 */
import type { Params, RowGrads } from '../model/train-step';

export interface AdamWConfig {
  learningRate: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const DEFAULT_ADAMW: AdamWConfig = { learningRate: 5e-5, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

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
  readonly state: AdamWState;

  constructor(
    readonly config: AdamWConfig,
    state?: AdamWState,
  ) {
    this.state = state ?? { step: 0, m: new Map(), v: new Map() };
  }

  /**
   * One update at learning rate `lr` of every parameter with a gradient. `gradScale` multiplies the
   * gradients on the fly (global-norm clipping without another pass). Embedding tables are updated
   * on the rows their row gradient names only (lazy Adam, as TF's LazyAdam and torch's SparseAdam):
   * rows a batch did not use keep their weights and moments.
   */
  update(params: Params, grads: Params, rowGrads: ReadonlyMap<string, RowGrads>, lr: number, gradScale = 1): void {
    const { beta1, beta2, eps, weightDecay } = this.config;
    const t = ++this.state.step;
    const stepSize = lr / (1 - beta1 ** t);
    const c2 = 1 / Math.sqrt(1 - beta2 ** t);
    const k: Kernel = { b1: beta1, b2: beta2, decay: 1, stepSize, c2, eps, gradScale };
    for (const [name, g] of grads) {
      const [w, m, v] = this.slots(params, name);
      k.decay = decays(name) ? 1 - lr * weightDecay : 1;
      adamw(w, g, m, v, 0, 0, w.length, k);
    }
    for (const [name, { rows, grad }] of rowGrads) {
      const [w, m, v] = this.slots(params, name);
      const width = grad.length / Math.max(1, rows.length);
      k.decay = decays(name) ? 1 - lr * weightDecay : 1;
      rows.forEach((row, r) => adamw(w, grad, m, v, row * width, r * width, width, k));
    }
  }

  private slots(params: Params, name: string): [Float32Array, Float32Array, Float32Array] {
    const w = params.get(name);
    if (!w) throw new Error(`no parameter ${name} to update`);
    let m = this.state.m.get(name);
    let v = this.state.v.get(name);
    if (!m || !v) {
      this.state.m.set(name, (m = new Float32Array(w.length)));
      this.state.v.set(name, (v = new Float32Array(w.length)));
    }
    return [w, m, v];
  }
}

interface Kernel {
  b1: number;
  b2: number;
  decay: number;
  stepSize: number;
  c2: number;
  eps: number;
  gradScale: number;
}

/** The AdamW arithmetic on w[at .. at+n) with gradient g[gAt .. gAt+n) (one monomorphic loop for V8). */
function adamw(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, at: number, gAt: number, n: number, k: Kernel): void {
  const { b1, b2, decay, stepSize, c2, eps, gradScale } = k;
  const a1 = 1 - b1;
  const a2 = 1 - b2;
  for (let i = 0; i < n; i++) {
    const j = at + i;
    const gi = g[gAt + i]! * gradScale;
    const mi = b1 * m[j]! + a1 * gi;
    const vi = b2 * v[j]! + a2 * gi * gi;
    m[j] = mi;
    v[j] = vi;
    w[j] = w[j]! * decay - (stepSize * mi) / (Math.sqrt(vi) * c2 + eps);
  }
}

/** The factor that brings a gradient of norm `norm` down to at most `maxNorm` (torch's clip_grad_norm_). */
export const clipScale = (norm: number, maxNorm: number): number => (maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1);
