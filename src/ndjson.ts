// NDJSON framing for the stage commands: one JSON object per row, plus `{"_meta": ...}` records
// that carry each stage's counters downstream, so `shard` can write the full accounting.
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
      if (nc) o[k] = numOut(nc[i], rawOf.get(`${i}\u0000${k}`));
      else {
        const sc = b.str.get(k);
        if (sc) o[k] = sc[i] ?? null;
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
  constructor(private cfg: DatasetConfig, private out: (x: Item) => void, private batchSize = 4096) {}

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
    try {
      o = JSON.parse(s);
    } catch {
      throw new UserError(`stdin:${this.lineNo}: not a JSON record (${s.slice(0, 60)}...)`, 'stage commands read the NDJSON written by the previous stage; only `parse` reads CSV');
    }
    if (o._meta) {
      this.flush();
      this.out(o as unknown as Meta);
      return;
    }
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
}

export function recordsToBatch(rows: Record<string, unknown>[], cfg: DatasetConfig): Batch {
  const n = rows.length;
  const first = rows[0];
  const strSet = new Set(cfg.string_columns);
  const b: Batch = { file: String(first._file ?? 'stdin'), format: String(first._format ?? 'unknown'), n, line: new Int32Array(n), num: new Map(), str: new Map(), issues: [] };
  const keys = Object.keys(first).filter((k) => !k.startsWith('_') && !(k === 'label' && first._label_id !== undefined));
  for (const k of keys) {
    if (strSet.has(k)) b.str.set(k, new Array(n));
    else b.num.set(k, new Float64Array(n));
  }
  if (first._label_id !== undefined) b.label = new Int32Array(n);
  if (first._split !== undefined) b.split = new Uint8Array(n);
  if (first._host !== undefined || first._group !== undefined) b.keys = {};
  if (first._host !== undefined) b.keys!.host = new Uint32Array(n);
  if (first._group !== undefined) b.keys!.group = new Uint32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const o = rows[i];
    b.line[i] = Number(o._line ?? i + 1);
    for (const [k, col] of b.num) {
      const v = o[k];
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
      const v = o[k];
      col[i] = v === null || v === undefined ? undefined : String(v);
    }
    if (b.label) b.label[i] = Number(o._label_id);
    if (b.split) b.split[i] = Math.max(0, SPLITS.indexOf(o._split as (typeof SPLITS)[number]));
    if (b.keys?.host) b.keys.host[i] = parseInt(String(o._host ?? '0'), 16) >>> 0;
    if (b.keys?.group) {
      const [w0, w1] = String(o._group ?? '0:0').split(':');
      b.keys.group[2 * i] = parseInt(w0, 16) >>> 0;
      b.keys.group[2 * i + 1] = parseInt(w1 ?? '0', 16) >>> 0;
    }
  }
  b.order = keys.filter((k) => b.num.has(k) || (b.str.has(k) && k !== 'label'));
  return b;
}

/** NDJSON text in, batches and meta records out. */
export function ndjsonDecodeStream(cfg: DatasetConfig, batchSize?: number): Transform {
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
  dec = new NdjsonDecoder(cfg, (x) => t.push(x), batchSize);
  return t;
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
