// The rows' kernel (src/kernels/scalewat.ts): scaling rows in place (stages/scale.ts applyScaler,
// pass 2 and predict), pass 1's train statistics (stages/shard.ts), each value's signed log1p
// computed in WebAssembly with Math.log1p's bits, and packing parsed columns into rows with their
// fingerprints (src/prepfile.ts). One instance per thread, made on first use. Where
// the module does not load (or FLOWTENSOR_SCALE_KERNEL=js) callers run their JavaScript loops, which
// give the same bits.
import fs from 'node:fs';
import { BLOCK_MAX, DATA_AT, FEATURES_MAX, PARAMS, REC } from './scalewat.js';
import { envChoice } from '../errors.js';
import { WA, type WasmMemory } from './wasm.js';

interface Exports {
  memory: WasmMemory;
  scale(x: number, n: number, F: number, clip: number): void;
  train(x: number, rows: number, k: number, F: number, mom: number): void;
  slog1p(x: number): number;
  slogFast(x: number): number;
  init(): void;
  pack(cols: number, stride: number, lab: number, n: number, F: number, xo: number, ho: number): void;
  rows(src: number, idx: number, k: number, bytes: number, dst: number): void;
}

/** FLOWTENSOR_SCALE_KERNEL: unset or `wasm` (the WebAssembly kernel where it loads), `js` (JavaScript only: the same bits, slower). */
export const scaleKernelMode = () => envChoice('FLOWTENSOR_SCALE_KERNEL', ['wasm', 'js'], 'kernel', 'wasm');

/** f64 slots per feature record. */
export const REC_F64 = REC / 8;
/** A 32-bit WebAssembly memory's largest size. */
const MEMORY_MAX = 65536 * 65536;
/** Rows an outside array is copied in at a time (at most this many bytes). */
const CHUNK_BYTES = 4 << 20;

export class ScaleKernel {
  private constructor(private ex: Exports) {}

  private static made: ScaleKernel | null | undefined;
  /** This thread's kernel, or null where it does not load or FLOWTENSOR_SCALE_KERNEL=js. */
  static get(): ScaleKernel | null {
    if (ScaleKernel.made === undefined) {
      const mode = scaleKernelMode(); // a wrong value throws, every time it is asked
      ScaleKernel.made = null;
      if (mode === 'wasm')
        try {
          const mod = new WA.Module(fs.readFileSync(new URL('./scale.wasm', import.meta.url)));
          const ex = new WA.Instance(mod, {}).exports as Exports;
          ex.init(); // the table of logs of small whole numbers (~1 ms)
          ScaleKernel.made = new ScaleKernel(ex);
        } catch {
          /* the JavaScript loops give the same bits */
        }
    }
    return ScaleKernel.made;
  }

  /** The kernel, for F features; null above FEATURES_MAX (the JavaScript loops take those). */
  static forFeatures(F: number): ScaleKernel | null {
    return F <= FEATURES_MAX ? ScaleKernel.get() : null;
  }

  /** Whether region(bytes) fits in a WebAssembly memory (4 GiB in all); callers keep larger data in JavaScript. */
  static fits(bytes: number): boolean {
    return DATA_AT + bytes <= MEMORY_MAX;
  }

  /**
   * `bytes` bytes of the kernel's memory where rows go (grown to hold them): a file read here is
   * scaled in place, without a copy. Views taken before a call that grows are no longer valid.
   */
  region(bytes: number): Uint8Array {
    const mem = this.ex.memory;
    const need = DATA_AT + bytes;
    if (mem.buffer.byteLength < need) mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
    return new Uint8Array(mem.buffer, DATA_AT, bytes);
  }

  /** The per-feature records (REC_F64 f64 slots each: scalewat.ts SLOT). */
  records(F: number): Float64Array {
    if (F > FEATURES_MAX) throw new Error(`scale kernel: ${F} features; at most ${FEATURES_MAX} (callers check forFeatures)`);
    return new Float64Array(this.ex.memory.buffer, PARAMS, F * REC_F64);
  }

  /** Scale x's rows in place with the records' parameters; x in region() is scaled where it lies, any other array through a copy. */
  scale(x: Float32Array, F: number, clip: boolean): void {
    if (F > FEATURES_MAX || x.length % F !== 0) throw new Error(`scale kernel: ${x.length} values are not rows of ${F} features (at most ${FEATURES_MAX})`);
    const n = x.length / F;
    const mem = this.ex.memory;
    if (x.buffer === mem.buffer) {
      this.ex.scale(x.byteOffset, n, F, clip ? 1 : 0);
      return;
    }
    const chunk = Math.max(1, Math.floor(CHUNK_BYTES / (4 * F)));
    for (let r0 = 0; r0 < n; r0 += chunk) {
      const part = x.subarray(r0 * F, Math.min(n, r0 + chunk) * F);
      const at = this.region(part.byteLength);
      const view = new Float32Array(at.buffer, at.byteOffset, part.length);
      view.set(part);
      this.ex.scale(at.byteOffset, part.length / F, F, clip ? 1 : 0);
      part.set(view);
    }
  }

