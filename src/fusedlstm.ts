// FusedLSTM: an LSTM layer with the same weights and maths as tf.layers.lstm (gate order i, f, g, o;
// sigmoid gates, tanh cell, returns the last output), but faster on the wasm/cpu backends:
// - the input projection of all steps is one matMul (x·W + b for [B·T, P]);
// - training (call with training: true, as trainOnBatch does): the recurrence is a custom op whose
//   forward and backward passes run in the WebAssembly SIMD kernel (src/kernels/: lstm_train and
//   lstm_train_bwd). Without the kernel (not built, units not a multiple of 8,
//   FLOWTENSOR_LSTM_KERNEL=js) the gate maths of each step run fused in one JavaScript loop instead of
//   ~12 tensor ops, the per-step h·U and dz·Uᵀ products on the backend's matMul, and the
//   recurrent-kernel gradient is one matMul over all steps after the loop;
// - inference (predict, evaluate): the whole recurrence runs in the kernel's `lstm`, which keeps no
//   per-step state and has no gradient; without the kernel, inference takes the training path.
// Tests check outputs and gradients against tf.layers.lstm on the same weights, on both paths.
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from './backend.js';
import { lstmKernel, lstmTrainKernel, kernelUnits, transposeInto, type LstmKernel, type TrainState } from './kernels/lstm.js';

// exp without a call into C++ (V8 does not inline Math.exp): 2^(x·log2 e) split into 2^k from a
// table and 2^f, f in [-0.5, 0.5], from its degree-6 Taylor polynomial (relative error < 2e-7,
// below float32's 6e-8·ulp spacing in effect). This is most of the fused layer's speed on wasm/cpu.
const POW2 = new Float64Array(300);
for (let k = 0; k < 300; k++) POW2[k] = Math.pow(2, k - 150);
function fexp(x: number): number {
  if (x < -100) return 0;
  if (x > 100) x = 100;
  const t = x * 1.4426950408889634;
  const k = Math.floor(t + 0.5);
  const f = t - k;
  const p = 1 + f * (0.6931471805599453 + f * (0.2402265069591007 + f * (0.05550410866482158 + f * (0.009618129107628477 + f * (0.0013333558146428443 + f * 0.00015403530393381609)))));
  return p * POW2[k + 150];
}

/** act [T][B][4H] gate activations; c, h, tc = tanh(c) (kept for the backward pass) [T+1][B][H] */
interface Buffers extends TrainState {
  key: string;
  z: Float32Array; // [B][4H]
  dz: Float32Array; // [T][B][4H]
}

let bufs: Buffers | null = null;
/** Counts the JavaScript forward passes that filled `bufs` and its reallocations (the kernel counts its own). */
let jsGeneration = 0;
/** Scratch and per-step state of the JavaScript path, kept between batches of the same shape. */
function buffers(B: number, T: number, H: number): Buffers {
  const key = `${B}x${T}x${H}`;
  if (!bufs || bufs.key !== key) {
    const G = 4 * H;
    bufs = { key, act: new Float32Array(T * B * G), c: new Float32Array((T + 1) * B * H), h: new Float32Array((T + 1) * B * H), z: new Float32Array(B * G), dz: new Float32Array(T * B * G), tc: new Float32Array((T + 1) * B * H) };
    jsGeneration++; // whatever state the old buffers held is gone
  }
  return bufs;
}

/**
 * h_T of an LSTM with recurrent kernel u [H, 4H] whose per-step input projections are either
 * given, gx [B, T, 4H] (mode 'gx'), or computed inside the loop from one scalar per step,
 * x [B, T] · a [1, 4H] + c0 [1, 4H] (mode 'scalar': the seed model, where Dense(1→P) followed by
 * the LSTM kernel collapses to a = Wp·W, c0 = bp·W + b, so no [B, T, 4H] tensor is ever built).
 */
export function lstmRecurrence(tf: Tf, gx: TF.Tensor3D, u: TF.Tensor2D): TF.Tensor2D {
  return lstmCore(tf, 'gx', [gx, u]) as TF.Tensor2D;
}

