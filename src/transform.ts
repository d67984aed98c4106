// Pass 2 (the transform of analyze → merge → transform): with statistics that cover every partition,
// rewrite one partition's shards scaled (taking out the duplicates of rows kept in another partition and
// the rows the per-class minimum moves), then, once every partition is done, write the moved rows, the
// quarantined rows with true line numbers, and manifest.json last.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { SPLITS, sortCounts, type Counts, type SplitName } from './batch.js';
import { encodeSafetensors, readSafetensors, readSafetensorsRows } from './safetensors.js';
import { writeFileAtomic, ensureDir, removeSpares } from './atomic.js';
import { FORMAT, FORMAT_VERSION, MANIFEST, PASS1, safeJoin, writeJsonAtomic, type Manifest, type ShardInfo, type SplitInfo } from './manifest.js';
import { applyScaler, runShardJobs, type ShardJob, type ShardJobResult } from '../stages/scale.js';
import { movedName } from '../stages/shard.js';
import { encodeParquet, parquetMetadata, parquetName } from './parquet.js';
import { UserError } from './errors.js';
import { readJsonFile } from './safefile.js';
import { PARTS_DIR, carryOf, finalExamples, finalSources, finalize, partName, readStats, type Final, type FpTable, type PartStats } from './stats.js';

/** What pass 2 did to one partition. */
export interface PartResult {
  format: 'flowtensor-scaled';
  index: number;
  plan: string;
  /** Scaled shards per split, in order. */
  shards: Record<SplitName, ShardInfo[]>;
  clipped: Record<SplitName, Record<string, number>>;
  inf: Record<string, number>;
}

/** Rows the per-class minimum moves, scaled: their move (index in Final.moves) and target split. */
export interface MovedRows {
  x: Float32Array;
  y: Int32Array;
  move: Int32Array;
}

export const scaledFile = (dir: string, k: number) => path.join(dir, PARTS_DIR, `${partName(k)}.scaled.json`);
const movedFile = (dir: string, k: number) => path.join(dir, PARTS_DIR, `${partName(k)}.moved.safetensors`);

/** Where a row of a partition's split lies: its shard and its row in it. */
function locate(s: PartStats, k: number, split: number, ord: number): { file: string; rows: number; row: number; index: number } {
  const part = s.parts.find((p) => p.index === k)!;
  const index = Math.floor(ord / s.shard_rows);
  const sh = part.shards[SPLITS[split]][index];
  if (!sh || ord % s.shard_rows >= sh.rows) throw new UserError(`partition ${k}: row ${ord} of ${SPLITS[split]} is in no shard`, 'the statistics do not match the shards; prepare the folder again');
  return { file: sh.file, rows: sh.rows, row: ord % s.shard_rows, index };
}

/** A reader of unscaled rows for merges (dedupe): each row read in place from its shard. */
export function shardRowReader(dir: string, s: () => PartStats): (part: number, split: number, ord: number) => Float32Array {
  return (part, split, ord) => {
    const at = locate(s(), part, split, ord);
    const r = readSafetensorsRows(safeJoin(dir, at.file, 'statistics'), 'features', [at.row]);
    if (r.metadata.scaled === 'true') throw new UserError(`${at.file}: already scaled`, 'merge the statistics before pass 2 (flowtensor scale --partition)');
    return r.rows;
  };
}

/**
 * Pass 2 of partition k: scale its shards in place (atomically, each shard once: a rerun after a kill
 * only checksums the shards already scaled), taking out the rows listed, and set the moved rows aside.
 */
