// NDJSON framing for the stage commands: one JSON object per row, plus `{"_meta": ...}` records
// that carry each stage's counters downstream, so `shard` can write the full accounting.
// Keys starting with `_` are the framing's own (`_file`, `_line`, `_format`, `_label_id`, `_split`, `_meta`):
// a data column whose name starts with `_` is written with one more `_` (a CSV column named `_meta`
// becomes `__meta`), so data can never pass for metadata. Metadata comes after all data, once per
// stage, in pipeline order; anything else is refused.
import { Transform, type TransformCallback } from 'node:stream';
import { SPLITS, type Batch, type Counts } from './batch.js';
import { numKind, parseNumberSlow } from './csv.js';
import type { DatasetConfig } from './config.js';
import { UserError } from './errors.js';

export interface Meta {
  _meta: { stage: string; counts: Counts; [k: string]: unknown };
}
export type Item = Batch | Meta;
export const isMeta = (x: Item): x is Meta => (x as Meta)._meta !== undefined;

/** The stages in pipeline order: metadata records must follow it. */
export const STAGE_ORDER = ['parse', 'filter', 'ipsplit', 'labels', 'sanitize', 'split', 'shard'] as const;

/** A data column's key in a record: one more `_` in front of a name that starts with `_`. */
const keyOf = (col: string) => (col.charCodeAt(0) === 95 ? '_' + col : col);

const numOut = (v: number, raw?: string): number | string => {
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  if (v !== v) return raw ?? 'NaN';
  return v;
};

