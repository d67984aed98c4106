// The CSV parser's kernels (stages/parse.ts): where the delimiters of a buffer are, and the plain
// decimal cells of a row. The WebAssembly build (src/kernels/csvwat.ts) where it loads; else a
// JavaScript loop gives the same positions and the parser reads every cell itself.
// The buffer is copied into the module's memory (one memcpy per chunk) and scanned 16 bytes at a time;
// positions and numbers are read back through views that stay valid until the next scan.
import fs from 'node:fs';
import { BUFFER_AT, FIELDS, FIELDS_MAX } from './csvwat.js';
import { envChoice } from '../errors.js';
import { WA, type WasmMemory } from './wasm.js';

interface Exports {
  memory: WasmMemory;
  delims(p: number, len: number, d: number, out: number): number;
  numbers(p: number, s: number, e: number, pos: number, c: number, hlen: number, nf: number, out: number, st: number): void;
}

/** FLOWTENSOR_CSV_SCAN: unset or `wasm` (the WebAssembly kernels where they load), `js` (JavaScript only). */
export const csvScanMode = () => envChoice('FLOWTENSOR_CSV_SCAN', ['wasm', 'js'], 'scan', 'wasm');

let module: object | null | undefined;
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
  return module ? (new WA.Instance(module, {}).exports as Exports) : null;
}

export class DelimiterIndex {
  /** Offsets in the last scanned buffer of every delimiter byte, ascending; valid up to `count`. */
  pos = new Int32Array(0);
  count = 0;
  /** After numbers(): the numeric fields' values, and 0 where a value is there (1: the caller parses that cell). */
  vals = new Float64Array(0);
  status = new Uint8Array(0);
  private ex: Exports | null;
  private nf = 0;
  private posAt = 0;
  private valsAt = 0;
  /** simd false: the JavaScript loop (the tests compare the two). */
  constructor(readonly delimiter: number, simd = true) {
    this.ex = simd ? load() : null;
  }

  /** The header's numeric fields (indices, ascending) that numbers() reads; false when it will not (no kernel, too many). */
  setFields(fields: Int32Array): boolean {
    const ex = this.ex;
    this.nf = 0;
    if (!ex || fields.length > FIELDS_MAX) return false;
    new Int32Array(ex.memory.buffer, FIELDS, fields.length).set(fields);
    this.nf = fields.length;
    return true;
  }

  scan(buf: Uint8Array): void {
    const len = buf.length;
    const ex = this.ex;
    if (ex) {
      const out = (BUFFER_AT + len + 15) & ~15;
      const vals = (out + 4 * len + 32 + 15) & ~15; // the scan may write up to four positions past the last
      const need = vals + 9 * FIELDS_MAX;
      const mem = ex.memory;
      if (mem.buffer.byteLength < need) mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
      new Uint8Array(mem.buffer, BUFFER_AT, len).set(buf);
      this.count = ex.delims(BUFFER_AT, len, this.delimiter, out);
      this.pos = new Int32Array(mem.buffer, out, this.count);
      this.posAt = out;
      this.valsAt = vals;
      this.vals = new Float64Array(mem.buffer, vals, FIELDS_MAX);
      this.status = new Uint8Array(mem.buffer, vals + 8 * FIELDS_MAX, FIELDS_MAX);
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
   * and which has hlen fields: into vals and status. False (nothing read) without the kernel.
   */
  numbers(s: number, e: number, c: number, hlen: number): boolean {
    if (this.nf === 0) return false;
    this.ex!.numbers(BUFFER_AT, s, e, this.posAt, c, hlen, this.nf, this.valsAt, this.valsAt + 8 * FIELDS_MAX);
    return true;
  }
}