export async function scalePartition(o: { dir: string; s: PartStats; fp: FpTable | null; fin: Final; k: number; pool: Worker[]; onShard?: (file: string, done: number, total: number) => void }): Promise<{ result: PartResult; moved: MovedRows }> {
  const { dir, s, fp, fin, k } = o;
  const F = s.features.length;
  const part = s.parts.find((p) => p.index === k);
  if (!part) throw new UserError(`the statistics hold no partition ${k}`);
  const remove = new Map<string, number[]>();
  const take = (split: number, ord: number) => {
    const at = locate(s, k, split, ord);
    (remove.get(at.file) ?? remove.set(at.file, []).get(at.file)!).push(at.row);
  };
  if (fp) for (let i = 0; i < fp.drops.length; i += 3) if (fp.drops[i] === k) take(fp.drops[i + 1], fp.drops[i + 2]);
  const mine = fin.moves.map((m, mi) => ({ m, mi, ords: m.locs[k] ?? [] })).filter((x) => x.ords.length > 0);
  for (const { m, ords } of mine) for (const ord of ords) take(m.from, ord);
  // the moved rows first, before any of their shards is rewritten (a rerun finds them in their file)
  let moved: MovedRows = { x: new Float32Array(0), y: new Int32Array(0), move: new Int32Array(0) };
  const clippedMoved: Record<SplitName, Record<string, number>> = { train: {}, val: {}, test: {} };
  const infMoved: Record<string, number> = {};
  const mf = movedFile(dir, k);
  if (mine.length) {
    const sources = new Set(mine.flatMap(({ m, ords }) => ords.map((ord) => locate(s, k, m.from, ord).file)));
    const anyScaled = [...sources].some((f) => {
      const full = safeJoin(dir, f, 'statistics');
      if (!fs.existsSync(full) && fs.existsSync(parquetName(full))) return true; // written as Parquet already
      return readSafetensorsRows(full, 'features', []).metadata.scaled === 'true';
    });
    if (anyScaled && fs.existsSync(mf)) {
      const st = readSafetensors(mf, { within: path.join(dir, PARTS_DIR) });
      moved = { x: st.get('features') as Float32Array, y: st.get('labels') as Int32Array, move: st.get('move') as Int32Array };
      for (const [key, into] of [['clipped', clippedMoved], ['infinities', infMoved]] as const) Object.assign(into, JSON.parse(st.metadata[key] ?? '{}'));
    } else {
      if (anyScaled) throw new UserError(`${dir}: pass 2 of partition ${k} was interrupted after it rewrote shards holding moved rows`, 'prepare the folder again');
      const n = mine.reduce((a, x) => a + x.ords.length, 0);
      moved = { x: new Float32Array(n * F), y: new Int32Array(n), move: new Int32Array(n) };
      // the rows, read in place, shard by shard
      const want = new Map<string, { at: number; row: number }[]>();
      let r = 0;
      for (const { m, mi, ords } of mine)
        for (const ord of ords) {
          const at = locate(s, k, m.from, ord);
          (want.get(at.file) ?? want.set(at.file, []).get(at.file)!).push({ at: r, row: at.row });
          moved.y[r] = m.label;
          moved.move[r] = mi;
          r++;
        }
      for (const [file, list] of want) {
        const got = readSafetensorsRows(safeJoin(dir, file, 'statistics'), 'features', list.map((x) => x.row)).rows;
        list.forEach((x, j) => moved.x.set(got.subarray(j * F, (j + 1) * F), x.at * F));
      }
      for (let i = 0; i < n; i++) {
        const row = moved.x.subarray(i * F, (i + 1) * F);
        const c: Record<string, number> = {};
        const to = fin.moves[moved.move[i]].to;
        // scaled and clipped as rows of the split they go to
        applyScaler(row, F, fin.scaler, { clipped: c, inf: infMoved }, s.features);
        for (const [f, v] of Object.entries(c)) clippedMoved[SPLITS[to]][f] = (clippedMoved[SPLITS[to]][f] ?? 0) + v;
      }
      {
        ensureDir(path.dirname(mf));
        writeFileAtomic(mf, encodeSafetensors({ features: { dtype: 'F32', shape: [n, F], data: moved.x }, labels: { dtype: 'I32', shape: [n], data: moved.y }, move: { dtype: 'I32', shape: [n], data: moved.move } }, { format: 'flowtensor-moved', clipped: JSON.stringify(clippedMoved), infinities: JSON.stringify(infMoved) }));
      }
    }
  }
  const jobs: ShardJob[] = [];
  const parquet = s.options.shard_format === 'parquet';
  for (const split of SPLITS)
    for (const sh of part.shards[split]) {
      const rm = remove.get(sh.file);
      jobs.push({ full: safeJoin(dir, sh.file, 'statistics'), file: sh.file, split, rows: sh.rows, ...(rm ? { remove: [...new Set(rm)].sort((a, b) => a - b) } : {}), ...(parquet ? { parquet: { labels: s.labels } } : {}) });
    }
  const useMain = o.pool.length < os.availableParallelism();
  let results: ShardJobResult[];
  try {
    results = await runShardJobs(jobs, fin.scaler, s.features, o.pool, useMain, (r, done) => o.onShard?.(r.file, done, jobs.length));
  } finally {
    removeSpares(new Set(jobs.map((j) => path.dirname(j.full)))); // every thread's, once all have answered
  }
  const result: PartResult = { format: 'flowtensor-scaled', index: k, plan: s.plan, shards: { train: [], val: [], test: [] }, clipped: clippedMoved, inf: { ...infMoved } };
  results.forEach((r: ShardJobResult, j) => {
    const split = jobs[j].split;
    result.shards[split].push({ file: r.file, rows: r.rows, bytes: r.bytes, sha256: r.sha256, class_counts: named(r.class_counts, s.labels) });
    for (const [f, v] of Object.entries(r.clipped)) result.clipped[split][f] = (result.clipped[split][f] ?? 0) + v;
    for (const [f, v] of Object.entries(r.inf)) result.inf[f] = (result.inf[f] ?? 0) + v;
  });
  if (s.partitions > 1) writeJsonAtomic(scaledFile(dir, k), result);
  return { result, moved };
}

