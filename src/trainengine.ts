// The training step without tfjs: the loss, accuracy and the gradients of every weight of the fused
// model (src/models.ts) for a slice of a batch, computed in the WebAssembly kernel (src/kernels/) and a
// little JavaScript (the softmax head). It needs no tfjs, so worker threads run it cheaply (src/parallel.ts).
//
// Forward: seed: the recurrence over F steps of one value (Dense(1→P) and the LSTM kernel folded, as in
// the fused layer); window: gx = x·W + b for all rows and steps as one blocked product (gemm_nn), then the
// recurrence from gx. Then logits = h_T·Wc + bc, softmax, class-weighted cross-entropy (tfjs's clipping
// of the probability and where it stops the gradient). Backward: the head, the recurrence in the kernel
// (dz of every step kept), then the weight gradients as blocked products: dU = Σ h_prevᵀ·dz, dW = Σ xᵀ·dz
// (window), the biases as column sums, and the seed model's folded projection unfolded in JavaScript.
//
// A batch is always cut into the same parts (batchParts) whatever the thread count, and the parts'
// gradients are summed in part order, so one thread and two compute bit for bit the same.
import { kernelInstance, kernelUnits, transposeInto, type Exports } from './kernels/lstm.js';
import type { ModelSpec } from './models.js';

export type EngineSpec = Pick<ModelSpec, 'kind' | 'features' | 'classes' | 'units' | 'project' | 'window'>;

/** Shapes of the fused model's weights, in its order (model.getWeights()). */
export function weightShapes(s: EngineSpec): number[][] {
  const H = s.units;
  const G = 4 * H;
  const C = s.classes;
  if (s.kind === 'seed') return [[1, s.project], [s.project], [s.project, G], [H, G], [G], [H, C], [C]];
  return [[s.features, G], [H, G], [G], [H, C], [C]];
}

/** Offsets of each weight in one flat array, and its length. */
export function flatLayout(shapes: number[][]): { offsets: number[]; size: number } {
  const offsets: number[] = [];
  let size = 0;
  for (const s of shapes) {
    offsets.push(size);
    size += s.reduce((a, b) => a * b, 1);
  }
  return { offsets, size };
}

/** Views of each weight in a flat array. */
export function splitFlat(flat: Float32Array, shapes: number[][]): Float32Array[] {
  const { offsets } = flatLayout(shapes);
  return shapes.map((s, i) => flat.subarray(offsets[i], offsets[i] + s.reduce((a, b) => a * b, 1)));
}

/**
 * Parts a batch of n rows is cut into: always PARTS (some empty when n < PARTS), independent of the
 * thread count. Threads take parts as they come free (src/parallel.ts), so a thread slowed by other work
 * on the machine takes fewer; the gradients are summed in part order, so the result does not depend on who
 * computed what.
 */
export const PARTS = 8;
export function batchParts(n: number): [number, number][] {
  const per = Math.ceil(n / PARTS);
  return Array.from({ length: PARTS }, (_, p) => [Math.min(n, p * per), Math.min(n, (p + 1) * per)]);
}

/** Whether the engine can train this model (the kernel loads and handles the unit count). */
export function engineAvailable(units: number): boolean {
  return kernelUnits(units) && kernelInstance() !== null;
}

const LO = Math.fround(1e-7);
const HI = Math.fround(1 - 1e-7);

export class TrainEngine {
  private ex: Exports;
  private H: number;
  private G: number;
  private T: number;
  private P: number;
  private shapes: number[][];
  private offsets: number[];
  private cap = -1;
  private o: Record<string, number> = {};
  private probs: Float64Array;
  /** classes and units rounded up to 16 (the blocked products' column tiles): the head runs padded with zeros */
  private Cp: number;
  private Hp: number;

  constructor(
    private s: EngineSpec,
    /** class weights (the weighted loss), or null for plain sparse cross-entropy */
    private classWeights: number[] | null,
  ) {
    const ex = kernelInstance();
    if (!ex || !kernelUnits(s.units)) throw new Error('training engine: the WebAssembly kernel is not available for this model');
    this.ex = ex;
    this.H = s.units;
    this.G = 4 * s.units;
    this.T = s.kind === 'seed' ? s.features : s.window;
    this.P = s.kind === 'seed' ? 1 : s.features;
    this.shapes = weightShapes(s);
    this.offsets = flatLayout(this.shapes).offsets;
    this.probs = new Float64Array(s.classes);
    this.Cp = Math.ceil(s.classes / 16) * 16;
    this.Hp = Math.ceil(s.units / 16) * 16;
  }