export function lstmScalarRecurrence(tf: Tf, x: TF.Tensor2D, a: TF.Tensor2D, c0: TF.Tensor2D, u: TF.Tensor2D): TF.Tensor2D {
  return lstmCore(tf, 'scalar', [x, a, c0, u]) as TF.Tensor2D;
}

/**
 * Gate maths of one step for every row: pre = z (h·U) + the step's input projection, then the
 * activations, c and h. Module-level so that V8 keeps one optimised copy (a closure created per call
 * would start cold in the interpreter every batch).
 */
function stepForward(k: Buffers, t: number, B: number, T: number, H: number, z: Float32Array, scalar: boolean, gxa: Float32Array, av: Float32Array, cv: Float32Array, pre: Float32Array): void {
  const G = 4 * H;
  const ao0 = t * B * G;
  const cp0 = t * B * H;
  const cn0 = (t + 1) * B * H;
  const act = k.act;
  const cc = k.c;
  const hh = k.h;
  const tcs = k.tc;
  for (let b = 0; b < B; b++) {
    const zo = b * G;
    const ao = ao0 + b * G;
    const cp = cp0 + b * H;
    const cn = cn0 + b * H;
    if (scalar) {
      const xv = gxa[b * T + t];
      for (let j = 0; j < G; j++) pre[j] = z[zo + j] + xv * av[j] + cv[j];
    } else {
      const go = (b * T + t) * G;
      for (let j = 0; j < G; j++) pre[j] = z[zo + j] + gxa[go + j];
    }
    for (let q = 0; q < H; q++) {
      const i = 1 / (1 + fexp(-pre[q]));
      const f = 1 / (1 + fexp(-pre[H + q]));
      const g = 2 / (1 + fexp(-2 * pre[2 * H + q])) - 1; // tanh
      const o = 1 / (1 + fexp(-pre[3 * H + q]));
      act[ao + q] = i;
      act[ao + H + q] = f;
      act[ao + 2 * H + q] = g;
      act[ao + 3 * H + q] = o;
      const c = f * cc[cp + q] + i * g;
      const tc = 2 / (1 + fexp(-2 * c)) - 1;
      cc[cn + q] = c;
      tcs[cn + q] = tc;
      hh[cn + q] = o * tc;
    }
  }
}

/** Backward through the gate maths of step t: writes dz of the step, updates dc, accumulates dA/dc0 or dgx. */
function stepBackward(k: TrainState, dzAll: Float32Array, t: number, B: number, T: number, H: number, dh: Float32Array, dc: Float32Array, scalar: boolean, gxa: Float32Array, da: Float32Array, dc0: Float32Array, dgx: Float32Array): void {
  const G = 4 * H;
  const ao0 = t * B * G;
  const cp0 = t * B * H;
  const cn0 = (t + 1) * B * H;
  const act = k.act;
  const cc = k.c;
  const tcs = k.tc;
  for (let b = 0; b < B; b++) {
    const ao = ao0 + b * G;
    const cp = cp0 + b * H;
    const cn = cn0 + b * H;
    const dzo = ao0 + b * G;
    const ho = b * H;
    for (let q = 0; q < H; q++) {
      const i = act[ao + q];
      const f = act[ao + H + q];
      const g = act[ao + 2 * H + q];
      const o = act[ao + 3 * H + q];
      const tc = tcs[cn + q];
      const dcq = dc[ho + q] + dh[ho + q] * o * (1 - tc * tc);
      dzAll[dzo + q] = dcq * g * i * (1 - i);
      dzAll[dzo + H + q] = dcq * cc[cp + q] * f * (1 - f);
      dzAll[dzo + 2 * H + q] = dcq * i * (1 - g * g);
      dzAll[dzo + 3 * H + q] = dh[ho + q] * tc * o * (1 - o);
      dc[ho + q] = dcq * f;
    }
    if (scalar) {
      const xv = gxa[b * T + t];
      for (let j = 0; j < G; j++) {
        const d = dzAll[dzo + j];
        da[j] += xv * d;
        dc0[j] += d;
      }
    } else dgx.set(dzAll.subarray(dzo, dzo + G), (b * T + t) * G);
  }
}