/** Serialise a batch, one line per row. vocab turns label ids into names. */
export function batchToNdjson(b: Batch, vocab?: string[]): string {
  const rawOf = new Map<string, string>();
  for (const is of b.issues) rawOf.set(`${is.row}\u0000${is.col}`, is.raw);
  const names = b.order ?? [...b.num.keys(), ...b.str.keys()];
  const seen = new Set(names);
  const numNames = [...b.num.keys()];
  const strNames = [...b.str.keys()];
  const all = [...names, ...numNames.filter((n) => !seen.has(n)), ...strNames.filter((n) => !seen.has(n))];
  const lines: string[] = [];
  for (let i = 0; i < b.n; i++) {
    const o: Record<string, unknown> = { _file: b.file, _line: b.line[i], _format: b.format };
    for (const k of all) {
      const nc = b.num.get(k);
      if (nc) o[keyOf(k)] = numOut(nc[i], rawOf.get(`${i}\u0000${k}`));
      else {
        const sc = b.str.get(k);
        if (sc) o[keyOf(k)] = sc[i] ?? null;
      }
    }
    if (b.label) {
      o._label_id = b.label[i];
      if (vocab) o.label = vocab[b.label[i]];
    }
    if (b.split) o._split = SPLITS[b.split[i]];
    // row keys (stages/keys.ts) travel as hex words: `_host` the source host, `_group` the split group
    if (b.keys?.host) o._host = b.keys.host[i].toString(16);
    if (b.keys?.group) o._group = `${b.keys.group[2 * i].toString(16)}:${b.keys.group[2 * i + 1].toString(16)}`;
    lines.push(JSON.stringify(o));
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

/** Parse NDJSON rows back into batches (rows of the same file and layout grouped, up to batchSize). */
export class NdjsonDecoder {
  private rows: Record<string, unknown>[] = [];
  private key = '';
  private tail = '';
  private lineNo = 0;
  /** Stages whose metadata has arrived, in order. */
  readonly metas: string[] = [];
  /**
   * before: the stage reading this stream; metadata of it or of a later stage is refused (forged or
   * duplicated, or the stages run in the wrong order).
   */
  constructor(private cfg: DatasetConfig, private out: (x: Item) => void, private batchSize = 4096, private before?: string) {}

  push(chunk: Buffer | string): void {
    const text = this.tail + chunk.toString();
    const parts = text.split('\n');
    this.tail = parts.pop() ?? '';
    for (const p of parts) this.line(p);
  }
  end(): void {
    if (this.tail.trim()) this.line(this.tail);
    this.tail = '';
    this.flush();
  }
  private line(s: string): void {
    this.lineNo++;
    if (!s.trim()) return;
    let o: Record<string, unknown>;
    const hint = 'stage commands read the NDJSON written by the previous stage; only `parse` reads CSV';
    try {
      o = JSON.parse(s);
    } catch {
      throw new UserError(`stdin:${this.lineNo}: not a JSON record (${JSON.stringify(s.slice(0, 60))}...)`, hint);
    }
    if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new UserError(`stdin:${this.lineNo}: ${o === null ? 'null' : Array.isArray(o) ? 'an array' : typeof o}, not a JSON record`, hint);
    if ('_meta' in o) {
      this.meta(o);
      this.flush();
      this.out(o as unknown as Meta);
      return;
    }
    if (this.metas.length) throw new UserError(`stdin:${this.lineNo}: a data record after the metadata of ${this.metas.join(', ')}: metadata closes a stream`, 'feed each stage the whole output of the one before it, once');
    const key = `${o._file}\u0000${o._format}`;
    if (key !== this.key || this.rows.length >= this.batchSize) {
      this.flush();
      this.key = key;
    }
    this.rows.push(o);
  }
  private flush(): void {
    if (this.rows.length) this.out(recordsToBatch(this.rows, this.cfg));
    this.rows = [];
  }

  /** A metadata record: well formed, of a known stage that comes after the last one seen and before the reader. */
  private meta(o: Record<string, unknown>): void {
    const m = o._meta as Record<string, unknown> | null;
    const at = `stdin:${this.lineNo}`;
    if (Object.keys(o).length !== 1 || m === null || typeof m !== 'object' || Array.isArray(m) || typeof m.stage !== 'string' || m.counts === null || typeof m.counts !== 'object')
      throw new UserError(`${at}: a "_meta" record that is not a stage's metadata`, 'metadata records are written by the stage commands themselves');
    const stage = m.stage;
    const k = STAGE_ORDER.indexOf(stage as (typeof STAGE_ORDER)[number]);
    if (k < 0) throw new UserError(`${at}: metadata of an unknown stage ${JSON.stringify(stage.slice(0, 40))}`);
    if (this.metas.includes(stage)) throw new UserError(`${at}: a second metadata record of stage ${stage}: the stream holds two outputs of it, or a forged one`);
    const last = this.metas.length ? STAGE_ORDER.indexOf(this.metas[this.metas.length - 1] as (typeof STAGE_ORDER)[number]) : -1;
    if (k < last) throw new UserError(`${at}: metadata of ${stage} after that of ${this.metas[this.metas.length - 1]}: the stages ran out of order`, `the order is ${STAGE_ORDER.join(' | ')}`);
    if (this.before) {
      const me = STAGE_ORDER.indexOf(this.before as (typeof STAGE_ORDER)[number]);
      if (k >= me) throw new UserError(`${at}: the input already went through ${stage}; ${this.before} comes ${k === me ? 'once' : `before ${stage}`}`, `the order is ${STAGE_ORDER.join(' | ')}`);
    }
    this.metas.push(stage);
  }
}

export function recordsToBatch(rows: Record<string, unknown>[], cfg: DatasetConfig): Batch {
  const n = rows.length;
  const first = rows[0];
  const strSet = new Set(cfg.string_columns);
  const b: Batch = { file: String(first._file ?? 'stdin'), format: String(first._format ?? 'unknown'), n, line: new Int32Array(n), num: new Map(), str: new Map(), issues: [] };
  // `__x` is the data column `_x` (see keyOf); other `_` keys are the framing's own
  const keys = Object.keys(first).filter((k) => (!k.startsWith('_') || k.startsWith('__')) && !(k === 'label' && first._label_id !== undefined));
  const col = (k: string) => (k.startsWith('__') ? k.slice(1) : k);
  for (const k of keys) {
    if (strSet.has(col(k))) b.str.set(col(k), new Array(n));
    else b.num.set(col(k), new Float64Array(n));
  }
  if (first._label_id !== undefined) b.label = new Int32Array(n);
  if (first._split !== undefined) b.split = new Uint8Array(n);
  if (first._host !== undefined || first._group !== undefined) b.keys = {};
  if (first._host !== undefined) b.keys!.host = new Uint32Array(n);
  if (first._group !== undefined) b.keys!.group = new Uint32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const o = rows[i];
    const ln = Number(o._line ?? i + 1);
    b.line[i] = Number.isInteger(ln) && ln > 0 ? ln : 0;
    for (const [k, col] of b.num) {
      const v = o[keyOf(k)];
      if (typeof v === 'number') col[i] = v;
      else if (v === null || v === undefined) {
        col[i] = NaN;
        b.issues.push({ row: i, col: k, kind: 'empty', raw: '' });
      } else {
        col[i] = parseNumberSlow(String(v));
        if (numKind !== 0) b.issues.push({ row: i, col: k, kind: numKind === 1 ? 'empty' : numKind === 2 ? 'nan' : 'text', raw: String(v) });
      }
    }
    for (const [k, col] of b.str) {
      const v = o[keyOf(k)];
      col[i] = v === null || v === undefined ? undefined : String(v);
    }
    if (b.label) {
      const id = o._label_id;
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 1e6) throw new UserError(`${b.file}:${b.line[i]}: record has _label_id ${JSON.stringify(id)}: a class index is a whole number from 0`, 'records come from the labels stage');
      b.label[i] = id;
    }
    if (b.split) {
      const s = SPLITS.indexOf(o._split as (typeof SPLITS)[number]);
      if (s < 0) throw new UserError(`${b.file}:${b.line[i]}: record has _split ${JSON.stringify(o._split)}: one of ${SPLITS.join(', ')} expected`, 'records come from the split stage');
      b.split[i] = s;
    }
    if (b.keys?.host) b.keys.host[i] = parseInt(String(o._host ?? '0'), 16) >>> 0;
    if (b.keys?.group) {
      const [w0, w1] = String(o._group ?? '0:0').split(':');
      b.keys.group[2 * i] = parseInt(w0, 16) >>> 0;
      b.keys.group[2 * i + 1] = parseInt(w1 ?? '0', 16) >>> 0;
    }
  }
  b.order = keys.map(col).filter((k) => b.num.has(k) || (b.str.has(k) && k !== 'label'));
  return b;
}