  /** Lay out the module's memory for parts of up to `rows` rows (grown, never shrunk). */
  private reserve(rows: number): void {
    if (rows <= this.cap) return;
    const { H, G, T, P } = this;
    const R = rows;
    const S = (T + 1) * R * H;
    const window = this.s.kind === 'window';
    const parts: [string, number][] = [
      ['u', H * G], ['ut', G * H], ['w', P * G], ['b', G], ['wc', H * this.Cp], ['bc', this.Cp], ['wct', this.Cp * this.Hp], ['zh', this.Hp],
      ['lg', R * this.Cp], ['dl', R * this.Cp], ['dwc', H * this.Cp], ['dbc', this.Cp], ['dyp', R * this.Hp],
      ['x', R * T * P], ['gx', window ? R * T * G : 0], ['act', T * R * G], ['c', S], ['tc', S], ['h', S], ['sf', 2 * H + G],
      ['dy', R * H], ['dz', R * T * G], ['hbt', R * T * H], ['du', H * G], ['dw', window ? P * G : 0], ['da', G], ['dc0', G], ['sb', 2 * H + G],
    ];
    let end = 0;
    for (const [name, n] of parts) {
      this.o[name] = end;
      end = (end + n * 4 + 15) & ~15;
    }
    const mem = this.ex.memory;
    if (mem.buffer.byteLength < end) mem.grow(Math.ceil((end - mem.buffer.byteLength) / 65536));
    this.cap = rows;
  }

  private f32(name: string, n: number): Float32Array {
    return new Float32Array(this.ex.memory.buffer, this.o[name], n);
  }

  private W: Float32Array[] | null = null;

  /** Takes the weights (flat, the model's order) for the parts that follow; they must not change until the next call. */
  setWeights(weights: Float32Array, rows: number): void {
    this.reserve(rows);
    const { H, G, P } = this;
    const seed = this.s.kind === 'seed';
    const W = (this.W = splitFlat(weights, this.shapes));
    const u = seed ? W[3] : W[1];
    this.f32('u', H * G).set(u);
    transposeInto(u, H, G, this.f32('ut', G * H));
    if (seed) {
      // Dense(1→P) then the LSTM kernel, folded: a = pk·K, c0 = pb·K + bias
      const [pk, pb, k, bias] = [W[0], W[1], W[2], W[4]];
      const a = this.f32('w', G);
      const c0 = this.f32('b', G);
      const Pp = this.s.project;
      for (let j = 0; j < G; j++) {
        let sa = 0;
        let sc = 0;
        for (let p = 0; p < Pp; p++) {
          sa += pk[p] * k[p * G + j];
          sc += pb[p] * k[p * G + j];
        }
        a[j] = sa;
        c0[j] = sc + bias[j];
      }
    } else {
      this.f32('w', P * G).set(W[0]);
      this.f32('b', G).set(W[2]);
    }
    // the head, padded to Cp classes: Wc [H][Cp], bc [Cp], Wcᵀ [Cp][Hp]
    const [wc, bc] = seed ? [W[5], W[6]] : [W[3], W[4]];
    const C = this.s.classes;
    const { Cp, Hp } = this;
    const wcp = this.f32('wc', H * Cp).fill(0);
    const wct = this.f32('wct', Cp * Hp).fill(0);
    for (let q = 0; q < H; q++)
      for (let c = 0; c < C; c++) {
        wcp[q * Cp + c] = wc[q * C + c];
        wct[c * Hp + q] = wc[q * C + c];
      }
    this.f32('bc', Cp).fill(0).set(bc);
    this.f32('zh', Hp).fill(0);
  }

