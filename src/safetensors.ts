// safetensors: 8-byte little-endian header length, JSON header, raw little-endian tensors.
// https://github.com/huggingface/safetensors — readable by numpy/torch/the Python stdlib without flowtensor.
import os from 'node:os';
import fs from 'node:fs';
import { UserError } from './errors.js';
import { MAX_BINARY_BYTES, readRegularFile } from './safefile.js';

if (os.endianness() !== 'LE') throw new Error('flowtensor shards are little-endian; big-endian hosts are not supported');

export type DType = 'F32' | 'I32';
export interface TensorIn {
  dtype: DType;
  shape: number[];
  data: Float32Array | Int32Array;
}
export interface TensorInfo {
  dtype: DType;
  shape: number[];
  data_offsets: [number, number];
}

const MAX_HEADER = 1 << 20;

export function encodeSafetensors(tensors: Record<string, TensorIn>, metadata: Record<string, string>): Uint8Array[] {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  const datas: Uint8Array[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`tensor ${name}: shape ${t.shape} does not match ${t.data.length} values`);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + bytes.byteLength] };
    off += bytes.byteLength;
    datas.push(bytes);
  }
  let json = JSON.stringify(header);
  const pad = (8 - ((Buffer.byteLength(json) + 8) % 8)) % 8;
  json += ' '.repeat(pad);
  const hlen = Buffer.byteLength(json);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(hlen));
  return [prefix, Buffer.from(json), ...datas];
}

export interface SafetensorsFile {
  metadata: Record<string, string>;
  tensors: Record<string, TensorInfo>;
  get(name: string): Float32Array | Int32Array;
}

/** Parse a safetensors buffer, checking every offset and shape against the bytes before use. */
export function decodeSafetensors(buf: Buffer, what = 'shard'): SafetensorsFile {
  if (buf.length < 8) throw new UserError(`${what}: too short for safetensors (${buf.length} bytes)`);
  const hlenBig = buf.readBigUInt64LE(0);
  if (hlenBig > BigInt(Math.min(MAX_HEADER, buf.length - 8))) throw new UserError(`${what}: bad safetensors header length ${hlenBig}`);
  const hlen = Number(hlenBig);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.toString('utf8', 8, 8 + hlen));
  } catch {
    throw new UserError(`${what}: safetensors header is not JSON`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new UserError(`${what}: safetensors header is not a JSON object`);
  const base = 8 + hlen;
  const dataLen = buf.length - base;
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata) || !Object.values(metadata).every((v) => typeof v === 'string'))
    throw new UserError(`${what}: safetensors __metadata__ is not an object of strings`);
  const tensors: Record<string, TensorInfo> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const t = v as TensorInfo;
    if (!t || typeof t !== 'object' || (t.dtype !== 'F32' && t.dtype !== 'I32') || !Array.isArray(t.shape) || !Array.isArray(t.data_offsets) || t.data_offsets.length !== 2)
      throw new UserError(`${what}: tensor ${name} has an unsupported entry`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new UserError(`${what}: tensor ${name} has shape ${JSON.stringify(t.shape).slice(0, 80)}: dimensions are whole numbers from 0`);
    const [a, b] = t.data_offsets;
    const n = t.shape.reduce((x, y) => x * y, 1);
    if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b < a || b > dataLen || b - a !== n * 4)
      throw new UserError(`${what}: tensor ${name} offsets [${a}, ${b}] do not fit shape ${JSON.stringify(t.shape)} and ${dataLen} data bytes`);
    tensors[name] = t;
  }
  return {
    metadata,
    tensors,
    get(name: string) {
      const t = tensors[name];
      if (!t) throw new UserError(`${what}: no tensor ${name}`);
      const [a, b] = t.data_offsets;
      const start = buf.byteOffset + base + a;
      const n = (b - a) / 4;
      // copy when unaligned (small files come from Buffer's shared pool)
      const ab = start % 4 === 0 ? buf.buffer : buf.buffer.slice(start, start + (b - a));
      const off = start % 4 === 0 ? start : 0;
      return t.dtype === 'F32' ? new Float32Array(ab, off, n) : new Int32Array(ab, off, n);
    },
  };
}

/** Read a safetensors file: a regular file only, its size checked first (src/safefile.ts). */
export function readSafetensors(file: string, o: { within?: string; exactBytes?: number } = {}): SafetensorsFile {
  return decodeSafetensors(readRegularFile(file, { maxBytes: MAX_BINARY_BYTES, what: 'shard', ...o }), file);
}

/**
 * Only the header of a safetensors file, and chosen rows of one F32 tensor [rows, F] read in place (pass 2
 * needs a few rows and the `scaled` mark of big shards: reading them whole would cost their size in memory).
 */
export function readSafetensorsRows(file: string, tensor: string, rows: number[]): { metadata: Record<string, string>; rows: Float32Array } {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new UserError(`${file}: not a regular file; refused`);
    const len = Buffer.alloc(8);
    if (fs.readSync(fd, len, 0, 8, 0) !== 8) throw new UserError(`${file}: too short for safetensors`);
    const hlen = Number(len.readBigUInt64LE(0));
    if (hlen > Math.min(MAX_HEADER, st.size - 8)) throw new UserError(`${file}: bad safetensors header length ${hlen}`);
    const head = Buffer.alloc(8 + hlen);
    fs.readSync(fd, head, 0, 8 + hlen, 0);
    // the header checked as a whole file's would be, with a stand-in for the data
    const h = JSON.parse(head.toString('utf8', 8)) as Record<string, TensorInfo>;
    const t = h[tensor];
    const meta = (h as unknown as { __metadata__?: Record<string, string> }).__metadata__ ?? {};
    if (rows.length === 0) return { metadata: meta, rows: new Float32Array(0) };
    if (!t || t.dtype !== 'F32' || t.shape.length !== 2) throw new UserError(`${file}: no F32 matrix ${tensor}`);
    const [n, F] = t.shape;
    const out = new Float32Array(rows.length * F);
    const bytes = new Uint8Array(out.buffer);
    rows.forEach((r, k) => {
      if (!(r >= 0 && r < n)) throw new UserError(`${file}: row ${r} outside its ${n} rows`);
      const at = 8 + hlen + t.data_offsets[0] + r * F * 4;
      if (at + F * 4 > st.size || fs.readSync(fd, bytes, k * F * 4, F * 4, at) !== F * 4) throw new UserError(`${file}: shorter than its header says`);
    });
    return { metadata: meta, rows: out };
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserError(`${file}: safetensors header is not JSON`);
    throw e;
  } finally {
    fs.closeSync(fd);
  }
}
