// Stage 3, ipsplit: IP address strings -> fixed-width numeric features, IPv4 and IPv6 alike.
// Encoding per address column C: C_h0..C_h7 = the eight 16-bit groups of the IPv6 address
// (IPv4 a.b.c.d as the IPv4-mapped ::ffff:a.b.c.d, so h6 = a*256+b, h7 = c*256+d),
// and C_family = 4 or 6, or 0 when the cell is missing or not an address (all groups 0 then).
import { bump, type Batch, type Counts } from '../src/batch.js';

export const IP_GROUPS = 8;

export function ipFeatureNames(col: string): string[] {
  const out: string[] = [];
  for (let k = 0; k < IP_GROUPS; k++) out.push(`${col}_h${k}`);
  out.push(`${col}_family`);
  return out;
}

/** A dotted-quad IPv4 address as an unsigned 32-bit value, or -1. The hot path of ipsplit. */
export function ipv4Value(s: string): number {
  const len = s.length;
  if (len < 7 || len > 15) return -1;
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      v = v * 256 + part;
      part = 0;
      digits = 0;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return v * 256 + part;
}

/** Parse dotted-quad IPv4 into out[at], out[at + 1]; returns false if not IPv4. */
function parseV4(s: string, out: Uint16Array, at: number): boolean {
  let part = 0;
  let digits = 0;
  let dots = 0;
  const o = [0, 0, 0, 0];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return false;
    } else if (c === 46) {
      if (digits === 0 || dots === 3) return false;
      o[dots++] = part;
      part = 0;
      digits = 0;
    } else return false;
  }
  if (dots !== 3 || digits === 0) return false;
  o[3] = part;
  out[at] = (o[0] << 8) | o[1];
  out[at + 1] = (o[2] << 8) | o[3];
  return true;
}

/** Parse an IPv6 address (with ::, embedded IPv4, zone id) into 8 groups. */
export function parseV6(s: string, out: Uint16Array): boolean {
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const dbl = s.indexOf('::');
  if (dbl !== s.lastIndexOf('::')) return false;
  const parseSide = (side: string, into: number[]): boolean => {
    if (side === '') return true;
    const parts = side.split(':');
    for (let k = 0; k < parts.length; k++) {
      const p = parts[k];
      if (k === parts.length - 1 && p.includes('.')) {
        const tmp = new Uint16Array(2);
        if (!parseV4(p, tmp, 0)) return false;
        into.push(tmp[0], tmp[1]);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return false;
      into.push(parseInt(p, 16));
    }
    return true;
  };
  const head: number[] = [];
  const tail: number[] = [];
  if (dbl >= 0) {
    if (!parseSide(s.slice(0, dbl), head) || !parseSide(s.slice(dbl + 2), tail)) return false;
    if (head.length + tail.length > 7) return false;
  } else {
    if (!parseSide(s, head) || head.length !== 8) return false;
  }
  out.fill(0);
  head.forEach((v, k) => (out[k] = v));
  tail.forEach((v, k) => (out[8 - tail.length + k] = v));
  return true;
}

/** Encode one address; returns family (4, 6) or 0. */
export function encodeIp(s: string | undefined, out: Uint16Array): number {
  out.fill(0);
  if (s === undefined) return 0;
  const t = s.trim();
  if (t === '') return 0;
  if (parseV4(t, out, 6)) {
    out[5] = 0xffff;
    return 4;
  }
  if (t.includes(':') && parseV6(t, out)) {
    // an IPv4-mapped IPv6 address is the same host as its IPv4 form
    const mapped = out[0] === 0 && out[1] === 0 && out[2] === 0 && out[3] === 0 && out[4] === 0 && out[5] === 0xffff;
    return mapped ? 4 : 6;
  }
  out.fill(0);
  return 0;
}

export interface IpSplit {
  counts: Counts;
  apply(b: Batch): Batch;
}

export function createIpSplit(ipColumns: string[]): IpSplit {
  const counts: Counts = { ipv4: {}, ipv6: {}, missing: {}, invalid: {} };
  const cache = new Map<string, Uint16Array>(); // address -> 8 groups + family
  return {
    counts,
    apply(b: Batch): Batch {
      const num = new Map(b.num);
      const str = new Map(b.str);
      // rebuild num in the order of the incoming columns, with each IP column expanded in place
      const ordered = new Map<string, Float64Array>();
      const ipSet = new Set(ipColumns.filter((c) => b.str.has(c)));
      const inserted = new Set<string>();
      const expand = (col: string) => {
        const vals = b.str.get(col)!;
        const names = ipFeatureNames(col);
        const cols = names.map(() => new Float64Array(b.n)); // zero-filled: missing needs no writes
        const h5 = cols[5];
        const h6 = cols[6];
        const h7 = cols[7];
        const fam = cols[IP_GROUPS];
        let v4 = 0, v6 = 0, miss = 0, bad = 0;
        for (let i = 0; i < b.n; i++) {
          const s = vals[i];
          if (s === undefined) {
            miss++;
            continue;
          }
          const a = ipv4Value(s);
          if (a >= 0) {
            h5[i] = 0xffff;
            h6[i] = Math.floor(a / 65536);
            h7[i] = a % 65536;
            fam[i] = 4;
            v4++;
            continue;
          }
          let enc = cache.get(s);
          if (enc === undefined) {
            enc = new Uint16Array(IP_GROUPS + 1);
            enc[IP_GROUPS] = encodeIp(s, enc);
            if (cache.size >= 100000) cache.clear();
            cache.set(s, enc);
          }
          const f = enc[IP_GROUPS];
          if (f === 0) {
            if (s.trim() === '') miss++;
            else bad++;
            continue;
          }
          if (f === 4) v4++;
          else v6++;
          for (let k = 0; k <= IP_GROUPS; k++) cols[k][i] = enc[k];
        }
        bump(counts, 'ipv4', col, v4);
        bump(counts, 'ipv6', col, v6);
        bump(counts, 'missing', col, miss);
        bump(counts, 'invalid', col, bad);
        names.forEach((nm, k) => ordered.set(nm, cols[k]));
        str.delete(col);
        inserted.add(col);
      };
      // keep the filter's column order: IP columns sit among numeric ones in config order
      const order = b.order;
      if (order) {
        for (const c of order) {
          if (ipSet.has(c)) expand(c);
          else if (num.has(c)) ordered.set(c, num.get(c)!);
        }
      } else {
        for (const [k, v] of num) ordered.set(k, v);
        for (const c of ipSet) expand(c);
      }
      for (const [k, v] of num) if (!ordered.has(k)) ordered.set(k, v);
      return { ...b, num: ordered, str, order: [...ordered.keys()] };
    },
  };
}