/** dst = src (as [rows, cols]) · w, on the backend's matMul. */
function matMulInto(tf: Tf, src: Float32Array, rows: number, cols: number, w: TF.Tensor2D, dst: Float32Array): void {
  const a = tf.tensor2d(src, [rows, cols]);
  const p = tf.matMul(a, w);
  dst.set(p.dataSync() as Float32Array);
  a.dispose();
  p.dispose();
}

function lstmCore(tf: Tf, mode: 'gx' | 'scalar', inputs: TF.Tensor[]): TF.Tensor {
  const op = tf.customGrad(((...args: TF.Tensor[]): { value: TF.Tensor; gradFunc: (dy: TF.Tensor) => TF.Tensor[] } => {
    const scalar = mode === 'scalar';
    const uT = args[scalar ? 3 : 1] as TF.Tensor2D;
    const G = uT.shape[1] as number;
    const H = G / 4;
    const B = args[0].shape[0] as number;
    const T = args[0].shape[1] as number;
    const gxa = args[0].dataSync() as Float32Array; // gx (mode gx) or x (mode scalar)
    const av = scalar ? (args[1].dataSync() as Float32Array) : new Float32Array(0);
    const cv = scalar ? (args[2].dataSync() as Float32Array) : new Float32Array(0);
    // both passes in the WebAssembly kernel when it loads, else the JavaScript gate loop
    const tk = kernelUnits(H) ? lstmTrainKernel() : null;
    const uData = tk ? (uT.dataSync() as Float32Array) : null;
    const forward = (): TrainState => {
      if (tk) return scalar ? tk.forward(gxa, B, T, 1, H, uData!, av, cv) : tk.forward(gxa, B, T, 0, H, uData!);
      const k = buffers(B, T, H);
      const pre = new Float32Array(G);
      k.c.fill(0, 0, B * H);
      k.h.fill(0, 0, B * H);
      const z = k.z;
      for (let t = 0; t < T; t++) {
        if (t === 0) z.fill(0);
        else matMulInto(tf, k.h.subarray(t * B * H, (t + 1) * B * H), B, H, uT, z);
        stepForward(k, t, B, T, H, z, scalar, gxa, av, cv, pre);
      }
      jsGeneration++;
      return k;
    };
    const generation = () => (tk ? tk.generation : jsGeneration);
    const state = forward();
    const value = tf.tensor2d(state.h.slice(T * B * H, (T + 1) * B * H), [B, H]);
    const forwardGeneration = generation();
    const gradFunc = (dy: TF.Tensor) => {
      // one forward pass's state is kept (in the kernel's memory or the shared buffers): if another
      // forward pass ran since (a second application before the backward pass), compute it again
      const st = generation() === forwardGeneration ? state : forward();
      // gradients in the order of the op's inputs: (x, a, c0, u) or (gx, u)
      const grads = (du: TF.Tensor2D, da: Float32Array, dc0: Float32Array, dgx: Float32Array) =>
        scalar ? [tf.zerosLike(args[0]), tf.tensor2d(da, [1, G]), tf.tensor2d(dc0, [1, G]), du] : [tf.tensor3d(dgx, [B, T, G]), du];
      if (tk) {
        // the whole backward recurrence in the kernel
        const g = tk.backward(dy.dataSync() as Float32Array);
        const none = new Float32Array(0);
        return grads(tf.tensor2d(g.du, [H, G]), g.da ?? none, g.dc0 ?? none, g.dgx ?? none);
      }
      const kk = buffers(B, T, H); // st's own buffers, with the dz scratch
      const dh = Float32Array.from(dy.dataSync() as Float32Array);
      const dc = new Float32Array(B * H);
      const dgx = scalar ? new Float32Array(0) : new Float32Array(B * T * G);
      const da = new Float32Array(G);
      const dc0 = new Float32Array(G);
      // transposed operands are built once: the backend's matMul is fastest without transpose flags
      const uTt = tf.transpose(uT) as TF.Tensor2D;
      for (let t = T - 1; t >= 0; t--) {
        stepBackward(st, kk.dz, t, B, T, H, dh, dc, scalar, gxa, da, dc0, dgx);
        if (t > 0) matMulInto(tf, kk.dz.subarray(t * B * G, (t + 1) * B * G), B, G, uTt, dh);
      }
      uTt.dispose();
      // dU = Σ_t h_{t-1}ᵀ dz_t as one product: [H, T·B] × [T·B, 4H]
      const TB = T * B;
      const hPrevT = new Float32Array(H * TB);
      transposeInto(st.h, TB, H, hPrevT);
      const hPrev = tf.tensor2d(hPrevT, [H, TB]);
      const dzM = tf.tensor2d(kk.dz, [TB, G]);
      const du = tf.matMul(hPrev, dzM) as TF.Tensor2D;
      hPrev.dispose();
      dzM.dispose();
      return grads(du, da, dc0, dgx);
    };
    return { value, gradFunc };
  }) as unknown as Parameters<Tf['customGrad']>[0]);
  return (op as unknown as (...a: TF.Tensor[]) => TF.Tensor)(...inputs);
}

