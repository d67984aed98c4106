// RMSprop and Adam on plain float32 arrays, for the training engine (src/trainengine.ts): the same
// update as tfjs's tf.train.rmsprop / tf.train.adam, operation by operation in float32 (each product,
// sum, square root and quotient rounded with Math.fround, as a float32 tensor op rounds it), so a step
// gives the weights tfjs would (a test compares them), and the same state under the same names
// (getWeights/setWeights: iter, then per variable rms and momentum, or m and v), so checkpoints are
// interchangeable with the tfjs path's optimizer.json/optimizer.bin.
import type { OptimizerName } from './train.js';
import { kernelInstance, type Exports } from './kernels/lstm.js';

const f = Math.fround;
/** tfjs's backend epsilon for float32 backends (wasm, cpu). */
const EPSILON = 1e-7;

export interface NamedState {
  name: string;
  shape: number[];
  values: Float32Array;
}

export class FlatOptimizer {
  learningRate: number;
  iterations = 0;
  /** rmsprop: mean squares, then moments; adam: first moments, then second moments (one array per variable each). */
  private a: Float32Array[];
  private b: Float32Array[];
  private accBeta1 = f(0.9);
  private accBeta2 = f(0.999);

  constructor(
    readonly kind: OptimizerName,
    learningRate: number,
    /** the model's variable names (tfjs's registered names), in the model's trainable-weight order */
    readonly names: string[],
    readonly shapes: number[][],
  ) {
    this.learningRate = learningRate;
    this.a = shapes.map((s) => new Float32Array(size(s)));
    this.b = shapes.map((s) => new Float32Array(size(s)));
  }

  /** One update of `weights` (the variables, in order) from `grads` (the same layout). */
  apply(weights: Float32Array[], grads: Float32Array[]): void {
    if (this.kind === 'rmsprop') this.rmsprop(weights, grads);
    else this.adam(weights, grads);
    this.iterations++;
  }

