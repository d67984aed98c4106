// The front of the pipeline, shared by prep (in-process or in workers) and predict:
// keys -> filter -> ipsplit -> labels -> sanitize on each parsed batch.
import { createFilter, type Filter } from '../stages/filter.js';
import { createKeys, type Keys, type SplitBy } from '../stages/keys.js';
import { createIpSplit, type IpSplit } from '../stages/ipsplit.js';
import { createLabels, type AttemptedPolicy, type Labels } from '../stages/labels.js';
import { createSanitize, type Example, type Sanitize } from '../stages/sanitize.js';
import type { RejectRecord } from '../stages/parse.js';
import type { Batch, Counts } from './batch.js';
import type { DatasetConfig, SanitizePolicy } from './config.js';

export interface FrontOptions {
  cfg: DatasetConfig;
  dropIdentifiers?: boolean;
  allowNewLabels?: boolean;
  attempted?: AttemptedPolicy;
  sanitize?: Partial<SanitizePolicy>;
  /** Split groups to key rows by (connection, host); hash and file need no row keys. */
  splitBy?: SplitBy;
  /** Key rows by source host for per-host windows. */
  hostKeys?: boolean;
  /** No labels stage (predict on unlabelled flows). */
  noLabels?: boolean;
  vocab?: string[];
  onReject?: (r: RejectRecord) => void;
  onNewLabel?: (label: string, file: string, line: number) => void;
  onReplace?: (file: string, line: number, col: string, kind: string, raw: string) => void;
}

export interface Front {
  keys: Keys;
  filter: Filter;
  /** Every column the parser must materialise for these stages. */
  wanted: Set<string>;
  /** The wanted columns that reach the output only as float32 features (not keys' identifiers). */
  float32: Set<string>;
  ipsplit: IpSplit;
  labels: Labels;
  sanitize: Sanitize;
  /** filter -> ipsplit -> labels -> sanitize */
  apply(b: Batch): Batch;
  counts(): Record<string, Counts>;
  examples(): Record<string, Example[]>;
}

export function createFront(o: FrontOptions): Front {
  const keys = createKeys({ splitBy: o.splitBy, host: o.hostKeys });
  const filter = createFilter({ cfg: o.cfg, dropIdentifiers: o.dropIdentifiers });
  const ipsplit = createIpSplit(o.cfg.ip_columns);
  const labels = createLabels({ cfg: o.cfg, allowNewLabels: o.allowNewLabels, attempted: o.attempted, vocab: o.vocab, onReject: o.onReject, onNewLabel: o.onNewLabel });
  const sanitize = createSanitize({ cfg: o.cfg, policy: o.sanitize, onReject: o.onReject, onReplace: o.onReplace });
  return {
    keys,
    filter,
    wanted: new Set([...filter.wanted, ...keys.wanted]),
    float32: new Set([...filter.wanted].filter((c) => !keys.wanted.includes(c))),
    ipsplit,
    labels,
    sanitize,
    apply(b) {
      let x = filter.apply(keys.apply(b));
      x = ipsplit.apply(x);
      if (!o.noLabels) x = labels.apply(x);
      return sanitize.apply(x);
    },
    counts: () => ({ ...(Object.keys(keys.counts).length ? { keys: keys.counts } : {}), filter: filter.counts, ipsplit: ipsplit.counts, labels: labels.counts, sanitize: sanitize.counts }),
    examples: () => sanitize.examples,
  };
}
