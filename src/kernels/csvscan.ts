// The CSV parser's kernels (stages/parse.ts): where the delimiters of a buffer are, and the plain
// decimal cells of a row. The WebAssembly build (src/kernels/csvwat.ts) where it loads; else a
// JavaScript loop gives the same positions and the parser reads every cell itself.
// The buffer is copied into the module's memory (one memcpy per chunk) and scanned 16 bytes at a time;
// positions are read back through views that stay valid until the next scan. The numbers of a row go
// straight into a batch held in the module's memory, column by column (the parser copies each column
// out once per batch: a row's values are not copied one by one in JavaScript).
import fs from 'node:fs';
import { BUFFER_AT, FIELDS, FIELDS_MAX } from './csvwat.js';
import { envChoice } from '../errors.js';
import { WA, type WasmMemory } from './wasm.js';

interface Exports {
  memory: WasmMemory;
  delims(p: number, len: number, d: number, out: number): number;
  numbers(p: number, s: number, e: number, pos: number, c: number, hlen: number, nf: number, out: number, stride: number, st: number): number;
}

/** FLOWTENSOR_CSV_SCAN: unset or `wasm` (the WebAssembly kernels where they load), `js` (JavaScript only). */
export const csvScanMode = () => envChoice('FLOWTENSOR_CSV_SCAN', ['wasm', 'js'], 'scan', 'wasm');

let module: object | null | undefined;
/** Instances given back by parsers that are done (release()): the next parser of the thread reuses one, its memory grown and touched already. */
const spare: Exports[] = [];
function load(): Exports | null {
  if (module === undefined) {
    if (csvScanMode() === 'js') module = null;
    else
      try {
        module = new WA.Module(fs.readFileSync(new URL('./csv.wasm', import.meta.url)));
      } catch {
        module = null; // the JavaScript loop below gives the same positions
      }
  }
  return module ? (spare.pop() ?? (new WA.Instance(module, {}).exports as Exports)) : null;
}

export class DelimiterIndex {
  /** Offsets in the last scanned buffer of every delimiter byte, ascending; valid up to `count`. */
  pos = new Int32Array(0);
  count = 0;
  /**
   * The batch of numbers, column-major: field k of row i at stage[k · rows + i]; valid (a view of the
   * module's memory) until the next scan. After numbers(): status[k] = 0 where the kernel wrote the
   * value, 1 where the caller parses that cell (and writes its value into the stage itself).
   */
  stage = new Float64Array(0);
  status = new Uint8Array(0);
  private ex: Exports | null;
  private nf = 0;
  private rows = 0;
  private bufAt = BUFFER_AT;
  private stageAt = BUFFER_AT;
  /** Where the last scanned buffer lies (bufAt: where the next one goes). */
  private scanAt = BUFFER_AT;
  private posAt = 0;
  private statusAt = 0;
  /** The end of what the last scan wrote (buffer, positions, status). */
  private spanEnd = 0;
  /** simd false: the JavaScript loop (the tests compare the two). */
  constructor(readonly delimiter: number, simd = true) {
    this.ex = simd ? load() : null;
  }

  /**
   * The header's numeric fields (indices, ascending) that numbers() reads into a batch of `rows` rows;
   * false when it will not (no kernel, too many fields).
   */
  setFields(fields: Int32Array, rows: number): boolean {
    const ex = this.ex;
    this.nf = 0;
    if (!ex || fields.length > FIELDS_MAX || fields.length * rows * 8 > 1 << 28) return false;
    new Int32Array(ex.memory.buffer, FIELDS, fields.length).set(fields);
    this.nf = fields.length;
    this.rows = rows;
    // the header is met inside a scanned buffer, whose rows are read from where it lies: the batch
    // goes above it, and the buffers after it above the batch
    this.stageAt = (Math.max(this.spanEnd, BUFFER_AT) + 15) & ~15;
    this.bufAt = (this.stageAt + fields.length * rows * 8 + 15) & ~15;
    const before = ex.memory.buffer;
    this.ensure(this.bufAt);
    const mem = ex.memory.buffer;
    if (mem !== before && this.spanEnd > 0) {
      // a grown memory has a new buffer: the scanned buffer's views follow
      this.pos = new Int32Array(mem, this.posAt, this.count);
      this.status = new Uint8Array(mem, this.statusAt, FIELDS_MAX);
    }
    this.stage = new Float64Array(mem, this.stageAt, this.nf * this.rows);
    return true;
  }

  /** Give the kernel's instance back for the next index of this thread; this one then scans no more. */
  release(): void {
    if (this.ex && spare.length < 4) spare.push(this.ex);
    this.ex = null;
    this.nf = 0;
  }

  private ensure(need: number): void {
    const mem = this.ex!.memory;
    if (mem.buffer.byteLength < need) mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
  }

  scan(buf: Uint8Array): void {
    const len = buf.length;
    const ex = this.ex;
    if (ex) {
      const at = this.bufAt;
      this.scanAt = at;
      const out = (at + len + 15) & ~15;
      const st = (out + 4 * len + 32 + 15) & ~15; // the scan may write up to four positions past the last
      this.ensure(st + FIELDS_MAX);
      const mem = ex.memory;
      new Uint8Array(mem.buffer, at, len).set(buf);
      this.count = ex.delims(at, len, this.delimiter, out);
      this.pos = new Int32Array(mem.buffer, out, this.count);
      this.posAt = out;
      this.statusAt = st;
      this.spanEnd = st + FIELDS_MAX;
      this.status = new Uint8Array(mem.buffer, st, FIELDS_MAX);
      // a grown memory has a new buffer: the batch's view follows (its contents stay)
      if (this.nf > 0) this.stage = new Float64Array(mem.buffer, this.stageAt, this.nf * this.rows);
      return;
    }
    if (this.pos.length < len) this.pos = new Int32Array(Math.max(len, 1024));
    const pos = this.pos;
    const d = this.delimiter;
    let n = 0;
    for (let i = 0; i < len; i++) if (buf[i] === d) pos[n++] = i;
    this.count = n;
  }

  /**
   * The numeric fields of the row [s, e) of the last scanned buffer, whose first delimiter is pos[c]
   * and which has hlen fields, into row `row` of the batch (and status): how many cells the caller
   * parses itself; -1 (nothing read) without the kernel.
   */
  numbers(s: number, e: number, c: number, hlen: number, row: number): number {
    if (this.nf === 0) return -1;
    return this.ex!.numbers(this.scanAt, s, e, this.posAt, c, hlen, this.nf, this.stageAt + 8 * row, 8 * this.rows, this.statusAt);
  }
}
