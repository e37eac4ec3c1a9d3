/**
 * The safetensors format (Hugging Face's weight files): an 8-byte little-endian header length, a
 * JSON header {name: {dtype, shape, data_offsets}}, then the raw little-endian tensor bytes.
 * Read and write F32 (and read F16/BF16 into F32), so checkpoints load and fine-tuned models save
 * in the format every Hugging Face tool reads.
 */
import fs from 'node:fs';

export interface Tensor {
  shape: number[];
  data: Float32Array;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (m / 1024);
  if (e === 31) return m ? Number.NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

const INTEGER_DTYPES = new Set(['I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL']);

/**
 * Parses a safetensors buffer into F32 tensors (plus `__metadata__`). Integer tensors (buffers such
 * as BERT's `position_ids`) are not weights: they are listed in `skipped`, not loaded.
 */
export function parseSafetensors(buf: Buffer): {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
  skipped: string[];
} {
  if (buf.length < 8) throw new Error('not a safetensors file: shorter than its 8-byte header length');
  const n = Number(buf.readBigUInt64LE(0));
  if (n > buf.length - 8) throw new Error(`not a safetensors file: header length ${n} exceeds the file`);
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    HeaderEntry | Record<string, string>
  >;
  const base = 8 + n;
  const tensors = new Map<string, Tensor>();
  let metadata: Record<string, string> = {};
  const skipped: string[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const {
      dtype,
      shape,
      data_offsets: [start, end],
    } = entry as HeaderEntry;
    if (INTEGER_DTYPES.has(dtype)) {
      skipped.push(name);
      continue;
    }
    const bytes = buf.subarray(base + start, base + end);
    const count = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(count);
    if (dtype === 'F32') {
      // little-endian host
      data.set(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + count * 4)));
    } else if (dtype === 'F16') {
      for (let i = 0; i < count; i++) data[i] = f16ToF32(bytes.readUInt16LE(i * 2));
    } else if (dtype === 'BF16') {
      const tmp = Buffer.alloc(4);
      for (let i = 0; i < count; i++) {
        tmp.writeUInt16LE(0, 0);
        tmp.writeUInt16LE(bytes.readUInt16LE(i * 2), 2);
        data[i] = tmp.readFloatLE(0);
      }
    } else {
      throw new Error(`tensor ${name}: dtype ${dtype} is not supported (F32, F16, BF16; integer buffers are skipped)`);
    }
    if (end - start !== count * (dtype === 'F32' ? 4 : 2))
      throw new Error(`tensor ${name}: ${end - start} bytes for shape [${shape}] ${dtype}`);
    tensors.set(name, { shape, data });
  }
  return { tensors, metadata, skipped };
}

export function readSafetensors(file: string): ReturnType<typeof parseSafetensors> {
  return parseSafetensors(fs.readFileSync(file));
}

/** Serialises F32 tensors (sorted by name, 8-byte aligned header) with optional string metadata. */
export function serializeSafetensors(tensors: Map<string, Tensor>, metadata: Record<string, string> = {}): Buffer {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = Object.keys(metadata).length ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length)
      throw new Error(`tensor ${name}: shape [${t.shape}] has ${count} values, data has ${t.data.length}`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + count * 4] };
    offset += count * 4;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // the format pads the header with spaces
  const head = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + head.length + offset);
  out.writeBigUInt64LE(BigInt(head.length), 0);
  head.copy(out, 8);
  let pos = 8 + head.length;
  for (const name of names) {
    const t = tensors.get(name)!;
    // little-endian hosts (x86-64, arm64)
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, pos);
    pos += t.data.byteLength;
  }
  return out;
}