const named = (cc: Record<string, number>, labels: string[]) => Object.fromEntries(Object.entries(cc).map(([k, v]) => [labels[Number(k)] ?? k, v]));

/** A partition's pass-2 result and moved rows, written by `scale --partition`. */
export function readPartResult(dir: string, k: number, plan: string): { result: PartResult; moved: MovedRows } {
  const f = scaledFile(dir, k);
  if (!fs.existsSync(f)) throw new UserError(`${dir}: partition ${k} is not scaled yet (no ${path.relative(dir, f)})`, `run: flowtensor scale ${dir} --stats STATS --partition ${k}/N`);
  const result = readJsonFile<PartResult>(f, { hint: 'scale the partition again' });
  if (result.format !== 'flowtensor-scaled' || result.index !== k || result.plan !== plan) throw new UserError(`${f}: not pass 2 of partition ${k} of this plan`, 'scale the partition again');
  const mf = movedFile(dir, k);
  let moved: MovedRows = { x: new Float32Array(0), y: new Int32Array(0), move: new Int32Array(0) };
  if (fs.existsSync(mf)) {
    const st = readSafetensors(mf, { within: path.join(dir, PARTS_DIR) });
    moved = { x: st.get('features') as Float32Array, y: st.get('labels') as Int32Array, move: st.get('move') as Int32Array };
  }
  return { result, moved };
}

/**
 * The last step: the moved rows (in the order of their moves, then of partitions and rows, so the same
 * whatever the partitioning), the quarantined rows with true line numbers, manifest.json last.
 */
