// The peer of `flowtensor prep --drop-identifiers` in DuckDB (`npm run bench peers`): the same CSVs, the same
// feature columns (flowtensor's manifest names them), NaN/empty -> 0, ±Infinity -> the column's train
// max/min, a content-hash split 70/15/15, the log-standard scaler (signed log1p, then mean/std) fitted on
// train, val/test clipped to the train range, float32 out, one Parquet file per split. The CSV is read once
// into a DuckDB table (DuckDB's own way: SQL over a materialised table), the statistics are two queries
// over the train rows, and three COPY statements write the splits. Every thread DuckDB wants (its default).
// Usage: node dist/bench/duckprep.js OUT FLOWTENSOR_MANIFEST CSV...   Prints one JSON line.
import fs from 'node:fs';
import path from 'node:path';
import { canonicalHeader, loadConfig } from '../src/config.js';

const [out, manifestPath, ...files] = process.argv.slice(2);
const m = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as { features: string[]; scaler: { log1p?: string[] } };
const logs = new Set(m.scaler.log1p ?? []);
// the raw header of the first file, named as flowtensor names it (its header rule and aliases)
const first = fs.readFileSync(files[0], 'latin1').slice(0, 1 << 16).split(/\r?\n/)[0];
const names = canonicalHeader(first.split(','), loadConfig());
const missing = m.features.filter((f) => !names.includes(f));
if (missing.length) throw new Error(`duckprep: the CSV has no column for ${missing.join(', ')}`);
const labelCol = names.find((n) => n === 'label');
if (!labelCol) throw new Error('duckprep: no label column');

const q = (id: string) => `"${id.replace(/"/g, '""')}"`;
const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
const F = m.features;
const clean = (f: string) => `CASE WHEN ${q(f)} IS NULL OR isnan(${q(f)}) THEN 0 WHEN ${q(f)} = 'inf'::DOUBLE THEN ${q(f + '__max')} WHEN ${q(f)} = '-inf'::DOUBLE THEN ${q(f + '__min')} ELSE ${q(f)} END`;
const tr = (f: string) => (logs.has(f) ? `(sign(${clean(f)}) * ln(1 + abs(${clean(f)})))` : `(${clean(f)})`);
const scaled = (f: string, clip: boolean) => {
  const z = `((${tr(f)} - ${q(f + '__mu')}) / (CASE WHEN ${q(f + '__sd')} > 0 THEN ${q(f + '__sd')} ELSE 1 END))`;
  const lo = `((${q(f + '__lo')} - ${q(f + '__mu')}) / (CASE WHEN ${q(f + '__sd')} > 0 THEN ${q(f + '__sd')} ELSE 1 END))`;
  const hi = `((${q(f + '__hi')} - ${q(f + '__mu')}) / (CASE WHEN ${q(f + '__sd')} > 0 THEN ${q(f + '__sd')} ELSE 1 END))`;
  return `(${clip ? `greatest(${lo}, least(${hi}, ${z}))` : z})::FLOAT AS ${q(f)}`;
};

const { DuckDBInstance } = await import('@duckdb/node-api');
const t0 = performance.now();
const c0 = process.cpuUsage();
const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
const run = (sql: string) => con.run(sql);
const csv = `read_csv([${files.map(lit).join(', ')}], header = true, names = [${names.map(lit).join(', ')}], all_varchar = true, ignore_errors = true, null_padding = true)`;
await run(`CREATE TABLE t AS SELECT *, (hash(${F.map(q).join(', ')}, label) % 100)::INTEGER AS b FROM (SELECT ${F.map((f) => `TRY_CAST(${q(f)} AS DOUBLE) AS ${q(f)}`).join(', ')}, ${q(labelCol)} AS label FROM ${csv} WHERE ${q(labelCol)} IS NOT NULL AND trim(${q(labelCol)}) <> '' AND trim(${q(labelCol)}) <> 'Label')`);
await run(`CREATE TABLE st AS SELECT ${F.map((f) => `max(${q(f)}) FILTER (WHERE isfinite(${q(f)})) AS ${q(f + '__max')}, min(${q(f)}) FILTER (WHERE isfinite(${q(f)})) AS ${q(f + '__min')}`).join(', ')} FROM t WHERE b < 70`);
await run(`CREATE TABLE st2 AS SELECT ${F.map((f) => `avg(${tr(f)}) AS ${q(f + '__mu')}, stddev_pop(${tr(f)}) AS ${q(f + '__sd')}, min(${tr(f)}) AS ${q(f + '__lo')}, max(${tr(f)}) AS ${q(f + '__hi')}`).join(', ')} FROM t, st WHERE b < 70`);
fs.mkdirSync(out, { recursive: true });
const rows: Record<string, number> = {};
for (const [split, where, clip] of [['train', 'b < 70', false], ['val', 'b >= 70 AND b < 85', true], ['test', 'b >= 85', true]] as const) {
  const file = path.join(out, `${split}.parquet`);
  await run(`COPY (SELECT ${F.map((f) => scaled(f, clip)).join(', ')}, label FROM t, st, st2 WHERE ${where}) TO ${lit(file)} (FORMAT parquet)`);
  const r = await con.runAndReadAll(`SELECT count(*) FROM ${lit(file)}`);
  rows[split] = Number(r.getRows()[0][0]);
}
const seconds = (performance.now() - t0) / 1000;
const u = process.cpuUsage(c0);
console.log(JSON.stringify({ seconds, cpu_s: (u.user + u.system) / 1e6, rows, peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024), duckdb: (await con.runAndReadAll('SELECT version()')).getRows()[0][0] }));
