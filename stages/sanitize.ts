// Stage 5, sanitize: the seed's FIXME. Non-numeric cells are replaced by policy and counted per column.
// Defaults: NaN / empty / text -> 0 now; +Infinity -> the column's largest finite TRAIN value and
// -Infinity -> its smallest, resolved by the scale stage once train statistics are known
// (the infinities stay in the unscaled shards until then). Values beyond float32 range count as ±Infinity.
import { bump, compact, type Batch, type Counts } from '../src/batch.js';
import type { DatasetConfig, SanitizePolicy } from '../src/config.js';
import type { RejectRecord } from './parse.js';

const F32_MAX = 3.4028234663852886e38;
/** Examples kept per column and kind. */
export const EXAMPLES = 5;

export interface SanitizeOptions {
  cfg: DatasetConfig;
  /** Override the default policy, e.g. {posinf: 'zero'}; per-column overrides from config apply on top. */
  policy?: Partial<SanitizePolicy>;
  onReject?: (r: RejectRecord) => void;
  /** Called for every replaced value (the CLI logs these at debug level with file and line). */
  onReplace?: (file: string, line: number, col: string, kind: string, raw: string) => void;
}

export interface Example {
  file: string;
  line: number;
  raw: string;
  /** Set with setTask: which task (chunk) the line number is local to; prep resolves and removes it. */
  task?: number;
}

export interface Sanitize {
  counts: Counts;
  /** First few examples of each column/kind, with file and line. */
  examples: Record<string, Example[]>;
  policyFor(col: string): SanitizePolicy;
  apply(b: Batch): Batch;
  /** Tag the examples noted from now on with a task index (prep's threads see chunk-local line numbers). */
  setTask(task: number): void;
}

export function createSanitize(opts: SanitizeOptions): Sanitize {
  const base: SanitizePolicy = { ...opts.cfg.sanitize.default, ...opts.policy };
  const perCol = opts.cfg.sanitize.columns;
  const policyCache = new Map<string, SanitizePolicy>();
  const policyFor = (col: string): SanitizePolicy => {
    let p = policyCache.get(col);
    if (!p) {
      p = { ...base, ...perCol[col] };
      policyCache.set(col, p);
    }
    return p;
  };
  const counts: Counts = { replaced: {}, kept_for_scale: {}, negative_values: {}, dropped_rows: 0, quarantined_rows: 0 };
  const examples: Record<string, Example[]> = {};
  let task: number | undefined;
  const note = (b: Batch, row: number, col: string, kind: string, raw: string) => {
    const key = `${col}/${kind}`;
    const ex = (examples[key] ??= []);
    if (ex.length < EXAMPLES) ex.push(task === undefined ? { file: b.file, line: b.line[row], raw } : { file: b.file, line: b.line[row], raw, task });
    opts.onReplace?.(b.file, b.line[row], col, kind, raw);
  };

  return {
    counts,
    examples,
    policyFor,
    setTask(t) {
      task = t;
    },
    apply(b: Batch): Batch {
      let keep: Uint8Array | null = null;
      const drop = (row: number, how: string, col: string, kind: string, raw: string) => {
        keep ??= new Uint8Array(b.n).fill(1);
        if (!keep[row]) return;
        keep[row] = 0;
        if (how === 'quarantine') {
          bump(counts, 'quarantined_rows');
          opts.onReject?.({ file: b.file, line: b.line[row], reason: `${kind}_value`, detail: `${col} holds ${JSON.stringify(raw)}`, raw: '' });
        } else bump(counts, 'dropped_rows');
      };
      for (const is of b.issues) {
        const col = b.num.get(is.col);
        if (!col) continue;
        const how = policyFor(is.col)[is.kind];
        bump(counts, 'replaced', `${is.col}.${is.kind}`);
        note(b, is.row, is.col, is.kind, is.raw);
        if (how === 'zero') col[is.row] = 0;
        else drop(is.row, how, is.col, is.kind, is.raw);
      }
      // infinities (and float32 overflow) in every numeric column
      const n = b.n;
      for (const [name, col] of b.num) {
        let negative = 0;
        for (let i = 0; i < n; i++) {
          const v = col[i];
          if (v < 0) negative++;
          // one comparison catches NaN (false for any comparison), ±Infinity and float32 overflow
          if (!(Math.abs(v) <= F32_MAX)) {
            if (v !== v) {
              // NaN without an issue record (e.g. from NDJSON input): treat as nan
              bump(counts, 'replaced', `${name}.nan`);
              note(b, i, name, 'nan', 'NaN');
              if (policyFor(name).nan === 'zero') col[i] = 0;
              else drop(i, policyFor(name).nan, name, 'nan', 'NaN');
              continue;
            }
            const pos = v > 0;
            const kind = pos ? 'posinf' : 'neginf';
            const how = policyFor(name)[kind];
            const raw = Number.isFinite(v) ? String(v) : pos ? 'Infinity' : '-Infinity';
            note(b, i, name, kind, raw);
            if (how === 'train_max' || how === 'train_min') {
              col[i] = how === 'train_max' ? Infinity : -Infinity;
              bump(counts, 'kept_for_scale', `${name}.${kind}`);
            } else if (how === 'zero') {
              col[i] = 0;
              bump(counts, 'replaced', `${name}.${kind}`);
            } else drop(i, how, name, kind, raw);
          }
        }
        // negative durations, header lengths, -1 "not seen" window sizes: kept as values, counted
        if (negative) bump(counts, 'negative_values', name, negative);
      }
      let out: Batch = { ...b, issues: [] };
      if (keep) out = compact(out, keep);
      return out;
    },
  };
}
