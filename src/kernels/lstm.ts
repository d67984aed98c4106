// Runs the WebAssembly SIMD LSTM kernels (src/kernels/lstmwat.ts): `lstm` for inference (h_T only,
// no per-step state kept), and for training `lstm_train`, the forward pass, which keeps the gate
// activations, c, tanh(c) and h of every step, and `lstm_train_bwd`, the backward pass from them.
// The module is compiled once per thread; inference and training each get their own instance (and
// memory), which grows to the largest batch seen and is reused.
import fs from 'node:fs';
import v8 from 'node:v8';
import { envChoice } from '../errors.js';
import { WA, type WasmMemory } from './wasm.js';

export interface LstmKernel {
  /**
   * h_T [B][H] of an LSTM over x [B][T][P] (the seed model: P = 1), input kernel w [P][4H], bias
   * [4H], recurrent kernel u [H][4H]. H must be a multiple of 8 (kernelUnits).
   */
  forward(x: Float32Array, B: number, T: number, P: number, H: number, w: Float32Array, bias: Float32Array, u: Float32Array): Float32Array;
}

/** Per-step state of the last training forward pass, in the kernel's memory. */
export interface TrainState {
  act: Float32Array; // [T][B][4H] i, f, g, o
  c: Float32Array; // [T+1][B][H]
  tc: Float32Array; // [T+1][B][H] tanh(c)
  h: Float32Array; // [T+1][B][H]
}

export interface LstmTrainKernel {
  /**
   * Forward pass of training. With w and bias: x [B][T][P] projected in the kernel (the seed model's
   * P = 1); without: x = gx [B][T][4H], the projected inputs. Returns views of the per-step state,
   * valid until the next call.
   */
  forward(x: Float32Array, B: number, T: number, P: number, H: number, u: Float32Array, w?: Float32Array, bias?: Float32Array): TrainState;
  /**
   * The backward pass through the recurrence of the last forward call, from dy [B][H], the gradient
   * of h_T: du [H][4H], the recurrent kernel's gradient, and for projected inputs (P = 1 only) da and
   * dc0 [4H], the gradients of w and bias; for given inputs dgx [B][T][4H] (a view, valid until the
   * next call).
   */
  backward(dy: Float32Array): { du: Float32Array; da?: Float32Array; dc0?: Float32Array; dgx?: Float32Array };
  /** Counts forward calls: a backward pass checks that the state is still its own. */
  readonly generation: number;
}

/** Rows per inference call: bounds the module's memory. */
const CHUNK = 2048;
/** The most bytes of projected inputs (rows × T × 4H floats) an inference call holds. */
export const GX_BYTES = 16 << 20;

export interface Exports {
  memory: WasmMemory;
  lstm: (mode: number, B: number, T: number, P: number, H: number, x: number, w: number, bias: number, u: number, out: number, scratch: number) => void;
  lstm_train: (mode: number, B: number, T: number, P: number, H: number, x: number, w: number, bias: number, u: number, act: number, c: number, tc: number, h: number, scratch: number) => void;
  lstm_train_bwd: (mode: number, B: number, T: number, H: number, x: number, act: number, c: number, tc: number, h: number, ut: number, dy: number, du: number, dgx: number, da: number, dc0: number, scratch: number, defer: number) => void;
  gemm_nn: (M: number, K: number, N: number, a: number, b: number, bias: number, c: number) => void;
  gemm_tn: (M: number, K: number, N: number, a: number, b: number, c: number) => void;
  colsum: (M: number, N: number, a: number, out: number) => void;
  steps_to_rows: (B: number, T: number, H: number, h: number, out: number) => void;
  opt_step: (kind: number, n: number, parts: number, P: number, w: number, a: number, b: number, lr: number, c1: number, c2: number) => void;
}

/** A fresh instance of the kernel module (its own memory), for the training engine (src/trainengine.ts); null without the kernel. */
export function kernelInstance(): Exports | null {
  const c = compile();
  return c.module ? instantiate(c.module) : null;
}

/** FLOWTENSOR_LSTM_KERNEL: unset or `fma` (fused multiply-add where it loads, else strict), `strict`, `js`. */
export const lstmKernelMode = () => envChoice('FLOWTENSOR_LSTM_KERNEL', ['fma', 'strict', 'js'], 'kernel', 'fma');

