/**
 * The AdamW update as a WebAssembly SIMD kernel (four float32 lanes per instruction), emitted as
 * bytes from TypeScript. A scalar JavaScript loop spends ~6 ns per parameter on float64 square
 * roots and divisions; this runs the same arithmetic in float32, as torch.optim.AdamW does on
 * float32 parameters. The kernel owns a linear memory where the optimizer keeps its moments.
 */

const leb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
};
const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body];
const vec = (items: number[][]) => [...leb(items.length), ...items.flat()];
const str = (s: string) => [...leb(s.length), ...Buffer.from(s, 'utf8')];

// Opcodes (WebAssembly core + SIMD proposal).
const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;
const get = (i: number) => [0x20, ...leb(i)];
const set = (i: number) => [0x21, ...leb(i)];
const i32c = (n: number) => [0x41, ...sleb(n)];
const simd = (op: number, ...imm: number[]) => [0xfd, ...leb(op), ...imm];
const V = {
  load: (off = 0) => simd(0x00, 4, ...leb(off)),
  store: (off = 0) => simd(0x0b, 4, ...leb(off)),
  splat: simd(0x13),
  sqrt: simd(0xe3),
  add: simd(0xe4),
  sub: simd(0xe5),
  mul: simd(0xe6),
  div: simd(0xe7),
};
const F = { load: [0x2a, 2, 0], store: [0x38, 2, 0], sqrt: [0x91], add: [0x92], sub: [0x93], mul: [0x94], div: [0x95] };
const i32add = [0x6a];

/**
 * adamw(w, g, m, v: byte offsets, n: count, b1, b2, decay, stepSize, c2, eps, gradScale): for each i,
 * g' = g*gradScale; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2; w = w*decay - stepSize*m / (sqrt(v)*c2 + eps).
 */
function kernelBody(): number[] {
  // Params 0-4: w g m v n (i32); 5-11: b1 b2 decay stepSize c2 eps gs (f32).
  const [W, G, M, Vv, N, B1, B2, DEC, STEP, C2, EPS, GS] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  // Locals: 12 i (byte offset), 13 end4, 14 endAll (i32); 15 a1, 16 a2 (f32); 17 g, 18 m, 19 v (v128);
  // 20 gs, 21 mm, 22 vv (f32 for the tail).
  const [I, END4, END, A1, A2, VG, VM, VV, SG, SM, SV] = [12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22];
  const at = (base: number) => [...get(base), ...get(I), ...i32add];
  const splat = (l: number) => [...get(l), ...V.splat];
  const body: number[] = [
    // a1 = 1 - b1, a2 = 1 - b2; end4 = (n & ~3) * 4; endAll = n * 4
    0x43,
    ...new Uint8Array(Float32Array.of(1).buffer),
    ...get(B1),
    ...F.sub,
    ...set(A1),
    0x43,
    ...new Uint8Array(Float32Array.of(1).buffer),
    ...get(B2),
    ...F.sub,
    ...set(A2),
    ...get(N),
    ...i32c(-4),
    0x71,
    ...i32c(2),
    0x74,
    ...set(END4),
    ...get(N),
    ...i32c(2),
    0x74,
    ...set(END),
    // Vector loop.
    0x02,
    0x40,
    0x03,
    0x40,
    ...get(I),
    ...get(END4),
    0x4f /* i32.ge_u */,
    0x0d,
    1,
    ...at(G),
    ...V.load(),
    ...splat(GS),
    ...V.mul,
    ...set(VG),
    ...splat(B1),
    ...at(M),
    ...V.load(),
    ...V.mul,
    ...splat(A1),
    ...get(VG),
    ...V.mul,
    ...V.add,
    ...set(VM),
    ...splat(B2),
    ...at(Vv),
    ...V.load(),
    ...V.mul,
    ...splat(A2),
    ...get(VG),
    ...get(VG),
    ...V.mul,
    ...V.mul,
    ...V.add,
    ...set(VV),
    ...at(M),
    ...get(VM),
    ...V.store(),
    ...at(Vv),
    ...get(VV),
    ...V.store(),
    ...at(W),
    ...at(W),
    ...V.load(),
    ...splat(DEC),
    ...V.mul,
    ...splat(STEP),
    ...get(VM),
    ...V.mul,
    ...get(VV),
    ...V.sqrt,
    ...splat(C2),
    ...V.mul,
    ...splat(EPS),
    ...V.add,
    ...V.div,
    ...V.sub,
    ...V.store(),
    ...get(I),
    ...i32c(16),
    ...i32add,
    ...set(I),
    0x0c,
    0,
    0x0b,
    0x0b,
    // Scalar tail.
    0x02,
    0x40,
    0x03,
    0x40,
    ...get(I),
    ...get(END),
    0x4f,
    0x0d,
    1,
    ...at(G),
    ...F.load,
    ...get(GS),
    ...F.mul,
    ...set(SG),
    ...get(B1),
    ...at(M),
    ...F.load,
    ...F.mul,
    ...get(A1),
    ...get(SG),
    ...F.mul,
    ...F.add,
    ...set(SM),
    ...get(B2),
    ...at(Vv),
    ...F.load,
    ...F.mul,
    ...get(A2),
    ...get(SG),
    ...get(SG),
    ...F.mul,
    ...F.mul,
    ...F.add,
    ...set(SV),
    ...at(M),
    ...get(SM),
    ...F.store,
    ...at(Vv),
    ...get(SV),
    ...F.store,
    ...at(W),
    ...at(W),
    ...F.load,
    ...get(DEC),
    ...F.mul,
    ...get(STEP),
    ...get(SM),
    ...F.mul,
    ...get(SV),
    ...F.sqrt,
    ...get(C2),
    ...F.mul,
    ...get(EPS),
    ...F.add,
    ...F.div,
    ...F.sub,
    ...F.store,
    ...get(I),
    ...i32c(4),
    ...i32add,
    ...set(I),
    0x0c,
    0,
    0x0b,
    0x0b,
    0x0b,
  ];
  const locals = vec([
    [3, I32],
    [2, F32],
    [3, V128],
    [3, F32],
  ]);
  return [...leb(locals.length + body.length), ...locals, ...body];
}

