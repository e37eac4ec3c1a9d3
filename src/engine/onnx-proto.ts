/**
 * A minimal ONNX ModelProto writer: just the messages needed to describe a graph
 * (field numbers from onnx.proto), so TypeScript can emit graphs that ONNX Runtime runs.
 */

class Writer {
  private chunks: Buffer[] = [];

  private varint(n: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(n));
    const bytes: number[] = [];
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v) b |= 0x80;
      bytes.push(b);
    } while (v);
    this.chunks.push(Buffer.from(bytes));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, n: number | bigint): this {
    this.tag(field, 0);
    this.varint(n);
    return this;
  }

  float(field: number, f: number): this {
    this.tag(field, 5);
    const b = Buffer.alloc(4);
    b.writeFloatLE(f);
    this.chunks.push(b);
    return this;
  }

  bytes(field: number, data: Buffer | Uint8Array | string): this {
    const buf =
      typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.tag(field, 2);
    this.varint(buf.length);
    this.chunks.push(buf);
    return this;
  }

  message(field: number, w: Writer): this {
    return this.bytes(field, w.finish());
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, DOUBLE: 11 } as const;

export interface Attr {
  name: string;
  value: number | number[] | string;
  /** For numbers: int (default) or float. */
  float?: boolean;
}

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Attr[];
  domain?: string;
}

export interface Initializer {
  name: string;
  dims: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int8Array;
}

export interface ValueInfo {
  name: string;
  elemType: number;
  /** Dimension sizes, or names for dynamic dimensions. */
  shape: (number | string)[];
}

function attrMsg(a: Attr): Writer {
  const w = new Writer().bytes(1, a.name);
  if (typeof a.value === 'string') return w.bytes(4, a.value).int(20, 3);
  if (Array.isArray(a.value)) {
    if (a.float) {
      for (const v of a.value) w.float(7, v);
      return w.int(20, 6);
    }
    for (const v of a.value) w.int(8, v);
    return w.int(20, 7);
  }
  return a.float ? w.float(2, a.value).int(20, 1) : w.int(3, a.value).int(20, 2);
}

function valueInfo(v: ValueInfo): Writer {
  const shape = new Writer();
  for (const d of v.shape) shape.message(1, typeof d === 'number' ? new Writer().int(1, d) : new Writer().bytes(2, d));
  const tensorType = new Writer().int(1, v.elemType).message(2, shape);
  return new Writer().bytes(1, v.name).message(2, new Writer().message(1, tensorType));
}

export function encodeModel(g: {
  name: string;
  nodes: OnnxNode[];
  initializers: Initializer[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  opset: number;
  extraOpsets?: { domain: string; version: number }[];
}): Buffer {
  const graph = new Writer();
  g.nodes.forEach((n, i) => {
    const node = new Writer();
    for (const x of n.inputs) node.bytes(1, x);
    for (const y of n.outputs) node.bytes(2, y);
    node.bytes(3, `${n.op}_${i}`).bytes(4, n.op);
    for (const a of n.attrs ?? []) node.message(5, attrMsg(a));
    if (n.domain) node.bytes(7, n.domain);
    graph.message(1, node);
  });
  graph.bytes(2, g.name);
  for (const t of g.initializers) {
    const tensor = new Writer();
    for (const d of t.dims) tensor.int(1, d);
    tensor
      .int(
        2,
        t.data instanceof Float32Array
          ? DataType.FLOAT
          : t.data instanceof Float64Array
            ? DataType.DOUBLE
            : t.data instanceof Int8Array
              ? DataType.INT8
              : DataType.INT64,
      )
      .bytes(8, t.name)
      .bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    graph.message(5, tensor);
  }
  for (const v of g.inputs) graph.message(11, valueInfo(v));
  for (const v of g.outputs) graph.message(12, valueInfo(v));
  const model = new Writer()
    .int(1, 8)
    .bytes(2, 'convo-mlops')
    .message(7, graph)
    .message(8, new Writer().bytes(1, '').int(2, g.opset));
  for (const o of g.extraOpsets ?? []) model.message(8, new Writer().bytes(1, o.domain).int(2, o.version));
  return model.finish();
}
