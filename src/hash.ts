// 64-bit row fingerprints (two independent 32-bit lanes) and an open-addressing set of them.

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Fingerprint of F float32 words starting at u[off] (one row of a row-major matrix) and a label. */
export function rowHash32(u: Uint32Array, off: number, F: number, label: number, out: Uint32Array): void {
  let h1 = 0x9e3779b9 ^ label;
  let h2 = 0x7f4a7c15 ^ Math.imul(label, 0x27d4eb2f);
  for (let f = 0; f < F; f++) {
    let w = u[off + f];
    if (w === 0x80000000) w = 0; // -0 and 0 hash alike
    h1 = Math.imul(h1 ^ w, 0xcc9e2d51);
    h1 = (h1 << 15) | (h1 >>> 17);
    h1 = Math.imul(h1, 0x1b873593) + 0xe6546b64;
    h2 = Math.imul(h2 ^ w, 0x85ebca6b);
    h2 = (h2 << 13) | (h2 >>> 19);
    h2 = Math.imul(h2, 0xc2b2ae35) + 0x561ccd1b;
  }
  out[0] = fmix(h1 ^ F);
  out[1] = fmix(h2 ^ Math.imul(F, 0x165667b1));
}

/**
 * rowHash32 of two consecutive rows (at u[off] and u[off + F], labels la and lb) into out[at..at+4):
 * the same arithmetic, interleaved so that the four multiply chains overlap.
 */
export function rowHash32x2(u: Uint32Array, off: number, F: number, la: number, lb: number, out: Uint32Array, at: number): void {
  let a1 = 0x9e3779b9 ^ la;
  let a2 = 0x7f4a7c15 ^ Math.imul(la, 0x27d4eb2f);
  let b1 = 0x9e3779b9 ^ lb;
  let b2 = 0x7f4a7c15 ^ Math.imul(lb, 0x27d4eb2f);
  for (let f = 0, o = off; f < F; f++, o++) {
    let w = u[o];
    let v = u[o + F];
    if (w === 0x80000000) w = 0; // -0 and 0 hash alike
    if (v === 0x80000000) v = 0;
    a1 = Math.imul(a1 ^ w, 0xcc9e2d51);
    b1 = Math.imul(b1 ^ v, 0xcc9e2d51);
    a2 = Math.imul(a2 ^ w, 0x85ebca6b);
    b2 = Math.imul(b2 ^ v, 0x85ebca6b);
    a1 = (a1 << 15) | (a1 >>> 17);
    b1 = (b1 << 15) | (b1 >>> 17);
    a2 = (a2 << 13) | (a2 >>> 19);
    b2 = (b2 << 13) | (b2 >>> 19);
    a1 = Math.imul(a1, 0x1b873593) + 0xe6546b64;
    b1 = Math.imul(b1, 0x1b873593) + 0xe6546b64;
    a2 = Math.imul(a2, 0xc2b2ae35) + 0x561ccd1b;
    b2 = Math.imul(b2, 0xc2b2ae35) + 0x561ccd1b;
  }
  out[at] = fmix(a1 ^ F);
  out[at + 1] = fmix(a2 ^ Math.imul(F, 0x165667b1));
  out[at + 2] = fmix(b1 ^ F);
  out[at + 3] = fmix(b2 ^ Math.imul(F, 0x165667b1));
}

/** Set of 64-bit fingerprints; 8 bytes per slot, grows at half load. */
export class FingerprintSet {
  private slots: Uint32Array;
  private mask: number;
  size = 0;
  constructor(initial = 1 << 16) {
    this.slots = new Uint32Array(initial * 2);
    this.mask = initial - 1;
  }
  /** Adds; returns true when it was already present. */
  addHas(lo: number, hi: number): boolean {
    if (lo === 0 && hi === 0) hi = 1;
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    const s = this.slots;
    let i = lo & this.mask;
    for (;;) {
      const a = s[2 * i];
      const b = s[2 * i + 1];
      if (a === 0 && b === 0) {
        s[2 * i] = lo;
        s[2 * i + 1] = hi;
        this.size++;
        return false;
      }
      if (a === lo && b === hi) return true;
      i = (i + 1) & this.mask;
    }
  }
  private grow(): void {
    const old = this.slots;
    const cap = (this.mask + 1) * 2;
    this.slots = new Uint32Array(cap * 2);
    this.mask = cap - 1;
    this.size = 0;
    for (let i = 0; i < old.length; i += 2) if (old[i] !== 0 || old[i + 1] !== 0) this.addHas(old[i], old[i + 1]);
  }
  get bytes(): number {
    return this.slots.byteLength;
  }
}

/** 64-bit hash of a string (two 32-bit lanes, as rowHash32) into out[at], out[at + 1]. */
export function strHash64(s: string, out: Uint32Array, at: number): void {
  let h1 = 0x9e3779b9;
  let h2 = 0x7f4a7c15;
  for (let i = 0; i < s.length; i++) {
    const w = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ w, 0xcc9e2d51);
    h1 = (h1 << 15) | (h1 >>> 17);
    h1 = Math.imul(h1, 0x1b873593) + 0xe6546b64;
    h2 = Math.imul(h2 ^ w, 0x85ebca6b);
    h2 = (h2 << 13) | (h2 >>> 19);
    h2 = Math.imul(h2, 0xc2b2ae35) + 0x561ccd1b;
  }
  out[at] = fmix(h1 ^ s.length);
  out[at + 1] = fmix(h2 ^ Math.imul(s.length, 0x165667b1));
}

/**
 * A map from nonzero 32-bit keys to int32 values, open addressing in typed arrays (no allocation per
 * entry; cleared in one fill). For per-row lookups where a Map's hashing and boxing cost too much.
 */
export class U32Map {
  private keys: Uint32Array;
  private vals: Int32Array;
  private mask: number;
  private size = 0;
  constructor(initial = 1 << 12) {
    this.keys = new Uint32Array(initial);
    this.vals = new Int32Array(initial);
    this.mask = initial - 1;
  }
  /** The value of key (nonzero), or -1. */
  get(key: number): number {
    const k = this.keys;
    for (let i = Math.imul(key, 0x9e3779b1) & this.mask; ; i = (i + 1) & this.mask) {
      if (k[i] === key) return this.vals[i];
      if (k[i] === 0) return -1;
    }
  }
  set(key: number, val: number): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    const k = this.keys;
    for (let i = Math.imul(key, 0x9e3779b1) & this.mask; ; i = (i + 1) & this.mask) {
      if (k[i] === key) {
        this.vals[i] = val;
        return;
      }
      if (k[i] === 0) {
        k[i] = key;
        this.vals[i] = val;
        this.size++;
        return;
      }
    }
  }
  clear(): void {
    if (this.size === 0) return;
    this.keys.fill(0);
    this.size = 0;
  }
  private grow(): void {
    const oldK = this.keys;
    const oldV = this.vals;
    const cap = oldK.length * 2;
    this.keys = new Uint32Array(cap);
    this.vals = new Int32Array(cap);
    this.mask = cap - 1;
    this.size = 0;
    for (let i = 0; i < oldK.length; i++) if (oldK[i] !== 0) this.set(oldK[i], oldV[i]);
  }
}