/** NDJSON text in, batches and meta records out. */
export function ndjsonDecodeStream(cfg: DatasetConfig, batchSize?: number, before?: string): Transform & { decoder: NdjsonDecoder } {
  let dec: NdjsonDecoder;
  const t: Transform = new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      try {
        dec.push(chunk);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
    flush(cb: TransformCallback) {
      try {
        dec.end();
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
  });
  dec = new NdjsonDecoder(cfg, (x) => t.push(x), batchSize, before);
  return Object.assign(t, { decoder: dec });
}

/** Batches and meta records in, NDJSON text out. */
export function ndjsonEncodeStream(vocab?: () => string[] | undefined): Transform {
  return new Transform({
    writableObjectMode: true,
    transform(x: Item, _e, cb: TransformCallback) {
      if (isMeta(x)) cb(null, JSON.stringify(x) + '\n');
      else cb(null, batchToNdjson(x, vocab?.()));
    },
  });
}

/** Wrap a stage function as a stream over items: meta records pass through, own meta appended at the end. */
export function stageStream(name: string, apply: (b: Batch) => Batch, meta: () => Record<string, unknown> & { counts: Counts }, onMeta?: (m: Meta) => void): Transform {
  return new Transform({
    objectMode: true,
    transform(x: Item, _e, cb: TransformCallback) {
      try {
        if (isMeta(x)) {
          onMeta?.(x);
          cb(null, x);
        } else {
          const y = apply(x);
          cb(null, y.n > 0 ? y : undefined);
        }
      } catch (e) {
        cb(e as Error);
      }
    },
    flush(cb: TransformCallback) {
      this.push({ _meta: { stage: name, ...meta() } });
      cb();
    },
  });
}