  /**
   * Rows [r0, r1) of a batch (x: the batch's inputs, y its labels), with the weights of the last
   * setWeights. Writes the gradients of scale × Σ_rows loss into `grads` (flat, the model's weight
   * order) and returns scale × the summed loss and the number of rows predicted right. scale = 1 / the
   * batch's rows gives the batch mean.
   */
  part(x: Float32Array, y: Int32Array, r0: number, r1: number, scale: number, grads: Float32Array): { loss: number; correct: number } {
    grads.fill(0);
    const n = r1 - r0;
    if (n <= 0) return { loss: 0, correct: 0 };
    const W = this.W;
    if (!W) throw new Error('training engine: part() before setWeights()');
    this.reserve(n); // (setWeights reserved the batch's rows: no move)
    const { H, G, T, P, ex, o } = this;
    const C = this.s.classes;
    const seed = this.s.kind === 'seed';
    const D = splitFlat(grads, this.shapes);
    const per = T * P;
    this.f32('x', n * per).set(x.subarray(r0 * per, r1 * per));
    // c_0 = h_0 = 0
    new Float32Array(ex.memory.buffer, o.c, n * H).fill(0);
    new Float32Array(ex.memory.buffer, o.h, n * H).fill(0);
    if (seed) ex.lstm_train(0, n, T, 1, H, o.x, o.w, o.b, o.u, o.act, o.c, o.tc, o.h, o.sf);
    else {
      ex.gemm_nn(n * T, P, G, o.x, o.w, o.b, o.gx);
      ex.lstm_train(1, n, T, 0, H, o.gx, o.w, o.b, o.u, o.act, o.c, o.tc, o.h, o.sf);
    }
    // the head: logits = h_T·Wc + bc (blocked product), softmax and loss per row here, then dWc = h_Tᵀ·dl,
    // dbc = Σ dl and dh_T = dl·Wcᵀ as blocked products
    const { Cp, Hp } = this;
    const hT = o.h + T * n * H * 4;
    ex.gemm_nn(n, H, Cp, hT, o.wc, o.bc, o.lg);
    const lg = this.f32('lg', n * Cp);
    const dl = this.f32('dl', n * Cp);
    const probs = this.probs;
    const cw = this.classWeights;
    let loss = 0;
    let correct = 0;
    for (let i = 0; i < n; i++) {
      const li = i * Cp;
      let max = -Infinity;
      let best = 0;
      for (let c = 0; c < C; c++) {
        if (lg[li + c] > max) max = lg[li + c];
        if (lg[li + c] > lg[li + best]) best = c;
      }
      let sum = 0;
      for (let c = 0; c < C; c++) {
        const e = Math.exp(lg[li + c] - max);
        probs[c] = e;
        sum += e;
      }
      const yi = y[r0 + i];
      if (best === yi) correct++;
      for (let c = 0; c < C; c++) probs[c] /= sum;
      const py = Math.fround(probs[yi]);
      const wy = cw ? cw[yi] : 1;
      // tfjs clips the probability (weighted: to [1e-7, 1]; sparse: to [1e-7, 1 - 1e-7]) and no gradient passes a clipped value
      const inside = py >= LO && (cw !== null || py <= HI);
      loss += wy * -Math.log(Math.min(Math.max(py, LO), cw ? 1 : HI));
      const g = inside ? scale * wy : 0;
      for (let c = 0; c < C; c++) dl[li + c] = g * (probs[c] - (c === yi ? 1 : 0));
      for (let c = C; c < Cp; c++) dl[li + c] = 0;
    }
    this.f32('dwc', H * Cp).fill(0);
    ex.gemm_tn(n, H, Cp, hT, o.dl, o.dwc);
    this.f32('dbc', Cp).fill(0);
    ex.colsum(n, Cp, o.dl, o.dbc);
    const dwcp = this.f32('dwc', H * Cp);
    const dwc = seed ? D[5] : D[3];
    for (let q = 0; q < H; q++) for (let c = 0; c < C; c++) dwc[q * C + c] = dwcp[q * Cp + c];
    (seed ? D[6] : D[4]).set(this.f32('dbc', C));
    if (Hp === H) ex.gemm_nn(n, Cp, H, o.dl, o.wct, o.zh, o.dy);
    else {
      ex.gemm_nn(n, Cp, Hp, o.dl, o.wct, o.zh, o.dyp);
      const dyp = this.f32('dyp', n * Hp);
      const dy = this.f32('dy', n * H);
      for (let i = 0; i < n; i++) for (let q = 0; q < H; q++) dy[i * H + q] = dyp[i * Hp + q];
    }
    // the recurrence backwards; dz of every step into dz [n][T][G]
    if (seed) {
      this.f32('da', G).fill(0);
      this.f32('dc0', G).fill(0);
    }
    ex.lstm_train_bwd(seed ? 0 : 1, n, T, H, o.x, o.act, o.c, o.tc, o.h, o.ut, o.dy, o.du, o.dz, o.da, o.dc0, o.sb, 1);
    // dU = Σ h_prevᵀ·dz over rows and steps
    ex.steps_to_rows(n, T, H, o.h, o.hbt);
    const du = this.f32('du', H * G);
    du.fill(0);
    ex.gemm_tn(n * T, H, G, o.hbt, o.dz, o.du);
    if (seed) {
      D[3].set(du);
      // unfold a = pk·K, c0 = pb·K + bias
      const [pk, pb, k] = [W[0], W[1], W[2]];
      const da = this.f32('da', G);
      const dc0 = this.f32('dc0', G);
      const Pp = this.s.project;
      for (let p = 0; p < Pp; p++) {
        let sa = 0;
        let sc = 0;
        for (let j = 0; j < G; j++) {
          sa += da[j] * k[p * G + j];
          sc += dc0[j] * k[p * G + j];
          D[2][p * G + j] = pk[p] * da[j] + pb[p] * dc0[j];
        }
        D[0][p] = sa;
        D[1][p] = sc;
      }
      D[4].set(dc0);
    } else {
      D[1].set(du);
      const dw = this.f32('dw', P * G);
      dw.fill(0);
      ex.gemm_tn(n * T, P, G, o.x, o.dz, o.dw);
      D[0].set(dw);
      const db = this.f32('da', G); // scratch for the bias gradient
      db.fill(0);
      ex.colsum(n * T, G, o.dz, o.da);
      D[2].set(db);
    }
    return { loss: loss * scale, correct };
  }
}