/** x·w whose gradients use explicit transposes: the wasm backend's matMul is slow with transpose flags. */
export function matMulPlain(tf: Tf, x: TF.Tensor2D, w: TF.Tensor2D): TF.Tensor2D {
  const op = tf.customGrad(((a: TF.Tensor, b: TF.Tensor) => ({
    value: tf.matMul(a as TF.Tensor2D, b as TF.Tensor2D),
    gradFunc: (dy: TF.Tensor) => [tf.matMul(dy as TF.Tensor2D, tf.transpose(b as TF.Tensor2D)), tf.matMul(tf.transpose(a as TF.Tensor2D), dy as TF.Tensor2D)],
  })) as unknown as Parameters<Tf['customGrad']>[0]);
  return (op as unknown as (a: TF.Tensor, b: TF.Tensor) => TF.Tensor2D)(x, w);
}

/** The inference kernel for this many units, or null when inference takes the custom-op path. */
function inferenceKernel(units: number, kwargs: TF.serialization.ConfigDict | undefined): LstmKernel | null {
  if (kwargs?.training === true || !kernelUnits(units)) return null;
  return lstmKernel().kernel;
}

const classes = new WeakMap<object, ReturnType<typeof make>>();
export function fusedLstmClass(tf: Tf) {
  let cls = classes.get(tf);
  if (!cls) {
    cls = make(tf);
    classes.set(tf, cls);
  }
  return cls;
}

