// Where the delimiters of a buffer are: the CSV parser's field index (stages/parse.ts). The WebAssembly
// SIMD scan (src/kernels/csvwat.ts) where it loads, else a JavaScript loop with the same result.
// The buffer is copied into the module's memory (one memcpy per chunk) and scanned 16 bytes at a time;
// the positions are read back through a view that stays valid until the next call.
import fs from 'node:fs';

interface Exports {
  memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  delims(p: number, len: number, d: number, out: number): number;
}
const WA = (globalThis as unknown as { WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (m: object, imports: object) => { exports: unknown } } }).WebAssembly;

let module: object | null | undefined;
function load(): Exports | null {
  if (module === undefined) {
    if (process.env.FLOWTENSOR_CSV_SCAN === 'js') module = null;
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
  private ex: Exports | null;
  /** simd false: the JavaScript loop (the tests compare the two). */
  constructor(readonly delimiter: number, simd = true) {
    this.ex = simd ? load() : null;
  }

  /** Whether the WebAssembly scan runs (else the JavaScript loop). */
  get simd(): boolean {
    return this.ex !== null;
  }

  scan(buf: Uint8Array): void {
    const len = buf.length;
    const ex = this.ex;
    if (ex) {
      const out = (len + 15) & ~15;
      const need = out + 4 * len + 32; // the scan may write up to four positions past the last
      const mem = ex.memory;
      if (mem.buffer.byteLength < need) mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
      new Uint8Array(mem.buffer, 0, len).set(buf);
      this.count = ex.delims(0, len, this.delimiter, out);
      this.pos = new Int32Array(mem.buffer, out, this.count);
      return;
    }
    if (this.pos.length < len) this.pos = new Int32Array(Math.max(len, 1024));
    const pos = this.pos;
    const d = this.delimiter;
    let n = 0;
    for (let i = 0; i < len; i++) if (buf[i] === d) pos[n++] = i;
    this.count = n;
  }
}
