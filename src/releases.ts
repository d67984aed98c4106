// Which layout and release a CSV header belongs to, across every shipped data-set config, and which
// model columns it leaves unmapped. A release is the feature extractor's version (original CICIDS2017,
// the improved CNS2022 re-extraction, CSE-CIC-IDS2018 / CICFlowMeter-V4): the same column names carry
// other values in another release, so a shard set holds one release unless the user says otherwise.
import fs from 'node:fs';
import zlib from 'node:zlib';
import { canonicalHeader, detectFormat, loadConfig, shippedConfigs, type DatasetConfig } from './config.js';
import { UserError } from './errors.js';

export interface Layout {
  /** data-set config that reads it */
  config: string;
  format: string;
  release: string;
  /** header columns that config knows */
  known: number;
  /** matched by a detection rule (not a config's fallback format) */
  ruled?: boolean;
}

/**
 * The layout of a raw header: among the shipped configs, the one whose rules match and which knows the
 * most of the header's columns (a format matched only by a config's fallback counts after any rule).
 */
export function detectLayout(raw: string[], configs: string[] = shippedConfigs()): Layout | null {
  let best: (Layout & { ruled: boolean }) | null = null;
  for (const name of configs) {
    const cfg = loadConfig(name);
    const canonical = canonicalHeader(raw, cfg);
    const cols = new Set(cfg.columns);
    const known = canonical.filter((c) => cols.has(c)).length;
    const format = detectFormat(raw, canonical, cfg);
    const rule = cfg.formats[format];
    if (!rule) continue;
    const ruled = !!(rule.detect_any || rule.detect_all || rule.detect_raw_any || rule.detect_raw_all);
    const cand = { config: cfg.name, format, release: rule.release, known, ruled };
    if (!best || (cand.ruled && !best.ruled) || (cand.ruled === best.ruled && cand.known > best.known)) best = cand;
  }
  return best;
}

/**
 * The error for a header that another data-set config reads better than the one in use, or null: it knows
 * more of its columns, or a rule of it recognises the layout while the one in use does not.
 */
export function misreadError(where: string, raw: string[], cfg: DatasetConfig, knownHere: number): UserError | null {
  const better = detectLayout(raw);
  if (!better || better.config === cfg.name) return null;
  const format = detectFormat(raw, canonicalHeader(raw, cfg), cfg);
  const rule = cfg.formats[format];
  const ruledHere = !!rule && !!(rule.detect_any || rule.detect_all || rule.detect_raw_any || rule.detect_raw_all);
  if (!(better.known > knownHere || (better.ruled && !ruledHere))) return null;
  const why = better.known > knownHere ? `which the ${cfg.name} config misreads (${knownHere} of its columns known, ${better.known} by ${better.config})` : `which the ${cfg.name} config does not recognise`;
  return new UserError(`${where}: the header is the ${better.release} layout (${better.format}), ${why}`, `read it with --config ${better.config}`);
}

/** Model columns (filter's, before ipsplit) a header does not provide: neither the column, nor its twin, nor optional. */
export function missingModelColumns(canonical: string[], columns: string[], cfg: DatasetConfig): string[] {
  const have = new Set(canonical);
  const optional = new Set(cfg.optional_columns);
  return columns.filter((c) => !have.has(c) && !optional.has(c) && !(cfg.derived_columns[c] && have.has(cfg.derived_columns[c])));
}

/** The first line of a CSV (gzip read transparently), split on the delimiter; at most 1 MiB is read. */
export function readHeaderLine(file: string, delimiter = ','): string[] {
  const fd = fs.openSync(file, 'r');
  let buf: Buffer;
  try {
    const head = Buffer.alloc(1 << 20);
    const n = fs.readSync(fd, head, 0, head.length, 0);
    buf = head.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = zlib.gunzipSync(buf, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch (e) {
      throw new UserError(`${file}: corrupt gzip data (${(e as Error).message})`, 'check the download; gunzip -t FILE tells whether it is intact');
    }
  }
  // the first line that is not blank (or delimiters only), as the parser takes it
  let start = 0;
  for (;;) {
    let end = buf.indexOf(0x0a, start);
    if (end < 0) end = buf.length;
    let line = buf.subarray(start, end).toString('utf8');
    if (line.endsWith('\r')) line = line.slice(0, -1);
    line = line.replace(/^\uFEFF/, '');
    const cells = line.split(delimiter).map((x) => x.replace(/^"|"$/g, ''));
    if (cells.some((c) => c.trim() !== '') || end >= buf.length) return cells;
    start = end + 1;
  }
}

export interface InputLayout extends Layout {
  file: string;
  /** model columns the file lacks (zero-filled only with --allow-missing-features) */
  missing: string[];
}

/** A one-line list of files by release, e.g. "cicids2017-improved: 13 files (a.csv, b.csv, …); cicids2017: 2 files (…)". */
export function describeReleases(inputs: { file: string; release: string }[], base: (f: string) => string): string {
  const by = new Map<string, string[]>();
  for (const i of inputs) by.set(i.release, [...(by.get(i.release) ?? []), base(i.file)]);
  return [...by].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([rel, files]) => `${rel}: ${files.length} file${files.length === 1 ? '' : 's'} (${files.slice(0, 3).join(', ')}${files.length > 3 ? ', …' : ''})`)
    .join('; ');
}
