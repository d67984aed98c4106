// One task (a file or a line-aligned range of one) through parse, filter, ipsplit and labels, emitting packed batches.
// Used in-process and inside prep's worker threads (src/prepworker.ts).
import fs from 'node:fs';
import { CsvBatchParser, type HeaderInfo, type RejectRecord } from '../stages/parse.js';
import type { Batch, CellIssue, Counts } from './batch.js';
import type { Front } from './front.js';
import type { DatasetConfig } from './config.js';
import { openInput, describeReadError } from './inputs.js';
import type { Task } from './chunks.js';

export interface ParseSettings {
  batchSize?: number;
  strict?: boolean;
  maxLineBytes?: number;
  delimiter?: string;
}

/**
 * A batch after filter, ipsplit and labels, packed for transfer between threads (zero-copy):
 * features column-major float64 [F][n] in feature order, plus the sparse cell issues sanitize needs.
 */
export interface Packed {
  file: string;
  format: string;
  n: number;
  line: Int32Array;
  label: Int32Array;
  cols: Float64Array;
  issues: CellIssue[];
}

export function pack(b: Batch, features: string[]): Packed {
  const n = b.n;
  const cols = new Float64Array(features.length * n);
  features.forEach((f, k) => {
    const c = b.num.get(f);
    if (!c) throw new Error(`${b.file}: feature ${f} missing after the front stages`);
    cols.set(c.subarray(0, n), k * n);
  });
  return { file: b.file, format: b.format, n, line: b.line.slice(0, n), label: b.label ? b.label.slice(0, n) : new Int32Array(n), cols, issues: b.issues };
}

export function unpack(p: Packed, features: string[]): Batch {
  const num = new Map<string, Float64Array>();
  features.forEach((f, k) => num.set(f, p.cols.subarray(k * p.n, (k + 1) * p.n)));
  return { file: p.file, format: p.format, n: p.n, line: p.line, num, str: new Map(), issues: p.issues, label: p.label, order: features };
}

export interface FileEvents {
  header(h: HeaderInfo): void;
  batch(p: Packed, bytesIn: number): void | Promise<void>;
  reject(r: RejectRecord): void;
}

/** One task (a whole file, or a line-aligned byte range of one) through parse and the front stages. */
export async function processTask(t: Task, front: Front, features: string[], ps: ParseSettings, cfg: DatasetConfig, ev: FileEvents): Promise<{ parse: Counts; bytes: number; newlines: number }> {
  const parser = new CsvBatchParser({
    file: t.file,
    cfg,
    want: front.filter.wanted,
    batchSize: ps.batchSize,
    strict: ps.strict,
    maxLineBytes: ps.maxLineBytes,
    delimiter: ps.delimiter,
    onReject: ev.reject,
    onHeader: ev.header,
  });
  const whole = t.start === 0 && t.end < 0;
  const src = whole ? openInput(t.file) : fs.createReadStream(t.file, { start: t.start, end: t.end < 0 ? undefined : t.end - 1, highWaterMark: 1 << 20 });
  try {
    if (t.header) parser.push(t.header);
    for await (const chunk of src) {
      for (const b of parser.push(chunk as Buffer)) {
        const y = front.early(b);
        if (y.n > 0) await ev.batch(pack(y, features), parser.bytesIn);
        parser.recycle(b); // packed (copied): its arrays can hold the next batch
      }
    }
    for (const b of parser.end()) {
      const y = front.early(b);
      if (y.n > 0) await ev.batch(pack(y, features), parser.bytesIn);
    }
  } catch (e) {
    throw describeReadError(t.file, e);
  }
  const parse = parser.counts;
  if (t.header) parse.rows_read = (parse.rows_read as number) - 1; // the header we prepended
  const bytes = (t.end < 0 ? fs.statSync(t.file).size : t.end) - t.start;
  return { parse, bytes, newlines: parser.newlines - (t.header ? 1 : 0) };
}
