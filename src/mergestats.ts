// `flowtensor merge-stats`: statistics files (prep --analyze, or earlier merges) into one.
import path from 'node:path';
import { UserError } from './errors.js';
import { dataDirOf, mergeTwo, readStats, writeStats, type FpTable, type PartStats } from './stats.js';
import { shardRowReader } from './transform.js';

/** Merge in memory (left to right; the result is the same in any order). */
export function mergeAll(list: { s: PartStats; fp: FpTable | null }[], dir: string): { s: PartStats; fp: FpTable | null } {
  if (list.length === 0) throw new UserError('merge-stats: give at least one statistics file');
  let acc = list[0];
  for (const x of list.slice(1)) {
    // rows are read by partition: any of the two holds it
    const both = { ...acc.s, parts: [...acc.s.parts, ...x.s.parts] };
    const read = shardRowReader(dir, () => both);
    acc = mergeTwo(acc.s, acc.fp, x.s, x.fp, read);
  }
  return acc;
}

export function mergeStatsFiles(files: string[], out: string): PartStats {
  const dirs = new Set(files.map(dataDirOf));
  if (dirs.size > 1) throw new UserError(`merge-stats: the statistics belong to different shard folders (${[...dirs].slice(0, 3).join(', ')})`, 'merge the statistics of one folder (they live in DIR/parts/)');
  const dir = [...dirs][0];
  if (path.resolve(path.dirname(out)) !== path.join(dir, 'parts')) throw new UserError(`merge-stats --out ${out}: write merged statistics into ${path.join(dir, 'parts')}, beside the partitions'`, 'the merged file names its fingerprint table and shards relative to that folder');
  const r = mergeAll(files.map(readStats), dir);
  writeStats(out, r.s, r.fp);
  return r.s;
}