  /**
   * Copy rows (n × F values) into region() for train() and gather(), with room after them for rowsMax
   * row offsets (train's) and for gathering up to gatherMax values (offsets and rows); returns the view.
   */
  load(x: Float32Array, rowsMax: number, gatherMax = 0): Float32Array {
    const at = this.region(x.byteLength + 16 + 4 * rowsMax + 32 + 8 * gatherMax);
    const view = new Float32Array(at.buffer, at.byteOffset, x.length);
    view.set(x);
    this.loaded = { x: view, rowsMax, gatherMax };
    return view;
  }
  private loaded: { x: Float32Array; rowsMax: number; gatherMax: number } | null = null;

  /**
   * Rows of `x` (the view from the last load()) at value offsets offs[0..k), F values each, copied in
   * order into `into` from value `at` (pass 1: a split's rows of a batch, into its block).
   */
  gather(x: Float32Array, offs: Int32Array, k: number, F: number, into: Float32Array, at: number): void {
    const l = this.loaded;
    if (!l || l.x !== x || x.buffer !== this.ex.memory.buffer || k * F > l.gatherMax || k > offs.length || at + k * F > into.length)
      throw new Error(`scale kernel: gather of ${k} rows of ${F} outside what load() made room for`);
    const idxAt = Math.ceil((x.byteOffset + x.byteLength) / 16) * 16 + Math.ceil((4 * l.rowsMax) / 16) * 16;
    const dstAt = idxAt + Math.ceil((4 * k) / 16) * 16;
    const buf = this.ex.memory.buffer;
    for (let r = 0; r < k; r++) if (offs[r] < 0 || offs[r] + F > x.length) throw new Error(`scale kernel: gather offset ${offs[r]} outside the rows`);
    new Int32Array(buf, idxAt, k).set(offs.subarray(0, k));
    this.ex.rows(x.byteOffset, idxAt, k, 4 * F, dstAt);
    into.set(new Float32Array(buf, dstAt, k * F), at);
  }

  /**
   * Train statistics of k rows of `x` (a view from load()) whose value offsets are rows[0..k): min, max
   * and, with mom, the count and fixed-point sums per feature into the records. `rows` is copied
   * after x's values (load()'s room).
   */
  train(x: Float32Array, rows: Int32Array, k: number, F: number, mom: boolean): void {
    const mem = this.ex.memory;
    if (k > BLOCK_MAX || F > FEATURES_MAX) throw new Error(`scale kernel: ${k} rows of ${F} features at once; at most ${BLOCK_MAX} of ${FEATURES_MAX}`);
    const rowsAt = Math.ceil((x.byteOffset + x.byteLength) / 16) * 16;
    if (mem.buffer.byteLength < rowsAt + 4 * k) throw new Error('scale kernel: region() too small for the row offsets');
    new Int32Array(mem.buffer, rowsAt, k).set(rows.subarray(0, k));
    this.ex.train(x.byteOffset, rowsAt, k, F, mom ? 1 : 0);
  }

  /**
   * src/prepfile.ts pack in the kernel: the columns (F of n doubles) as a row-major float32 matrix into
   * x, and each row's fingerprint (src/hash.ts rowHash32, the same words) into hash ([2n]).
   */
  pack(cols: Float64Array[], label: Int32Array, n: number, x: Float32Array, hash: Uint32Array): void {
    const F = cols.length;
    if (F > FEATURES_MAX || label.length < n || x.length !== n * F || hash.length !== 2 * n || cols.some((c) => c.length < n))
      throw new Error(`scale kernel: pack of ${n} rows got arrays of other lengths`);
    const np = (n + 3) & ~3;
    const stride = 8 * np;
    const colsAt = 0;
    const labAt = colsAt + F * stride;
    const xAt = labAt + 4 * np;
    const hAt = xAt + 4 * np * F;
    const at = this.region(hAt + 8 * np).byteOffset;
    const buf = this.ex.memory.buffer;
    for (let f = 0; f < F; f++) {
      const c = new Float64Array(buf, at + colsAt + f * stride, np);
      c.set(cols[f].subarray(0, n));
      c.fill(0, n); // padding rows: hashed, never copied out
    }
    const lab = new Int32Array(buf, at + labAt, np);
    lab.set(label.subarray(0, n));
    lab.fill(0, n);
    this.ex.pack(at + colsAt, stride, at + labAt, n, F, at + xAt, at + hAt);
    x.set(new Float32Array(buf, at + xAt, n * F));
    hash.set(new Uint32Array(buf, at + hAt, 2 * n));
  }

  /** The kernel's signed log1p, and the one its loops use (whole numbers from the table): the tests compare both with Math.log1p. */
  slog1p(v: number, table = false): number {
    return table ? this.ex.slogFast(v) : this.ex.slog1p(v);
  }
}