let compiled: { module: object | null; reason: string; fma: boolean } | undefined;
/**
 * The kernel module of this thread. By default the fused multiply-add build (lstm-fma.wasm: relaxed
 * SIMD's f32x4.relaxed_madd, one rounding per product-sum where the CPU has FMA, the same as strict
 * where it has not); Node 20's V8 keeps relaxed SIMD behind --experimental-wasm-relaxed-simd, which is
 * set here when the module does not validate without it (newer Node ships it on). Where that fails,
 * the strict build (a multiply, then an add: the same bits on every x86-64 and ARM machine). Every
 * thread makes the same choice (same environment, same flags), so one and two threads still agree bit
 * for bit.
 */
function compile(): { module: object | null; reason: string; fma: boolean } {
  if (compiled) return compiled;
  const mode = lstmKernelMode();
  if (mode === 'js') return (compiled = { module: null, reason: 'FLOWTENSOR_LSTM_KERNEL=js', fma: false });
  let why = 'FLOWTENSOR_LSTM_KERNEL=strict';
  if (mode === 'fma') {
    try {
      const bytes = fs.readFileSync(new URL('./lstm-fma.wasm', import.meta.url));
      if (!WA.validate(bytes)) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
      compiled = { module: new WA.Module(bytes), reason: 'WebAssembly SIMD kernel, fused multiply-add (relaxed SIMD)', fma: true };
      return compiled;
    } catch (e) {
      why = `no fused multiply-add: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  try {
    const bytes = fs.readFileSync(new URL('./lstm.wasm', import.meta.url));
    compiled = { module: new WA.Module(bytes), reason: `WebAssembly SIMD kernel, strict (${why})`, fma: false };
  } catch (e) {
    compiled = { module: null, reason: `WebAssembly kernel not loaded (${(e as Error).message.split('\n')[0]}); JavaScript gate loop`, fma: false };
  }
  return compiled;
}

/** Which kernel build this thread runs: 'fma', 'strict', or 'js' (none). */
export function kernelVariant(): 'fma' | 'strict' | 'js' {
  const c = compile();
  return c.module ? (c.fma ? 'fma' : 'strict') : 'js';
}
const instantiate = (module: object) => new WA.Instance(module, {}).exports as unknown as Exports;

let inference: { kernel: LstmKernel | null; reason: string } | undefined;
/** The inference kernel, or null with the reason (no .wasm built, no WebAssembly SIMD here, FLOWTENSOR_LSTM_KERNEL=js). */
export function lstmKernel(): { kernel: LstmKernel | null; reason: string } {
  if (!inference) {
    const c = compile();
    inference = { kernel: c.module ? inferenceKernel(instantiate(c.module)) : null, reason: c.reason };
  }
  return inference;
}

let training: LstmTrainKernel | null | undefined;
/** The training kernel (both passes), or null where the inference kernel is null too. */
export function lstmTrainKernel(): LstmTrainKernel | null {
  if (training === undefined) {
    const c = compile();
    training = c.module ? trainKernel(instantiate(c.module)) : null;
  }
  return training;
}

/** dst[q][r] = src[r][q] for src [rows][cols]. */
export function transposeInto(src: Float32Array, rows: number, cols: number, dst: Float32Array): void {
  for (let r = 0; r < rows; r++) for (let q = 0; q < cols; q++) dst[q * rows + r] = src[r * cols + q];
}

/** Whether the kernels handle this unit count. */
export const kernelUnits = (H: number) => H % 8 === 0 && H > 0;

/** Byte offsets of consecutive float arrays of the given lengths, 16-byte aligned, and the total. */
function layout(lengths: number[]): { at: number[]; end: number } {
  const at: number[] = [];
  let end = 0;
  for (const n of lengths) {
    at.push(end);
    end = (end + n * 4 + 15) & ~15;
  }
  return { at, end };
}

/** Grow the memory to `bytes` and return a float view of all of it. */
function floats(mem: WasmMemory, bytes: number): Float32Array {
  if (mem.buffer.byteLength < bytes) mem.grow(Math.ceil((bytes - mem.buffer.byteLength) / 65536));
  return new Float32Array(mem.buffer);
}

function checkUnits(H: number): void {
  if (!kernelUnits(H)) throw new Error(`lstm kernel: units must be a multiple of 8, not ${H}`);
}

function inferenceKernel(ex: Exports): LstmKernel {
  return {
    forward(x, B, T, P, H, w, bias, u) {
      checkUnits(H);
      const G = 4 * H;
      const perRow = T * P;
      // several inputs per step (the window model): projected for all rows and steps first as one blocked
      // product (gemm_nn, G a multiple of 16), then the recurrence from it; the same sums in the same order.
      // The projection takes T·4H floats a row: rows per call are cut so that it stays within GX_BYTES.
      const blocked = P > 1 && G % 16 === 0;
      const rows = Math.max(1, Math.min(B, CHUNK, blocked ? Math.floor(GX_BYTES / (T * G * 4)) : CHUNK));
      const {
        at: [wo, bo, uo, xo, oo, so, go],
        end,
      } = layout([P * G, G, H * G, rows * perRow, rows * H, 2 * H + G, blocked ? rows * T * G : 0]);
      const f = floats(ex.memory, end);
      f.set(w.subarray(0, P * G), wo / 4);
      f.set(bias.subarray(0, G), bo / 4);
      f.set(u.subarray(0, H * G), uo / 4);
      const h = new Float32Array(B * H);
      for (let r0 = 0; r0 < B; r0 += rows) {
        const n = Math.min(rows, B - r0);
        f.set(x.subarray(r0 * perRow, (r0 + n) * perRow), xo / 4);
        if (blocked) {
          ex.gemm_nn(n * T, P, G, xo, wo, bo, go);
          ex.lstm(1, n, T, P, H, go, wo, bo, uo, oo, so);
        } else ex.lstm(0, n, T, P, H, xo, wo, bo, uo, oo, so);
        h.set(f.subarray(oo / 4, oo / 4 + n * H), r0 * H);
      }
      return h;
    },
  };
}

function trainKernel(ex: Exports): LstmTrainKernel {
  let last: { B: number; T: number; H: number; projected: boolean; xo: number; ao: number; co: number; to: number; ho: number; uto: number; end: number } | null = null;
  // fresh views each time: the memory may have grown since
  const view = (o: number, n: number) => new Float32Array(ex.memory.buffer, o, n);
  let generation = 0;
  return {
    get generation() {
      return generation;
    },
    backward(dy) {
      if (!last) throw new Error('lstm kernel: no forward pass yet');
      const { B, T, H, projected } = last;
      const G = 4 * H;
      const {
        at: [dyo, duo, dao, dco, so, dgo],
        end,
      } = layout([B * H, H * G, G, G, 2 * H + G, projected ? 0 : B * T * G]);
      const base = last.end;
      const f = floats(ex.memory, base + end);
      f.set(dy.subarray(0, B * H), (base + dyo) / 4);
      f.fill(0, (base + duo) / 4, (base + dco) / 4 + G); // du, da, dc0 accumulate
      ex.lstm_train_bwd(projected ? 0 : 1, B, T, H, last.xo, last.ao, last.co, last.to, last.ho, last.uto, base + dyo, base + duo, base + dgo, base + dao, base + dco, base + so, 0);
      const du = view(base + duo, H * G).slice();
      if (projected) return { du, da: view(base + dao, G).slice(), dc0: view(base + dco, G).slice() };
      return { du, dgx: view(base + dgo, B * T * G) };
    },
    forward(x, B, T, P, H, u, w, bias) {
      checkUnits(H);
      const G = 4 * H;
      const projected = w !== undefined && bias !== undefined;
      const xLen = B * T * (projected ? P : G);
      const S = (T + 1) * B * H;
      if (projected && P !== 1) throw new Error('lstm kernel: projected inputs are trained with P = 1 only (the seed model)');
      const {
        at: [wo, bo, uo, xo, ao, co, to, ho, so, uto],
        end,
      } = layout([projected ? P * G : 0, G, H * G, xLen, T * B * G, S, S, S, G, G * H]);
      const f = floats(ex.memory, end);
      if (projected) {
        f.set(w.subarray(0, P * G), wo / 4);
        f.set(bias.subarray(0, G), bo / 4);
      }
      f.set(u.subarray(0, H * G), uo / 4);
      f.set(x.subarray(0, xLen), xo / 4);
      f.fill(0, co / 4, co / 4 + B * H); // c_0 = 0
      f.fill(0, ho / 4, ho / 4 + B * H); // h_0 = 0
      ex.lstm_train(projected ? 0 : 1, B, T, projected ? P : 0, H, xo, wo, bo, uo, ao, co, to, ho, so);
      // U transposed [4H][H], for the backward pass's dz·Uᵀ
      transposeInto(u, H, G, f.subarray(uto / 4, uto / 4 + G * H));
      last = { B, T, H, projected, xo, ao, co, to, ho, uto, end };
      generation++;
      return { act: view(ao, T * B * G), c: view(co, S), tc: view(to, S), h: view(ho, S) };
    },
  };
}
