// Runs the WebAssembly SIMD LSTM kernel (src/kernels/lstmwat.ts) for inference: h_T of an LSTM for a
// batch of rows, without the per-step tensors, tape and activation buffers of the trainable path.
// One instance per thread; its memory grows to the largest chunk it has seen and is reused.
import fs from 'node:fs';

export interface LstmKernel {
  /**
   * h_T [B][H] of an LSTM over x [B][T][P] (the seed model: P = 1), input kernel w [P][4H], bias
   * [4H], recurrent kernel u [H][4H]. H must be a multiple of 8 (kernelUnits).
   */
  forward(x: Float32Array, B: number, T: number, P: number, H: number, w: Float32Array, bias: Float32Array, u: Float32Array): Float32Array;
}

/** Rows per kernel call: bounds the module's memory. */
const CHUNK = 2048;

// lib "dom" is not in this project's TypeScript settings, so the few WebAssembly names used are typed here
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
const WA = (globalThis as unknown as { WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (m: object, imports: object) => { exports: unknown } } }).WebAssembly;

interface Exports {
  memory: WasmMemory;
  lstm: (B: number, T: number, P: number, H: number, x: number, w: number, bias: number, u: number, out: number, scratch: number) => void;
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
    forward(x, B, T, P, H, w, bias, u) {
      if (!kernelUnits(H)) throw new Error(`lstm kernel: units must be a multiple of 8, not ${H}`);
      const G = 4 * H;
      const perRow = T * P;
      const rows = Math.min(B, CHUNK);
      // layout: w | bias | u | x chunk | out chunk | scratch (h, c, pre)
      const wo = 0;
      const bo = align(wo + P * G * 4);
      const uo = align(bo + G * 4);
      const xo = align(uo + H * G * 4);
      const oo = align(xo + rows * perRow * 4);
      const so = align(oo + rows * H * 4);
      const need = so + (2 * H + G) * 4;
      const mem = ex.memory;
      if (mem.buffer.byteLength < need) mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
      const f = new Float32Array(mem.buffer);
      f.set(w.subarray(0, P * G), wo / 4);
      f.set(bias.subarray(0, G), bo / 4);
      f.set(u.subarray(0, H * G), uo / 4);
      const h = new Float32Array(B * H);
      for (let r0 = 0; r0 < B; r0 += rows) {
        const n = Math.min(rows, B - r0);
        f.set(x.subarray(r0 * perRow, (r0 + n) * perRow), xo / 4);
        ex.lstm(n, T, P, H, xo, wo, bo, uo, oo, so);
        h.set(f.subarray(oo / 4, oo / 4 + n * H), r0 * H);
      }
      return h;
    },
  };
}
