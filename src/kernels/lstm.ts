// Runs the WebAssembly SIMD LSTM kernel (src/kernels/lstmwat.ts) for inference: h_T of an LSTM for a
// batch of rows, without the per-step tensors, tape and activation buffers of the trainable path.
// One instance per thread; its memory grows to the largest chunk it has seen and is reused.
import fs from 'node:fs';

export interface LstmKernel {
  /**
   * h_T [B][H]. Scalar mode (a and c0 given): x [B][T], step input x·a + c0. Otherwise x = gx
   * [B][T][4H]. u [H][4H]. H must be a multiple of 8 (see usable()).
   */
  forward(x: Float32Array, B: number, T: number, H: number, u: Float32Array, a?: Float32Array, c0?: Float32Array): Float32Array;
}

/** Rows per kernel call: bounds the module's memory for the window model's [rows, T, 4H] input. */
const CHUNK = 2048;

// lib "dom" is not in this project's TypeScript settings, so the few WebAssembly names used are typed here
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
const WA = (globalThis as unknown as { WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (m: object, imports: object) => { exports: unknown } } }).WebAssembly;

interface Exports {
  memory: WasmMemory;
  lstm: (mode: number, B: number, T: number, H: number, x: number, a: number, c0: number, u: number, out: number, scratch: number) => void;
}

let loaded: { kernel: LstmKernel | null; reason: string } | undefined;

/** The kernel, or null with the reason (no .wasm built, no WebAssembly SIMD here, FLOWTENSOR_LSTM_KERNEL=js). */
export function lstmKernel(): { kernel: LstmKernel | null; reason: string } {
  if (loaded) return loaded;
  if (process.env.FLOWTENSOR_LSTM_KERNEL === 'js') return (loaded = { kernel: null, reason: 'FLOWTENSOR_LSTM_KERNEL=js' });
  try {
    const bytes = fs.readFileSync(new URL('./lstm.wasm', import.meta.url));
    const ex = new WA.Instance(new WA.Module(bytes), {}).exports as unknown as Exports;
    loaded = { kernel: makeKernel(ex), reason: 'WebAssembly SIMD kernel' };
  } catch (e) {
    loaded = { kernel: null, reason: `WebAssembly kernel not loaded (${(e as Error).message.split('\n')[0]}); JavaScript gate loop` };
  }
  return loaded;
}

/** Whether the kernel handles this unit count. */
export const kernelUnits = (H: number) => H % 8 === 0 && H > 0;

function makeKernel(ex: Exports): LstmKernel {
  const align = (n: number) => (n + 15) & ~15;
  return {
    forward(x, B, T, H, u, a, c0) {
      if (!kernelUnits(H)) throw new Error(`lstm kernel: units must be a multiple of 8, not ${H}`);
      const G = 4 * H;
      const scalar = a !== undefined && c0 !== undefined;
      const perRow = scalar ? T : T * G;
      const rows = Math.min(B, CHUNK);
      // layout: u | a | c0 | x chunk | out chunk | scratch (h, c, pre)
      const uo = 0;
      const ao = align(uo + H * G * 4);
      const co = align(ao + G * 4);
      const xo = align(co + G * 4);
      const oo = align(xo + rows * perRow * 4);
      const so = align(oo + rows * H * 4);
      const need = so + (2 * H + G) * 4;
      const mem = ex.memory;
      if (mem.buffer.byteLength < need) mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
      const f = new Float32Array(mem.buffer);
      f.set(u.subarray(0, H * G), uo / 4);
      if (scalar) {
        f.set(a.subarray(0, G), ao / 4);
        f.set(c0.subarray(0, G), co / 4);
      }
      const h = new Float32Array(B * H);
      for (let r0 = 0; r0 < B; r0 += rows) {
        const n = Math.min(rows, B - r0);
        f.set(x.subarray(r0 * perRow, (r0 + n) * perRow), xo / 4);
        ex.lstm(scalar ? 0 : 1, n, T, H, xo, ao, co, uo, oo, so);
        h.set(f.subarray(oo / 4, oo / 4 + n * H), r0 * H);
      }
      return h;
    },
  };
}