export function finish(o: { dir: string; s: PartStats; fin: Final; parts: { result: PartResult; moved: MovedRows }[]; hostContext: boolean; rejects?: string }): Manifest {
  const { dir, s, fin } = o;
  const F = s.features.length;
  const parts = [...o.parts].sort((a, b) => a.result.index - b.result.index);
  const splits: Record<SplitName, SplitInfo> = { train: emptySplit(), val: emptySplit(), test: emptySplit() };
  const clipped: Record<SplitName, Record<string, number>> = { train: {}, val: {}, test: {} };
  const inf: Record<string, number> = {};
  for (const { result } of parts) {
    for (const split of SPLITS) {
      for (const sh of result.shards[split]) addShard(splits[split], sh);
      for (const [f, v] of Object.entries(result.clipped[split])) clipped[split][f] = (clipped[split][f] ?? 0) + v;
    }
    for (const [f, v] of Object.entries(result.inf)) inf[f] = (inf[f] ?? 0) + v;
  }
  // moved rows: stable order by move, then partition, then row
  const all: { x: Float32Array; y: number; move: number }[] = [];
  for (const { moved } of parts) for (let i = 0; i < moved.y.length; i++) all.push({ x: moved.x.subarray(i * F, (i + 1) * F), y: moved.y[i], move: moved.move[i] });
  all.sort((a, b) => a.move - b.move);
  for (const [si, split] of SPLITS.entries()) {
    const rows = all.filter((r) => fin.moves[r.move].to === si);
    for (let start = 0, index = 0; start < rows.length; start += s.shard_rows, index++) {
      const chunk = rows.slice(start, start + s.shard_rows);
      const n = chunk.length;
      const x = new Float32Array(n * F);
      const y = new Int32Array(n);
      chunk.forEach((r, i) => {
        x.set(r.x, i * F);
        y[i] = r.y;
      });
      const parquet = s.options.shard_format === 'parquet';
      const file = parquet ? parquetName(movedName(split, index)) : movedName(split, index);
      const meta = { format: 'flowtensor', split, shard: String(index), scaled: 'true', moved: 'true', clipped: '{}', infinities: '{}' };
      const prev = o.hostContext ? new Int32Array(n).fill(-1) : null;
      const data = parquet
        ? [encodeParquet({ x, y, prev }, s.features, parquetMetadata(meta, { features: s.features, labels: s.labels, scaler: fin.scaler }))]
        : encodeSafetensors({ features: { dtype: 'F32', shape: [n, F], data: x }, labels: { dtype: 'I32', shape: [n], data: y }, ...(prev ? { prev: { dtype: 'I32' as const, shape: [n], data: prev } } : {}) }, meta);
      writeFileAtomic(path.join(dir, file), data);
      const h = crypto.createHash('sha256');
      let bytes = 0;
      for (const p of data) {
        h.update(p);
        bytes += p.byteLength;
      }
      const cc: Record<string, number> = {};
      for (const lab of [...new Set(chunk.map((r) => r.y))].sort((a, b) => a - b)) cc[s.labels[lab]] = chunk.filter((r) => r.y === lab).length;
      addShard(splits[split], { file, rows: n, bytes, sha256: h.digest('hex'), class_counts: cc });
    }
  }
  for (const split of SPLITS) {
    const want = Object.values(fin.rows[split]).reduce((a, b) => a + b, 0);
    if (splits[split].rows !== want) throw new Error(`${split}: the shards hold ${splits[split].rows} rows, the statistics say ${want}`);
    splits[split].class_counts = Object.fromEntries(Object.entries(splits[split].class_counts).sort((a, b) => s.labels.indexOf(a[0]) - s.labels.indexOf(b[0])));
  }
  // no file of an earlier run (another partitioning) stays beside the manifest
  const listed = new Set(SPLITS.flatMap((sp) => splits[sp].shards.map((sh) => sh.file)));
  for (const split of SPLITS) {
    const d = path.join(dir, split);
    for (const f of fs.existsSync(d) ? fs.readdirSync(d) : []) if (/\.(safetensors|parquet)$/.test(f) && !listed.has(`${split}/${f}`)) fs.rmSync(path.join(d, f), { force: true });
  }
  if (s.partitions > 1) writeRejects(dir, s, o.rejects);
  const stages = sortCounts({ ...s.stages, split: { ...(s.stages.split ?? {}), rows: { train: splits.train.rows, val: splits.val.rows, test: splits.test.rows } } });
  const examples = finalExamples(s);
  const extra = accountingOf({ stages, splits, examples }, { inf_replaced: inf });
  const manifest: Manifest = {
    format: FORMAT,
    format_version: FORMAT_VERSION,
    flowtensor_version: s.flowtensor_version,
    dataset: s.dataset,
    features: s.features,
    num_features: F,
    labels: s.labels,
    num_classes: s.labels.length,
    shard_rows: s.shard_rows,
    scaler: fin.scaler,
    splits,
    accounting: extra.accounting,
    quality: { ...extra.quality, clipped_to_train_range: clipped, infinities_replaced: inf },
    stages,
    sources: finalSources(s),
    options: s.options,
  };
  writeJsonAtomic(path.join(dir, MANIFEST), manifest);
  fs.rmSync(path.join(dir, PASS1), { force: true });
  fs.rmSync(path.join(dir, PARTS_DIR), { recursive: true, force: true });
  return manifest;
}

function emptySplit(): SplitInfo {
  return { rows: 0, class_counts: {}, shards: [] };
}

function addShard(sp: SplitInfo, sh: ShardInfo): void {
  if (sh.rows === 0) return;
  sp.shards.push(sh);
  sp.rows += sh.rows;
  for (const [k, v] of Object.entries(sh.class_counts)) sp.class_counts[k] = (sp.class_counts[k] ?? 0) + v;
}