  private rmsprop(weights: Float32Array[], grads: Float32Array[]): void {
    // tfjs: ms' = ms·ρ + g²·(1 − ρ); mom' = mom·momentum + g·lr / sqrt(ms' + ε); w' = w − mom' (ρ 0.9, momentum 0)
    const rho = f(0.9);
    const omr = f(1 - 0.9);
    const mom = f(0);
    const lr = f(this.learningRate);
    const eps = f(EPSILON);
    for (let v = 0; v < weights.length; v++) {
      const w = weights[v];
      const g = grads[v];
      const ms = this.a[v];
      const mo = this.b[v];
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        const m2 = f(f(ms[i] * rho) + f(f(gi * gi) * omr));
        ms[i] = m2;
        const step = f(f(mo[i] * mom) + f(f(gi * lr) / f(Math.sqrt(f(m2 + eps)))));
        mo[i] = step;
        w[i] = f(w[i] - step);
      }
    }
  }

  private adam(weights: Float32Array[], grads: Float32Array[]): void {
    // tfjs: m' = m·β1 + g·(1 − β1); v' = v·β2 + g²·(1 − β2); w' = (m'/(1 − β1^t)) / (sqrt(v'/(1 − β2^t)) + ε) · (−lr) + w
    const b1 = f(0.9);
    const b2 = f(0.999);
    const omb1 = f(1 - 0.9);
    const omb2 = f(1 - 0.999);
    const c1 = f(1 - this.accBeta1);
    const c2 = f(1 - this.accBeta2);
    const nlr = f(-this.learningRate);
    const eps = f(EPSILON);
    for (let v = 0; v < weights.length; v++) {
      const w = weights[v];
      const g = grads[v];
      const m = this.a[v];
      const s = this.b[v];
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        const m1 = f(f(m[i] * b1) + f(gi * omb1));
        const s1 = f(f(s[i] * b2) + f(f(gi * gi) * omb2));
        m[i] = m1;
        s[i] = s1;
        const mh = f(m1 / c1);
        const sh = f(s1 / c2);
        w[i] = f(f(f(mh / f(f(Math.sqrt(sh)) + eps)) * nlr) + w[i]);
      }
    }
    this.accBeta1 = f(this.accBeta1 * b1);
    this.accBeta2 = f(this.accBeta2 * b2);
  }

  private k: { ex: Exports; n4: number; parts: number; offs: number[] } | null | undefined;

  /**
   * The training engine's step (src/parallel.ts): the gradient parts summed in part order into float32,
   * then apply(), on the flat weights, in the WebAssembly kernel (opt_step: SIMD, the same float32
   * operations as apply, so the same bits). Returns false, having changed nothing, where the kernel is
   * not available (the caller sums and calls apply).
   */
  applyParts(weights: Float32Array, parts: Float32Array[]): boolean {
    if (this.k === undefined) {
      const ex = kernelInstance();
      const total = this.shapes.reduce((a, s) => a + size(s), 0);
      const n4 = (total + 3) & ~3;
      if (ex) {
        const bytes = (3 + parts.length) * n4 * 4;
        if (ex.memory.buffer.byteLength < bytes) ex.memory.grow(Math.ceil((bytes - ex.memory.buffer.byteLength) / 65536));
      }
      const offs: number[] = [];
      let o = 0;
      for (const s of this.shapes) {
        offs.push(o);
        o += size(s);
      }
      this.k = ex ? { ex, n4, parts: parts.length, offs } : null;
    }
    const k = this.k;
    if (!k || parts.length !== k.parts || weights.length > k.n4) return false;
    const { ex, n4, offs } = k;
    const mem = new Float32Array(ex.memory.buffer, 0, (3 + parts.length) * n4);
    // w, a, b, then the parts, each n4 floats (the tail past the weights stays 0)
    mem.set(weights, 0);
    for (let v = 0; v < this.a.length; v++) {
      mem.set(this.a[v], n4 + offs[v]);
      mem.set(this.b[v], 2 * n4 + offs[v]);
    }
    for (let p = 0; p < parts.length; p++) mem.set(parts[p].subarray(0, weights.length), (3 + p) * n4);
    const adam = this.kind !== 'rmsprop';
    ex.opt_step(adam ? 1 : 0, n4, 3 * n4 * 4, parts.length, 0, n4 * 4, 2 * n4 * 4, f(this.learningRate), adam ? f(1 - this.accBeta1) : 0, adam ? f(1 - this.accBeta2) : 0);
    weights.set(mem.subarray(0, weights.length));
    for (let v = 0; v < this.a.length; v++) {
      this.a[v].set(mem.subarray(n4 + offs[v], n4 + offs[v] + this.a[v].length));
      this.b[v].set(mem.subarray(2 * n4 + offs[v], 2 * n4 + offs[v] + this.b[v].length));
    }
    if (adam) {
      this.accBeta1 = f(this.accBeta1 * f(0.9));
      this.accBeta2 = f(this.accBeta2 * f(0.999));
    }
    this.iterations++;
    return true;
  }

  /** The state as tfjs's optimizer.getWeights() names and orders it (iter first, as a float). */
  getWeights(): NamedState[] {
    const [sa, sb] = this.kind === 'rmsprop' ? ['rms', 'momentum'] : ['m', 'v'];
    return [
      { name: 'iter', shape: [], values: Float32Array.of(this.iterations) },
      ...this.a.map((values, i) => ({ name: `${this.names[i]}/${sa}`, shape: this.shapes[i], values })),
      ...this.b.map((values, i) => ({ name: `${this.names[i]}/${sb}`, shape: this.shapes[i], values })),
    ];
  }

  /** Restores getWeights()'s list (positions matter, as in tfjs; the shapes are checked). */
  setWeights(ws: { name: string; shape: number[]; values: Float32Array }[]): void {
    this.iterations = iterationsOf(ws[0]?.values[0] ?? 0);
    // a state saved before the first step holds only the iteration count (tfjs creates the rest lazily)
    if (ws.length === 1) {
      this.a = this.shapes.map((s) => new Float32Array(size(s)));
      this.b = this.shapes.map((s) => new Float32Array(size(s)));
    } else if (ws.length !== 1 + 2 * this.shapes.length) throw new Error(`optimizer state: ${ws.length} arrays for ${this.shapes.length} variables`);
    else for (let i = 0; i < this.shapes.length; i++) {
      for (const [dst, src] of [[this.a, ws[1 + i]], [this.b, ws[1 + this.shapes.length + i]]] as const) {
        if (src.values.length !== size(this.shapes[i])) throw new Error(`optimizer state: ${src.name} holds ${src.values.length} values, the variable ${size(this.shapes[i])}`);
        dst[i] = Float32Array.from(src.values);
      }
    }
    // as tfjs's Adam.setWeights: the bias corrections from the iteration count
    this.accBeta1 = f(Math.pow(0.9, this.iterations + 1));
    this.accBeta2 = f(Math.pow(0.999, this.iterations + 1));
  }
}

/**
 * The iteration count from the float32 that optimizer.bin holds. Older checkpoints wrote tfjs's int32
 * `iter` tensor's bytes into the float32 file: read back as a float, a count below 2^23 is a denormal
 * whose bits are the count.
 */
export function iterationsOf(v: number): number {
  if (v > 0 && v < 1.1754943508222875e-38) return new Int32Array(Float32Array.of(v).buffer)[0];
  return Number.isFinite(v) && v >= 0 ? Math.round(v) : 0;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