function make(tf: Tf) {
  class FusedLSTM extends tf.layers.Layer {
    static className = 'FusedLSTM';
    units: number;
    seed: number;
    kernel!: TF.LayerVariable;
    recurrentKernel!: TF.LayerVariable;
    bias!: TF.LayerVariable;
    constructor(args: { units: number; seed?: number; name?: string; inputShape?: number[] }) {
      super({ name: args.name, inputShape: args.inputShape });
      this.units = args.units;
      this.seed = args.seed ?? 1;
    }
    override build(inputShape: TF.Shape | TF.Shape[]): void {
      const s = inputShape as number[];
      const P = s[s.length - 1];
      const G = 4 * this.units;
      this.kernel = this.addWeight('kernel', [P, G], 'float32', tf.initializers.glorotUniform({ seed: this.seed }));
      this.recurrentKernel = this.addWeight('recurrent_kernel', [this.units, G], 'float32', tf.initializers.glorotUniform({ seed: this.seed + 1 }));
      this.bias = this.addWeight('bias', [G], 'float32', tf.initializers.zeros());
      this.built = true;
    }
    override computeOutputShape(inputShape: TF.Shape | TF.Shape[]): TF.Shape {
      const s = inputShape as number[];
      return [s[0], this.units];
    }
    override call(inputs: TF.Tensor | TF.Tensor[], kwargs?: TF.serialization.ConfigDict): TF.Tensor {
      const kernel = inferenceKernel(this.units, kwargs);
      return tf.tidy(() => {
        const x = (Array.isArray(inputs) ? inputs[0] : inputs) as TF.Tensor3D;
        const [B, T, P] = x.shape;
        const G = 4 * this.units;
        const data = (t: TF.Tensor) => t.dataSync() as Float32Array;
        if (kernel) return tf.tensor2d(kernel.forward(data(x), B, T, P, this.units, data(this.kernel.read()), data(this.bias.read()), data(this.recurrentKernel.read())), [B, this.units]);
        const gx = tf.add(matMulPlain(tf, tf.reshape(x, [B * T, P]) as TF.Tensor2D, this.kernel.read() as TF.Tensor2D), this.bias.read()).reshape([B, T, G]) as TF.Tensor3D;
        return lstmRecurrence(tf, gx, this.recurrentKernel.read() as TF.Tensor2D);
      });
    }
    override getConfig(): TF.serialization.ConfigDict {
      return { ...super.getConfig(), units: this.units, seed: this.seed };
    }
  }
  /**
   * The seed model's Dense(1 -> P) per-step projection and LSTM in one layer: input [B, F] (F steps
   * of one value). Weights, in order: project kernel [1, P], project bias [P], LSTM kernel [P, 4H],
   * recurrent kernel [H, 4H], bias [4H] — the same as Reshape -> Dense -> LSTM, so weights copy across.
   */
  class FusedSeed extends tf.layers.Layer {
    static className = 'FusedSeedLSTM';
    units: number;
    project: number;
    seed: number;
    pk!: TF.LayerVariable;
    pb!: TF.LayerVariable;
    kernel!: TF.LayerVariable;
    recurrentKernel!: TF.LayerVariable;
    bias!: TF.LayerVariable;
    constructor(args: { units: number; project: number; seed?: number; name?: string; inputShape?: number[] }) {
      super({ name: args.name, inputShape: args.inputShape });
      this.units = args.units;
      this.project = args.project;
      this.seed = args.seed ?? 1;
    }
    override build(): void {
      const P = this.project;
      const G = 4 * this.units;
      this.pk = this.addWeight('project/kernel', [1, P], 'float32', tf.initializers.glorotUniform({ seed: this.seed }));
      this.pb = this.addWeight('project/bias', [P], 'float32', tf.initializers.zeros());
      this.kernel = this.addWeight('kernel', [P, G], 'float32', tf.initializers.glorotUniform({ seed: this.seed + 1 }));
      this.recurrentKernel = this.addWeight('recurrent_kernel', [this.units, G], 'float32', tf.initializers.glorotUniform({ seed: this.seed + 2 }));
      this.bias = this.addWeight('bias', [G], 'float32', tf.initializers.zeros());
      this.built = true;
    }
    override computeOutputShape(inputShape: TF.Shape | TF.Shape[]): TF.Shape {
      return [(inputShape as number[])[0], this.units];
    }
    override call(inputs: TF.Tensor | TF.Tensor[], kwargs?: TF.serialization.ConfigDict): TF.Tensor {
      const kernel = inferenceKernel(this.units, kwargs);
      return tf.tidy(() => {
        const x = (Array.isArray(inputs) ? inputs[0] : inputs) as TF.Tensor2D;
        const k = this.kernel.read() as TF.Tensor2D;
        const a = tf.matMul(this.pk.read() as TF.Tensor2D, k);
        const c0 = tf.add(tf.matMul(tf.reshape(this.pb.read(), [1, this.project]) as TF.Tensor2D, k), tf.reshape(this.bias.read(), [1, 4 * this.units])) as TF.Tensor2D;
        const u = this.recurrentKernel.read() as TF.Tensor2D;
        if (kernel) {
          // F steps of one input each: P = 1, input kernel a, bias c0
          const [B, T] = x.shape;
          const h = kernel.forward(x.dataSync() as Float32Array, B, T, 1, this.units, a.dataSync() as Float32Array, c0.dataSync() as Float32Array, u.dataSync() as Float32Array);
          return tf.tensor2d(h, [B, this.units]);
        }
        return lstmScalarRecurrence(tf, x, a as TF.Tensor2D, c0, u);
      });
    }
    override getConfig(): TF.serialization.ConfigDict {
      return { ...super.getConfig(), units: this.units, project: this.project, seed: this.seed };
    }
  }
  tf.serialization.registerClass(FusedLSTM);
  tf.serialization.registerClass(FusedSeed);
  return { FusedLSTM, FusedSeed };
}
