// The unit that flows between stages: a batch of rows held column-wise.

/** Why a numeric cell did not hold a finite number as written. */
export type CellKind = 'empty' | 'nan' | 'text' | 'posinf' | 'neginf';

export interface CellIssue {
  row: number; // index within the batch
  col: string; // canonical column name
  kind: 'empty' | 'nan' | 'text';
  raw: string;
}

export interface Batch {
  /** Source file (as given) and the data-set layout detected from its header. */
  file: string;
  format: string;
  n: number;
  /** 1-based physical line number of each row in its source file. */
  line: Int32Array;
  /** Numeric columns: canonical name -> values (NaN where issues[] says why, ±Infinity as written). */
  num: Map<string, Float64Array>;
  /** String columns (IPs, label, ids): canonical name -> values. */
  str: Map<string, (string | undefined)[]>;
  /** Sparse list of numeric cells that were empty, NaN or text; removed by sanitize. */
  issues: CellIssue[];
  /** Column order of the model features, set by filter (IP columns still unexpanded) and updated by ipsplit. */
  order?: string[];
  /** Class index per row, set by the labels stage. */
  label?: Int32Array;
  /** Split per row (0 train, 1 val, 2 test), set by the split stage. */
  split?: Uint8Array;
  /** Per-row keys from the identifiers, set by the keys stage before filter may drop those columns. */
  keys?: RowKeys;
}

export interface RowKeys {
  /** 64-bit split group per row ([2n] words): the connection or the host, for leakage-aware splits. */
  group?: Uint32Array;
  /** 32-bit hash of the source address per row, 0 when unknown: per-host windows. */
  host?: Uint32Array;
}

export const SPLITS = ['train', 'val', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];


/** Keep the rows whose mask byte is 1; returns a new batch (columns compacted). */
export function compact(b: Batch, keep: Uint8Array): Batch {
  let m = 0;
  const remap = new Int32Array(b.n).fill(-1);
  for (let i = 0; i < b.n; i++) if (keep[i]) remap[i] = m++;
  if (m === b.n) return b;
  const out: Batch = { ...b, n: m, line: new Int32Array(m), num: new Map(), str: new Map(), issues: [] };
  for (let i = 0; i < b.n; i++) if (keep[i]) out.line[remap[i]] = b.line[i];
  for (const [k, v] of b.num) {
    const a = new Float64Array(m);
    for (let i = 0; i < b.n; i++) if (keep[i]) a[remap[i]] = v[i];
    out.num.set(k, a);
  }
  for (const [k, v] of b.str) {
    const a: (string | undefined)[] = new Array(m);
    for (let i = 0; i < b.n; i++) if (keep[i]) a[remap[i]] = v[i];
    out.str.set(k, a);
  }
  if (b.label) {
    out.label = new Int32Array(m);
    for (let i = 0; i < b.n; i++) if (keep[i]) out.label[remap[i]] = b.label[i];
  }
  if (b.split) {
    out.split = new Uint8Array(m);
    for (let i = 0; i < b.n; i++) if (keep[i]) out.split[remap[i]] = b.split[i];
  }
  for (const is of b.issues) if (keep[is.row]) out.issues.push({ ...is, row: remap[is.row] });
  if (b.keys) {
    out.keys = {};
    const g = b.keys.group;
    if (g) {
      const a = new Uint32Array(2 * m);
      for (let i = 0; i < b.n; i++) if (keep[i]) a.set(g.subarray(2 * i, 2 * i + 2), 2 * remap[i]);
      out.keys.group = a;
    }
    const h = b.keys.host;
    if (h) {
      const a = new Uint32Array(m);
      for (let i = 0; i < b.n; i++) if (keep[i]) a[remap[i]] = h[i];
      out.keys.host = a;
    }
  }
  return out;
}

/** Counters a stage reports: nested plain objects of numbers, merged by addition. */
export type Counts = { [k: string]: number | Counts };

export function addCounts(into: Counts, from: Counts): Counts {
  for (const [k, v] of Object.entries(from)) {
    if (typeof v === 'number') into[k] = ((into[k] as number) ?? 0) + v;
    else into[k] = addCounts((into[k] as Counts) ?? {}, v);
  }
  return into;
}

export function bump(c: Counts, a: string, b?: string, by = 1): void {
  if (b === undefined) {
    c[a] = ((c[a] as number) ?? 0) + by;
    return;
  }
  const inner = ((c[a] as Counts) ??= {});
  inner[b] = ((inner[b] as number) ?? 0) + by;
}

/** Counts with keys sorted at every level, so that manifests do not depend on merge order. */
export function sortCounts<T>(c: T): T {
  if (c === null || typeof c !== 'object' || Array.isArray(c)) return c;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(c as object).sort()) out[k] = sortCounts((c as Record<string, unknown>)[k]);
  return out as T;
}