/** The partitions' quarantined rows, in partition order, with true line numbers. */
function writeRejects(dir: string, s: PartStats, target?: string): void {
  const carry = carryOf(s);
  const out: string[] = [];
  for (const p of s.parts) {
    const f = path.join(dir, PARTS_DIR, `${partName(p.index)}.rejects.ndjson`);
    if (!fs.existsSync(f)) continue;
    const first = s.tasks.filter((t) => t.part === p.index).sort((a, b) => a.index - b.index)[0];
    const add = first ? carry(first.index) : 0;
    const firstFile = first ? s.sources[first.file]?.file : undefined;
    for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
      if (!line) continue;
      const r = JSON.parse(line) as { file: string; line: number };
      if (add && r.file === firstFile) r.line += add;
      out.push(JSON.stringify(r));
    }
  }
  writeFileAtomic(target ?? path.join(dir, 'rejects.ndjson'), [out.length ? out.join('\n') + '\n' : '']);
}

/** Row accounting: rows in = rows in shards + quarantined + dropped + deduplicated. */
export function accountingOf(p: { stages: Record<string, Counts>; splits: Record<SplitName, { rows: number }>; examples: unknown }, scaleCounts: { inf_replaced: Record<string, number> }): Pick<Manifest, 'accounting' | 'quality'> {
  const st = p.stages;
  const num = (c: Counts | undefined, k: string) => ((c?.[k] as number) ?? 0);
  const dataRows = num(st.parse, 'data_rows');
  const rowsOut = p.splits.train.rows + p.splits.val.rows + p.splits.test.rows;
  const quarantined = num(st.parse, 'quarantined') + num(st.labels, 'missing_label') + num(st.sanitize, 'quarantined_rows');
  const dropped = num(st.labels, 'dropped_attempted') + num(st.sanitize, 'dropped_rows');
  const dedup = num(st.split, 'deduplicated');
  const accounting = {
    data_rows: dataRows,
    rows_in_shards: rowsOut,
    quarantined,
    dropped,
    deduplicated: dedup,
    blank_rows: num(st.parse, 'blank_rows'),
    header_rows: num(st.parse, 'header_rows'),
    unaccounted: dataRows - rowsOut - quarantined - dropped - dedup,
  };
  const quality = {
    quarantine_reasons: st.parse?.quarantine_reasons ?? {},
    replaced_values: st.sanitize?.replaced ?? {},
    infinities_kept_for_scale: st.sanitize?.kept_for_scale ?? {},
    negative_values: st.sanitize?.negative_values ?? {},
    examples: p.examples,
    filled_missing_column: st.filter?.filled_missing_column ?? {},
    derived_column: st.filter?.derived_column ?? {},
    ip: st.ipsplit ?? {},
    label_spellings: st.labels?.spellings ?? {},
    attempted: st.labels?.attempted ?? {},
    new_labels: st.labels?.new_labels ?? {},
    cp1252_cells: num(st.parse, 'cp1252_cells'),
    short_rows_accepted: num(st.parse, 'short_rows_accepted'),
    long_rows_accepted: num(st.parse, 'long_rows_accepted'),
    infinities_replaced_at_scale: scaleCounts.inf_replaced,
  };
  return { accounting, quality };
}

/** `flowtensor scale DIR`: pass 2 of a one-partition folder (pass1.json: its statistics), all in this process. */
export async function scaleDir(o: { dir: string; pool?: Worker[]; onShard?: (file: string, done: number, total: number) => void; stats?: { s: PartStats; fp: FpTable | null } }): Promise<Manifest> {
  const dir = o.dir;
  let st = o.stats;
  if (!st) {
    const p1file = path.join(dir, PASS1);
    if (!fs.existsSync(p1file)) {
      if (fs.existsSync(path.join(dir, MANIFEST))) throw new UserError(`${dir}: already scaled (manifest.json exists)`, 'prepare again to rescale');
      throw new UserError(`${dir}: no ${PASS1}: pass 1 (shard) has not finished here`, `run: flowtensor shard --out ${dir} < records.ndjson`);
    }
    st = readStats(p1file);
  }
  if (st.s.partitions !== 1) throw new UserError(`${dir}: the statistics are of partition ${st.s.parts[0]?.index}/${st.s.partitions}`, 'scale each partition with --stats MERGED --partition K/N, then --finish');
  const fin = finalize(st.s);
  const r = await scalePartition({ dir, s: st.s, fp: st.fp, fin, k: 0, pool: o.pool ?? [], onShard: o.onShard });
  return finish({ dir, s: st.s, fin, parts: [r], hostContext: st.s.options.row_context === 'host' });
}
