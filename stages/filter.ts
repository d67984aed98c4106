// Stage 2, filter: keep the seed's columns (config unused_fields dropped), optionally drop identifiers,
// and fill columns a file lacks (derived from a twin column, or zero) with a count.
import { bump, type Batch, type Counts } from '../src/batch.js';
import { modelColumns, type DatasetConfig } from '../src/config.js';

export interface FilterOptions {
  cfg: DatasetConfig;
  dropIdentifiers?: boolean;
  keep?: string[];
  drop?: string[];
}

export interface Filter {
  /** Model columns in order (IP columns still as strings here; label excluded). */
  columns: string[];
  /** Every canonical column the parser must materialise for this filter. */
  wanted: Set<string>;
  counts: Counts;
  apply(b: Batch): Batch;
}

export function createFilter(opts: FilterOptions): Filter {
  const cfg = opts.cfg;
  const columns = modelColumns(cfg, opts);
  const stringCols = new Set(cfg.string_columns);
  const wanted = new Set<string>([...columns, ...cfg.label_columns]);
  for (const c of columns) {
    const src = cfg.derived_columns[c];
    if (src) wanted.add(src);
  }
  const counts: Counts = { filled_missing_column: {}, derived_column: {} };
  return {
    columns,
    wanted,
    counts,
    apply(b: Batch): Batch {
      const num = new Map<string, Float64Array>();
      const str = new Map<string, (string | undefined)[]>();
      for (const c of columns) {
        if (stringCols.has(c)) {
          str.set(c, b.str.get(c) ?? new Array(b.n).fill(undefined));
          continue;
        }
        let a = b.num.get(c);
        if (!a) {
          const src = cfg.derived_columns[c];
          const from = src ? b.num.get(src) : undefined;
          if (from) {
            a = from.slice(0, b.n);
            bump(counts, 'derived_column', `${c}<-${src}`, b.n);
            // the twin's cell issues apply to the copy as well
            for (const is of b.issues) if (is.col === src) b.issues.push({ ...is, col: c });
          } else {
            a = new Float64Array(b.n);
            bump(counts, 'filled_missing_column', c, b.n);
          }
        }
        num.set(c, a);
      }
      for (const lc of cfg.label_columns) {
        const v = b.str.get(lc);
        if (v) {
          str.set('label', v);
          break;
        }
      }
      const keepCols = new Set(num.keys());
      return { ...b, num, str, order: columns, issues: b.issues.filter((is) => keepCols.has(is.col)) };
    },
  };
}
