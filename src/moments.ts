// Exact, order-free first and second moments per feature, for the standardising scaler.
// Each value t is rounded to a fixed point of 2^-24 and summed as an integer, so the totals do not
// depend on the order rows arrive in, nor on how the data was partitioned: two partial sums merge
// by integer addition (associative and commutative), which floating-point sums are not.
// Within a block the integers are summed in a Float64Array, exact while below 2^53: |t| <= 89
// (the signed log1p of the largest float32; values up to 128 are accepted), so |t|·2^24 < 2.2e9 and
// t²·2^24 < 2.8e11; 16,384 rows stay below 2^53 for both. Blocks are then added into BigInts.
const ONE = 2 ** 24;
/** The fixed-point unit: a value t is summed as Math.round(t · MOMENT_ONE), t² as Math.round(t · t · MOMENT_ONE). */
export const MOMENT_ONE = ONE;
const BLOCK_ROWS = 16384;
/** Largest |t| the exactness bound above allows for (the signed log1p of any float32 is below 89). */
const LIMIT = 128;
export const MOMENT_LIMIT = LIMIT;

export interface MomentsJson {
  /** fixed-point unit: values are summed as round(t · 2^bits) */
  bits: number;
  /** per feature: finite values counted */
  n: number[];
  /** per feature: Σ round(t · 2^bits), a decimal integer string */
  s1: string[];
  /** per feature: Σ round(t² · 2^bits), a decimal integer string */
  s2: string[];
}

export class Moments {
  readonly n: Float64Array;
  private b1: Float64Array;
  private b2: Float64Array;
  private blockRows = 0;
  private s1: bigint[];
  private s2: bigint[];

  constructor(readonly F: number) {
    this.n = new Float64Array(F);
    this.b1 = new Float64Array(F);
    this.b2 = new Float64Array(F);
    this.s1 = new Array<bigint>(F).fill(0n);
    this.s2 = new Array<bigint>(F).fill(0n);
  }

  /** Add one row's transformed values t[off..off+F); non-finite values are skipped (not counted). */
  addRow(t: ArrayLike<number>, off: number): void {
    const F = this.F;
    for (let f = 0; f < F; f++) {
      const v = t[off + f];
      if (v - v !== 0) continue;
      if (v > LIMIT || v < -LIMIT) throw new Error(`moments: ${v} is outside ±${LIMIT} (give log-scale values)`);
      this.n[f]++;
      this.b1[f] += Math.round(v * ONE);
      this.b2[f] += Math.round(v * v * ONE);
    }
    if (++this.blockRows >= BLOCK_ROWS) this.flush();
  }

  /** Add one value of feature f (callers that loop per value); `times` copies of it go straight to the BigInts. */
  add(f: number, v: number, times = 1): void {
    if (v > LIMIT || v < -LIMIT) throw new Error(`moments: ${v} is outside ±${LIMIT} (give log-scale values)`);
    if (times !== 1) {
      this.n[f] += times;
      this.s1[f] += BigInt(Math.round(v * ONE)) * BigInt(times);
      this.s2[f] += BigInt(Math.round(v * v * ONE)) * BigInt(times);
      return;
    }
    this.n[f]++;
    this.b1[f] += Math.round(v * ONE);
    this.b2[f] += Math.round(v * v * ONE);
  }

  /**
   * Add `count` values of feature f whose fixed-point terms (Math.round(t · MOMENT_ONE) and
   * Math.round(t · t · MOMENT_ONE), |t| <= 128) the caller summed itself: s1 and s2. Only inside
   * beginRows(k), with count <= k <= 256, so that the caller's sums are exact too (< 2^45). The same
   * totals as add() per value: every partial sum is an exact integer.
   */
  addSums(f: number, count: number, s1: number, s2: number): void {
    this.n[f] += count;
    this.b1[f] += s1;
    this.b2[f] += s2;
  }

  /**
   * Callers using add() mark the end of each row, so that blocks stay below 2^53. `>=`: after
   * beginRows has filled a block to exactly BLOCK_ROWS, the next row must flush it (at most
   * BLOCK_ROWS + 1 rows a block; |v| <= 128 keeps 2^15 rows exact).
   */
  endRow(): void {
    if (++this.blockRows >= BLOCK_ROWS) this.flush();
  }

  /**
   * Callers that add k rows feature by feature (add() per value, a column at a time) say so first:
   * the block is flushed before it could pass BLOCK_ROWS rows (k <= BLOCK_ROWS).
   */
  beginRows(k: number): void {
    if (this.blockRows + k > BLOCK_ROWS) this.flush();
    this.blockRows += k;
  }

  private flush(): void {
    for (let f = 0; f < this.F; f++) {
      if (this.b1[f] !== 0) this.s1[f] += BigInt(this.b1[f]);
      if (this.b2[f] !== 0) this.s2[f] += BigInt(this.b2[f]);
    }
    this.b1.fill(0);
    this.b2.fill(0);
    this.blockRows = 0;
  }

  toJSON(): MomentsJson {
    this.flush();
    return { bits: 24, n: Array.from(this.n), s1: this.s1.map(String), s2: this.s2.map(String) };
  }
}

/** Merge partial moments (any number, any order: the result is the same). */
export function mergeMoments(parts: MomentsJson[]): MomentsJson {
  if (parts.length === 0) throw new Error('mergeMoments: nothing to merge');
  const F = parts[0].n.length;
  for (const p of parts) if (p.n.length !== F || p.bits !== parts[0].bits) throw new Error('mergeMoments: partial moments of different shapes');
  const n = new Array<number>(F).fill(0);
  const s1 = new Array<bigint>(F).fill(0n);
  const s2 = new Array<bigint>(F).fill(0n);
  for (const p of parts)
    for (let f = 0; f < F; f++) {
      n[f] += p.n[f];
      s1[f] += BigInt(p.s1[f]);
      s2[f] += BigInt(p.s2[f]);
    }
  return { bits: parts[0].bits, n, s1: s1.map(String), s2: s2.map(String) };
}

/** Mean and population standard deviation per feature (0 and 0 where no value was counted). */
export function meanStd(m: MomentsJson): { mean: number[]; std: number[] } {
  const one = 2 ** m.bits;
  const mean: number[] = [];
  const std: number[] = [];
  for (let f = 0; f < m.n.length; f++) {
    const n = m.n[f];
    if (!(n > 0)) {
      mean.push(0);
      std.push(0);
      continue;
    }
    const mu = Number(BigInt(m.s1[f])) / one / n;
    const e2 = Number(BigInt(m.s2[f])) / one / n;
    mean.push(mu);
    // the fixed point rounds each t² by at most 2^-25: a variance below that is noise
    const v = e2 - mu * mu;
    std.push(v > 2 ** -22 ? Math.sqrt(v) : 0);
  }
  return { mean, std };
}
