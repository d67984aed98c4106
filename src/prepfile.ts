// One task (a file or a line-aligned range of one) through parse, filter, ipsplit, labels and sanitize,
// emitting packed batches: rows as float32 plus their split fingerprints. Used in-process and inside
// prep's worker threads (src/prepworker.ts), so the main thread only assigns splits and writes shards.
import fs from 'node:fs';
import { CsvBatchParser, type HeaderInfo, type RejectRecord } from '../stages/parse.js';
import type { Batch, Counts } from './batch.js';
import { columnsOf, rowHashes, toRowMajor } from '../stages/split.js';
import { ScaleKernel } from './kernels/scalekern.js';
import type { Front } from './front.js';
import type { DatasetConfig } from './config.js';
import { readInput, describeReadError } from './inputs.js';
import type { Task } from './chunks.js';

export interface ParseSettings {
  batchSize?: number;
  strict?: boolean;
  maxLineBytes?: number;
  delimiter?: string;
  multilineQuotes?: boolean;
}

/**
 * A batch after the front stages, packed for transfer between threads (zero-copy): the rows as a
 * row-major float32 matrix [n][F] in feature order (the shards' precision), their labels and their
 * 64-bit fingerprints for the split stage (rowHashes).
 */
export interface Packed {
  n: number;
  x: Float32Array;
  label: Int32Array;
  hash: Uint32Array;
  /** split group per row ([2n] words; 0,0 = none: split by the row's fingerprint), --split-by connection|host */
  group?: Uint32Array;
  /** source host per row (0 = unknown), for per-host windows */
  host?: Uint32Array;
}

/**
 * Arrays of consumed batches, given back (prep's worker threads get theirs back with the credit): the
 * next full batch packs into them instead of allocating (and later collecting) ~0.6 MB.
 */
export interface PackPool {
  x: Float32Array[];
  hash: Uint32Array[];
}

export function pack(b: Batch, features: string[], pool?: PackPool): Packed {
  const F = features.length;
  let xi = pool?.x.pop();
  if (xi && xi.length !== b.n * F) xi = undefined;
  let hi = pool?.hash.pop();
  if (hi && hi.length !== 2 * b.n) hi = undefined;
  const label = b.label ? b.label.slice(0, b.n) : new Int32Array(b.n);
  const kernel = ScaleKernel.forFeatures(F);
  let p: Packed;
  if (kernel) {
    // both in the kernel: the rows transposed and fingerprinted four at a time (the same bits)
    const x = xi ?? new Float32Array(b.n * F);
    const hash = hi ?? new Uint32Array(2 * b.n);
    kernel.pack(columnsOf(b, features), label, b.n, x, hash);
    p = { n: b.n, x, label, hash };
  } else {
    const x = toRowMajor(b, features, xi);
    p = { n: b.n, x, label, hash: rowHashes(x, F, b.n, label, hi) };
  }
  if (b.keys?.group) p.group = b.keys.group.length === 2 * b.n ? b.keys.group : b.keys.group.slice(0, 2 * b.n);
  if (b.keys?.host) p.host = b.keys.host.length === b.n ? b.keys.host : b.keys.host.slice(0, b.n);
  return p;
}

export interface FileEvents {
  header(h: HeaderInfo): void;
  batch(p: Packed, bytesIn: number): void | Promise<void>;
  reject(r: RejectRecord): void;
}

/** One task (a whole file, or a line-aligned byte range of one) through parse and the front stages, sanitize included. */
export async function processTask(t: Task, front: Front, features: string[], ps: ParseSettings, cfg: DatasetConfig, ev: FileEvents, pool?: PackPool): Promise<{ parse: Counts; bytes: number; newlines: number }> {
  const parser = new CsvBatchParser({
    file: t.file,
    cfg,
    want: front.wanted,
    float32: front.float32,
    batchSize: ps.batchSize,
    strict: ps.strict,
    maxLineBytes: ps.maxLineBytes,
    delimiter: ps.delimiter,
    multilineQuotes: ps.multilineQuotes,
    onReject: ev.reject,
    onHeader: ev.header,
  });
  // a reused read buffer: the parser copies what it keeps (the cut row, strings) before the next chunk
  const src = readInput(t.file, t.start, t.end, t.header);
  front.sanitize.setTask(t.index); // its examples carry chunk-local line numbers: prep resolves them
  try {
    for await (const chunk of src) {
      for (const b of parser.push(chunk as Buffer)) {
        const y = front.apply(b);
        if (y.n > 0) await ev.batch(pack(y, features, pool), parser.bytesIn);
        parser.recycle(b); // packed (copied): its arrays can hold the next batch
      }
    }
    for (const b of parser.end()) {
      const y = front.apply(b);
      if (y.n > 0) await ev.batch(pack(y, features, pool), parser.bytesIn);
    }
  } catch (e) {
    throw describeReadError(t.file, e);
  } finally {
    parser.dispose();
  }
  const parse = parser.counts;
  if (t.header) parse.rows_read = (parse.rows_read as number) - 1; // the header we prepended
  const bytes = (t.end < 0 ? fs.statSync(t.file).size : t.end) - t.start;
  return { parse, bytes, newlines: parser.newlines - (t.header ? 1 : 0) };
}
