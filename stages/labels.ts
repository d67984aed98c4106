// Stage 4, labels: label text -> class index from the config vocabulary.
// Every spelling of a class maps to one name via a key (lower-case letters and digits only),
// so `Web Attack – Brute Force`, its cp1252 byte 0x96, U+0096 mojibake, U+FFFD and `BruteForce` agree.
import { bump, compact, type Batch, type Counts } from '../src/batch.js';
import { labelKey, type DatasetConfig } from '../src/config.js';
import { UserError, showValue } from '../src/errors.js';
import type { RejectRecord } from './parse.js';

export type AttemptedPolicy = 'benign' | 'attack' | 'drop';

/** Most classes a vocabulary may hold (CICIDS2017 has 15): a model, its confusion matrix and reports stay small. */
export const MAX_CLASSES = 1000;
/** Longest name --allow-new-labels gives a new class. */
export const MAX_LABEL_CHARS = 100;

export interface LabelsOptions {
  cfg: DatasetConfig;
  allowNewLabels?: boolean;
  attempted?: AttemptedPolicy;
  /** Start from this vocabulary (e.g. a run's saved one) instead of the config classes. */
  vocab?: string[];
  onReject?: (r: RejectRecord) => void;
  onNewLabel?: (label: string, file: string, line: number) => void;
}

export interface Labels {
  vocab: string[];
  counts: Counts;
  /** Map a label string to a class index: >=0 class, -1 drop (attempted policy). Throws on unknown. */
  resolve(raw: string, format: string, file: string, line: number): number;
  apply(b: Batch): Batch;
}

export function createLabels(opts: LabelsOptions): Labels {
  const cfg = opts.cfg;
  const vocab = [...(opts.vocab ?? cfg.classes)];
  const index = new Map(vocab.map((c, i) => [c, i]));
  const policy = opts.attempted ?? cfg.attempted.default_policy;
  const counts: Counts = { classes: {}, spellings: {}, attempted: {}, dropped_attempted: 0, missing_label: 0, new_labels: {} };
  const caches = new Map<string, Map<string, number>>(); // format -> raw label -> id
  const suffix = cfg.attempted.suffix_key;
  const benign = index.get(cfg.classes[0]) ?? 0;
  // classes added by --allow-new-labels, by label key: every spelling of a new label is one class
  const added = new Map<string, string>();

  function lookup(key: string, format: string): string | undefined {
    return cfg.format_label_spellings[format]?.[key] ?? (cfg.merged_labels[key] ? undefined : cfg.label_spellings[key]) ?? (index.has(key) ? key : undefined);
  }

  function resolve(raw: string, format: string, file: string, line: number): number {
    let cache = caches.get(format);
    if (!cache) caches.set(format, (cache = new Map()));
    const hit = cache.get(raw);
    if (hit !== undefined) return hit;
    let key = labelKey(raw);
    let attempted = false;
    if (key.endsWith(suffix) && key.length > suffix.length) {
      attempted = true;
      key = key.slice(0, -suffix.length);
    }
    let cls = lookup(key, format) ?? added.get(key);
    if (cls === undefined && !cfg.merged_labels[key]) {
      const exact = vocab.indexOf(raw.trim());
      if (exact >= 0) cls = vocab[exact];
    }
    if (cls === undefined) {
      const merged = cfg.merged_labels[key];
      if (!opts.allowNewLabels) {
        const why = merged ? `: a merged label from a derived data set (${merged})` : '';
        throw new UserError(
          `${file}:${line}: unknown label ${showValue(raw)}${why}`,
          `known classes: ${vocab.slice(0, 40).join(', ')}${vocab.length > 40 ? ', …' : ''}; add a spelling to config label_spellings, or pass --allow-new-labels to add it as a class`,
        );
      }
      cls = raw.trim();
      if (cls.length > MAX_LABEL_CHARS) throw new UserError(`${file}:${line}: label ${showValue(cls, 40)}: a new class name has at most ${MAX_LABEL_CHARS} characters`, 'a label this long is not a class; check the label column');
      // a merged label of a derived data set is not the class of the same name (BruteForce there is FTP/SSH-Patator)
      if (merged) cls = `${cls} (merged)`;
      while (index.has(cls)) cls = `${cls}'`;
      if (vocab.length >= MAX_CLASSES) throw new UserError(`${file}:${line}: label ${showValue(cls, 40)} would be class ${vocab.length + 1}: at most ${MAX_CLASSES} classes`, 'the label column holds something else than classes, or map spellings in config label_spellings');
      added.set(key, cls);
      index.set(cls, vocab.length);
      vocab.push(cls);
      bump(counts, 'new_labels', cls);
      opts.onNewLabel?.(cls, file, line);
    }
    let id = index.get(cls)!;
    if (attempted) {
      if (policy === 'benign') id = benign;
      else if (policy === 'drop') id = -1;
    }
    if (cache.size < 10000) cache.set(raw, id);
    return id;
  }

  return {
    vocab,
    counts,
    resolve,
    apply(b: Batch): Batch {
      const raw = b.str.get('label');
      if (!raw) throw new UserError(`${b.file}: no label column`, 'prep needs labelled flows');
      const lab = new Int32Array(b.n);
      let keep: Uint8Array | null = null;
      const perBatch = new Map<string, number>();
      for (let i = 0; i < b.n; i++) {
        const s = raw[i];
        let id: number;
        if (s === undefined) {
          id = -2;
          bump(counts, 'missing_label');
          opts.onReject?.({ file: b.file, line: b.line[i], reason: 'missing_label', detail: 'empty label cell', raw: '' });
        } else {
          id = resolve(s, b.format, b.file, b.line[i]);
          perBatch.set(s, (perBatch.get(s) ?? 0) + 1);
        }
        if (id < 0) {
          keep ??= new Uint8Array(b.n).fill(1);
          keep[i] = 0;
        }
        lab[i] = id;
      }
      for (const [s, k] of perBatch) {
        const sp = counts.spellings as Counts;
        if (sp[s] !== undefined || Object.keys(sp).length < 200) sp[s] = ((sp[s] as number) ?? 0) + k;
        const id = resolve(s, b.format, b.file, 0);
        if (labelKey(s).endsWith(suffix)) bump(counts, 'attempted', s, k);
        if (id === -1) bump(counts, 'dropped_attempted', undefined, k);
        else bump(counts, 'classes', vocab[id], k);
      }
      const str = new Map(b.str);
      str.delete('label');
      let out: Batch = { ...b, str, label: lab };
      if (keep) out = compact(out, keep);
      return out;
    },
  };
}