function moduleBytes(): Uint8Array {
  const type = [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [F32], [F32], [F32], [F32], [F32], [F32], [F32]]), 0];
  return Uint8Array.from([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec([type])),
    ...section(2, vec([[...str('env'), ...str('mem'), 0x02, 0x00, 1]])),
    ...section(3, vec([[0]])),
    ...section(7, vec([[...str('adamw'), 0x00, 0]])),
    ...section(10, vec([kernelBody()])),
  ]);
}

type KernelFn = (
  w: number,
  g: number,
  m: number,
  v: number,
  n: number,
  b1: number,
  b2: number,
  decay: number,
  stepSize: number,
  c2: number,
  eps: number,
  gradScale: number,
) => void;

export interface KernelArgs {
  b1: number;
  b2: number;
  decay: number;
  stepSize: number;
  c2: number;
  eps: number;
  gradScale: number;
}

const PAGE = 65536;

// The WebAssembly JS API, typed minimally (the project's lib settings carry no DOM types).
interface WasmApi {
  Memory: new (d: { initial: number }) => { buffer: ArrayBuffer; grow(pages: number): number };
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The kernel and its memory: moments are allocated once per parameter, scratch space is reused. */
export class SimdAdamW {
  private readonly memory = new wasm.Memory({ initial: 1 });
  private readonly fn: KernelFn;
  private used = 0;
  private scratch = { at: 0, floats: 0 };

  constructor() {
    const instance = new wasm.Instance(new wasm.Module(moduleBytes()), { env: { mem: this.memory } });
    this.fn = instance.exports.adamw as KernelFn;
  }

  /** Reserves `floats` float32s (16-byte aligned); returns the byte offset. */
  alloc(floats: number): number {
    const at = this.used;
    this.used += Math.ceil((floats * 4) / 16) * 16;
    const need = Math.ceil(this.used / PAGE) - this.memory.buffer.byteLength / PAGE;
    if (need > 0) this.memory.grow(need);
    return at;
  }

  /** A view of `floats` float32s at byte offset `at` (re-take views after any alloc: growing detaches them). */
  view(at: number, floats: number): Float32Array {
    return new Float32Array(this.memory.buffer, at, floats);
  }

  /**
   * One update of w[wFrom .. wFrom+n) with g[gFrom .. gFrom+n) and the moments at byte offsets
   * mAt/vAt (already advanced to the same element): copies w and g in, runs, copies w back.
   */
  update(
    w: Float32Array,
    wFrom: number,
    g: Float32Array,
    gFrom: number,
    n: number,
    mAt: number,
    vAt: number,
    k: KernelArgs,
  ): void {
    if (this.scratch.floats < n) this.scratch = { at: this.alloc(2 * n), floats: n };
    const wAt = this.scratch.at;
    const gAt = wAt + Math.ceil((n * 4) / 16) * 16;
    const sw = this.view(wAt, n);
    sw.set(w.subarray(wFrom, wFrom + n));
    this.view(gAt, n).set(g.subarray(gFrom, gFrom + n));
    this.fn(wAt, gAt, mAt, vAt, n, k.b1, k.b2, k.decay, k.stepSize, k.c2, k.eps, k.gradScale);
    w.set(sw, wFrom);
  }
}
