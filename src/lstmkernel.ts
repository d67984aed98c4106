// A fused LSTM forward/backward in plain JavaScript over Float32Arrays (gate order i, f, g, o as
// Keras/tfjs; sigmoid gates, tanh cell). Inputs are the precomputed input projections of every
// step, gx [B, T, 4H], and the recurrent kernel U [H, 4H]; the output is the last h [B, H].
// Used by the FusedLSTM layer (src/fusedlstm.ts), on rows [b0, b1) so that threads can share a batch.

export interface LstmCache {
  B: number;
  T: number;
  H: number;
  /** gates after activation per step [T][B][4H] */
  act: Float32Array;
  /** cell state per step [T+1][B][H] (index 0 = zeros) */
  c: Float32Array;
  /** hidden state per step [T+1][B][H] */
  h: Float32Array;
}

export function newCache(B: number, T: number, H: number): LstmCache {
  return { B, T, H, act: new Float32Array(T * B * 4 * H), c: new Float32Array((T + 1) * B * H), h: new Float32Array((T + 1) * B * H) };
}

const sig = (x: number) => 1 / (1 + Math.exp(-x));

/** Forward over batch rows [b0, b1). Writes the cache; returns nothing (h of step T is in the cache). */
export function lstmForward(gx: Float32Array, U: Float32Array, k: LstmCache, b0: number, b1: number): void {
  const { B, T, H } = k;
  const G = 4 * H;
  const z = new Float32Array(G);
  for (let t = 0; t < T; t++) {
    for (let b = b0; b < b1; b++) {
      const hp = (t * B + b) * H; // h_{t-1}
      const gxo = (b * T + t) * G;
      for (let j = 0; j < G; j++) z[j] = gx[gxo + j];
      for (let q = 0; q < H; q++) {
        const hv = k.h[hp + q];
        if (hv === 0) continue;
        const uo = q * G;
        for (let j = 0; j < G; j++) z[j] += hv * U[uo + j];
      }
      const ao = (t * B + b) * G;
      const cp = (t * B + b) * H;
      const cn = ((t + 1) * B + b) * H;
      for (let q = 0; q < H; q++) {
        const i = sig(z[q]);
        const f = sig(z[H + q]);
        const g = Math.tanh(z[2 * H + q]);
        const o = sig(z[3 * H + q]);
        k.act[ao + q] = i;
        k.act[ao + H + q] = f;
        k.act[ao + 2 * H + q] = g;
        k.act[ao + 3 * H + q] = o;
        const c = f * k.c[cp + q] + i * g;
        k.c[cn + q] = c;
        k.h[cn + q] = o * Math.tanh(c);
      }
    }
  }
}

/**
 * Backward over rows [b0, b1) from dh of the last step [B, H]: writes dgx [B, T, 4H] for those rows
 * and adds the recurrent-kernel gradient into dU [H, 4H].
 */
export function lstmBackward(dhT: Float32Array, U: Float32Array, k: LstmCache, b0: number, b1: number, dgx: Float32Array, dU: Float32Array): void {
  const { B, T, H } = k;
  const G = 4 * H;
  const dh = new Float32Array(H);
  const dc = new Float32Array(H);
  const dz = new Float32Array(G);
  for (let b = b0; b < b1; b++) {
    for (let q = 0; q < H; q++) {
      dh[q] = dhT[b * H + q];
      dc[q] = 0;
    }
    for (let t = T - 1; t >= 0; t--) {
      const ao = (t * B + b) * G;
      const cp = (t * B + b) * H;
      const cn = ((t + 1) * B + b) * H;
      for (let q = 0; q < H; q++) {
        const i = k.act[ao + q];
        const f = k.act[ao + H + q];
        const g = k.act[ao + 2 * H + q];
        const o = k.act[ao + 3 * H + q];
        const tc = Math.tanh(k.c[cn + q]);
        const dcq = dc[q] + dh[q] * o * (1 - tc * tc);
        dz[q] = dcq * g * i * (1 - i);
        dz[H + q] = dcq * k.c[cp + q] * f * (1 - f);
        dz[2 * H + q] = dcq * i * (1 - g * g);
        dz[3 * H + q] = dh[q] * tc * o * (1 - o);
        dc[q] = dcq * f;
      }
      const go = (b * T + t) * G;
      for (let j = 0; j < G; j++) dgx[go + j] = dz[j];
      // dU += h_{t-1}^T dz ; dh = dz U^T
      for (let q = 0; q < H; q++) {
        const hv = k.h[cp + q];
        const uo = q * G;
        let s = 0;
        for (let j = 0; j < G; j++) {
          if (hv !== 0) dU[uo + j] += hv * dz[j];
          s += dz[j] * U[uo + j];
        }
        dh[q] = s;
      }
    }
  }
}
