// Parquet shards (`prep --format parquet`): one float32 column per feature, the int32 `label` (and the
// int32 `prev` where the shards carry per-host context), the scaler, features and label vocabulary in the
// file's key-value metadata. Written and read with parquet-wasm (Apache Arrow's Rust parquet crate in
// WebAssembly; chosen by measurement: docs/BENCHMARKS.md), the Arrow table built with apache-arrow.
// Both are loaded on first use, synchronously (the shard reader is synchronous), so a safetensors run
// never loads them.
import { createRequire } from 'node:module';
import path from 'node:path';
import { UserError } from './errors.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
let mods: { pw: any; arrow: any } | null = null;
function load(): { pw: any; arrow: any } {
  if (mods) return mods;
  const req = createRequire(import.meta.url);
  try {
    mods = { pw: req('parquet-wasm'), arrow: req('apache-arrow') };
  } catch (e) {
    throw new UserError(`Parquet needs the packages parquet-wasm and apache-arrow (${(e as Error).message.split('\n')[0]})`, 'reinstall flowtensor (npm install), or prepare with --format safetensors');
  }
  return mods;
}

export const isParquet = (file: string) => file.endsWith('.parquet');
export const parquetName = (file: string) => file.replace(/\.safetensors$/, '.parquet');

export interface ShardArrays {
  x: Float32Array;
  y: Int32Array;
  prev: Int32Array | null;
}

/** A shard as a Parquet file (snappy, one row group), its metadata as string key-values. */
export function encodeParquet(a: ShardArrays, features: string[], metadata: Record<string, string>): Uint8Array {
  const { pw, arrow } = load();
  const F = features.length;
  const n = a.y.length;
  const cols: Record<string, Float32Array | Int32Array> = {};
  features.forEach((name, f) => {
    const c = new Float32Array(n);
    for (let i = 0, o = f; i < n; i++, o += F) c[i] = a.x[o];
    cols[name] = c;
  });
  if (cols.label || cols.prev) throw new Error('a feature named label or prev cannot be written to Parquet beside those columns');
  cols.label = a.y;
  if (a.prev) cols.prev = a.prev;
  const table = pw.Table.fromIPCStream(arrow.tableToIPC(arrow.tableFromArrays(cols), 'stream'));
  const props = new pw.WriterPropertiesBuilder()
    .setCompression(pw.Compression.SNAPPY)
    .setMaxRowGroupSize(Math.max(1, n))
    .setCreatedBy('flowtensor')
    .setKeyValueMetadata(new Map(Object.entries(metadata)))
    .build();
  return pw.writeParquet(table, props) as Uint8Array;
}

/** Read a shard written by encodeParquet: the rows row-major again, and the metadata. */
export function decodeParquet(buf: Uint8Array, features: string[] | null, what: string): ShardArrays & { metadata: Record<string, string>; features: string[] } {
  const { pw, arrow } = load();
  let t: any;
  try {
    t = arrow.tableFromIPC(pw.readParquet(buf).intoIPCStream());
  } catch (e) {
    throw new UserError(`${what}: not a readable Parquet file (${String((e as Error).message ?? e).split('\n')[0].slice(0, 120)})`, 'the folder is damaged; prepare it again');
  }
  const names: string[] = t.schema.fields.map((f: any) => f.name);
  const feats = features ?? names.filter((x) => x !== 'label' && x !== 'prev');
  const n: number = t.numRows;
  const F = feats.length;
  const x = new Float32Array(n * F);
  feats.forEach((name, f) => {
    const col = t.getChild(name);
    if (!col) throw new UserError(`${what}: no column ${name}`, 'the folder is damaged; prepare it again');
    const v = col.toArray();
    if (!(v instanceof Float32Array)) throw new UserError(`${what}: column ${name} is not float32`, 'the folder is damaged; prepare it again');
    for (let i = 0, o = f; i < n; i++, o += F) x[o] = v[i];
  });
  const int = (name: string): Int32Array | null => {
    const col = t.getChild(name);
    if (!col) return null;
    const v = col.toArray();
    if (!(v instanceof Int32Array)) throw new UserError(`${what}: column ${name} is not int32`, 'the folder is damaged; prepare it again');
    return v;
  };
  const y = int('label');
  if (!y) throw new UserError(`${what}: no label column`, 'the folder is damaged; prepare it again');
  const metadata: Record<string, string> = Object.fromEntries(t.schema.metadata);
  return { x, y, prev: int('prev'), metadata, features: feats };
}

/** The metadata every Parquet shard carries (besides the shard's own record). */
export function parquetMetadata(shard: Record<string, string>, o: { features: string[]; labels: string[]; scaler: unknown }): Record<string, string> {
  return {
    'flowtensor.shard': JSON.stringify(shard),
    'flowtensor.features': JSON.stringify(o.features),
    'flowtensor.labels': JSON.stringify(o.labels),
    'flowtensor.scaler': JSON.stringify(o.scaler),
  };
}

export const basename = (f: string) => path.basename(f);
