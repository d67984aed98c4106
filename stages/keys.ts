// Stage 2a, keys (before filter, which may drop the identifiers): per-row keys computed from the
// identifier columns.
// - group, for leakage-aware splits: `connection` = the flow's five-tuple in both directions (the lower
//   of the two endpoints first, then the protocol), or its Flow ID where the tuple is missing;
//   `host` = the source address. A row without the needed identifiers keeps its content fingerprint
//   (it then splits like --split-by hash) and is counted.
// - host, for per-host windows: a 32-bit hash of the source address (0 when unknown).
import { bump, type Batch, type Counts } from '../src/batch.js';
import { strHash64 } from '../src/hash.js';

export type SplitBy = 'hash' | 'connection' | 'host' | 'file';
export const SPLIT_MODES: SplitBy[] = ['hash', 'connection', 'host', 'file'];

/** The identifier columns a split mode groups on (beside Flow ID, the fallback of `connection`). */
export const GROUP_COLUMNS: Record<'connection' | 'host', string[]> = {
  connection: ['source_ip', 'source_port', 'destination_ip', 'destination_port', 'protocol'],
  host: ['source_ip'],
};

export interface KeysOptions {
  splitBy?: SplitBy;
  /** Compute the per-host window key. */
  host?: boolean;
}

export interface Keys {
  /** Columns the parser must materialise for these keys. */
  wanted: string[];
  counts: Counts;
  apply(b: Batch): Batch;
}

const normIp = (s: string | undefined) => (s === undefined ? '' : s.trim().toLowerCase());

function cell(a: Float64Array | undefined, s: (string | undefined)[] | undefined, i: number): string {
  if (a) return Number.isFinite(a[i]) ? String(a[i]) : '';
  return s?.[i]?.trim() ?? '';
}

export function createKeys(o: KeysOptions): Keys {
  const mode = o.splitBy ?? 'hash';
  const group = mode === 'connection' || mode === 'host';
  const wanted = new Set<string>();
  if (group) for (const c of GROUP_COLUMNS[mode]) wanted.add(c);
  if (mode === 'connection') wanted.add('flow_id');
  if (o.host) wanted.add('source_ip');
  const counts: Counts = group ? { grouped: 0, ungrouped: 0, flow_id_used: 0 } : {};
  if (o.host) Object.assign(counts, { host_known: 0, host_unknown: 0 });
  const hbuf = new Uint32Array(2);
  return {
    wanted: [...wanted],
    counts,
    apply(b: Batch): Batch {
      if (!group && !o.host) return b;
      const n = b.n;
      const keys = { ...b.keys };
      if (group) {
        const g = new Uint32Array(2 * n);
        const src = b.str.get('source_ip');
        const dst = b.str.get('destination_ip');
        const sp = b.num.get('source_port');
        const dp = b.num.get('destination_port');
        const pr = b.num.get('protocol');
        const fid = b.str.get('flow_id');
        for (let i = 0; i < n; i++) {
          let key = '';
          if (mode === 'host') {
            const a = normIp(src?.[i]);
            if (a) key = `h|${a}`;
          } else {
            const a = normIp(src?.[i]);
            const c = normIp(dst?.[i]);
            const ap = cell(sp, undefined, i);
            const cp = cell(dp, undefined, i);
            if (a && c && ap && cp) {
              const x = `${a}:${ap}`;
              const y = `${c}:${cp}`;
              key = `c|${x < y ? x : y}|${x < y ? y : x}|${cell(pr, undefined, i)}`;
            } else {
              const f = fid?.[i]?.trim();
              if (f) {
                key = `f|${f}`;
                bump(counts, 'flow_id_used');
              }
            }
          }
          if (key) {
            strHash64(key, g, 2 * i);
            bump(counts, 'grouped');
          } else {
            // no identifiers: the split stage falls back on the row's content fingerprint
            g[2 * i] = 0;
            g[2 * i + 1] = 0;
            bump(counts, 'ungrouped');
          }
        }
        keys.group = g;
      }
      if (o.host) {
        const h = new Uint32Array(n);
        const src = b.str.get('source_ip');
        for (let i = 0; i < n; i++) {
          const a = normIp(src?.[i]);
          if (a) {
            strHash64(a, hbuf, 0);
            h[i] = hbuf[0] || 1; // 0 means unknown
            bump(counts, 'host_known');
          } else bump(counts, 'host_unknown');
        }
        keys.host = h;
      }
      return { ...b, keys };
    },
  };
}
