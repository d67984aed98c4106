// Data-set knowledge lives in config/*.json; this module loads it and derives lookup tables.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { ScalerMethod } from './manifest.js';

export type NanPolicy = 'zero' | 'drop' | 'quarantine';
export type InfPolicy = 'train_max' | 'train_min' | 'zero' | 'drop' | 'quarantine';

export interface SanitizePolicy {
  nan: NanPolicy;
  empty: NanPolicy;
  text: NanPolicy;
  posinf: InfPolicy;
  neginf: InfPolicy;
}

export interface DatasetConfig {
  name: string;
  string_columns: string[];
  label_columns: string[];
  ip_columns: string[];
  identifier_columns: string[];
  columns: string[];
  aliases: Record<string, string>;
  derived_columns: Record<string, string>;
  unused_fields: string[];
  /**
   * Published layouts, tried in order: a rule matches on canonical names (detect_any / detect_all) or on
   * raw header names, trimmed (detect_raw_any / detect_raw_all); a format without a rule is the fallback.
   * `release` names the feature extractor's release: files of different releases are not mixed.
   */
  formats: Record<string, FormatRule>;
  /** Model columns a file may lack without being refused (zero-filled with a missing flag, counted). */
  optional_columns: string[];
  /** The class of normal traffic (the --max-benign-ratio cap, reports). */
  benign_class: string;
  /** 12-hour timestamps without AM/PM: hours below this are afternoon (null: 24-hour clocks). */
  timestamp_pm_below_hour: number | null;
  /** Raw headers of the layouts `synth --layout` writes. */
  layouts: Record<string, string[]>;
  /** synth's class profiles (CICIDS2017 classes) -> this data set's label spelling. */
  synth_labels?: Record<string, string>;
  classes: string[];
  label_spellings: Record<string, string>;
  format_label_spellings: Record<string, Record<string, string>>;
  merged_labels: Record<string, string>;
  attempted: { suffix_key: string; default_policy: 'benign' | 'attack' | 'drop'; policies: string[] };
  split: { train: number; val: number; test: number };
  scale: { method: ScalerMethod; clip: boolean; log1p: string[] };
  sanitize: { default: SanitizePolicy; columns: Record<string, Partial<SanitizePolicy>> };
}

export interface FormatRule {
  detect_any?: string[];
  detect_all?: string[];
  detect_raw_any?: string[];
  detect_raw_all?: string[];
  release: string;
  /** ymd: 2017-07-06 12:39:06.818901; mdy12: 7/6/2017 3:30 (12-hour, no AM/PM); dmy24: 28/02/2018 08:22:13. */
  timestamp?: 'ymd' | 'mdy12' | 'dmy24';
  note: string;
}

/** Root of the installed package (holds config/, package.json). Works from src/ and dist/src/. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      readFileSync(path.join(dir, 'package.json'));
      return dir;
    } catch {
      dir = path.dirname(dir);
    }
  }
  throw new Error('flowtensor: cannot find package root');
}

export function packageVersion(): string {
  return JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')).version;
}

const cache = new Map<string, DatasetConfig>();

/** Names of the data-set configs shipped in config/ (cicids2017 first). */
export function shippedConfigs(): string[] {
  const names = readdirSync(path.join(packageRoot(), 'config'))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5))
    .sort();
  return ['cicids2017', ...names.filter((n) => n !== 'cicids2017')];
}

/** Load a data-set config by name (config/NAME.json) or by path. */
export function loadConfig(nameOrPath = 'cicids2017'): DatasetConfig {
  const hit = cache.get(nameOrPath);
  if (hit) return hit;
  const file = nameOrPath.endsWith('.json') ? nameOrPath : path.join(packageRoot(), 'config', `${nameOrPath}.json`);
  const cfg = JSON.parse(readFileSync(file, 'utf8')) as DatasetConfig;
  // fields added later: a config written for an older flowtensor still loads
  cfg.optional_columns ??= [];
  cfg.benign_class ??= 'BENIGN';
  cfg.timestamp_pm_below_hour ??= null;
  cfg.layouts ??= {};
  for (const rule of Object.values(cfg.formats ?? {})) rule.release ??= cfg.name;
  cache.set(nameOrPath, cfg);
  return cfg;
}

/** The header rule of the seed: trim, lower-case, '/' -> '_per_', spaces -> '_'. */
export function normalizeHeaderName(raw: string): string {
  return raw.replace(/^\uFEFF/, '').trim().toLowerCase().replace(/\//g, '_per_').replace(/\s+/g, '_');
}

/**
 * Normalise a whole header: names by the rule above, repeated names get '.1', '.2' (pandas),
 * then aliases map other spellings to canonical names.
 */
export function canonicalHeader(rawNames: string[], cfg: DatasetConfig): string[] {
  const seen = new Map<string, number>();
  return rawNames.map((raw) => {
    let name = normalizeHeaderName(raw);
    name = cfg.aliases[name] ?? name;
    const k = seen.get(name) ?? 0;
    seen.set(name, k + 1);
    return k === 0 ? name : `${name}.${k}`;
  });
}

/** Detect which published layout a header belongs to. */
export function detectFormat(rawNames: string[], canonical: string[], cfg: DatasetConfig): string {
  const set = new Set(canonical);
  const raw = new Set(rawNames.map((r) => r.trim()));
  let fallback = 'derived';
  for (const [fmt, rule] of Object.entries(cfg.formats)) {
    if (!rule.detect_any && !rule.detect_all && !rule.detect_raw_any && !rule.detect_raw_all) {
      fallback = fmt;
      continue;
    }
    if (rule.detect_any && rule.detect_any.some((c) => set.has(c))) return fmt;
    if (rule.detect_raw_any && rule.detect_raw_any.some((c) => raw.has(c))) return fmt;
    if (rule.detect_all && rule.detect_all.every((c) => set.has(c))) return fmt;
    if (rule.detect_raw_all && rule.detect_raw_all.every((c) => raw.has(c))) return fmt;
  }
  return fallback;
}

/** Label key: lower-case letters and digits only. */
export function labelKey(label: string): string {
  return label.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** Model columns kept by the filter stage, in canonical order (label excluded). */
export function modelColumns(cfg: DatasetConfig, opts: { dropIdentifiers?: boolean; keep?: string[]; drop?: string[] } = {}): string[] {
  const unused = new Set(cfg.unused_fields);
  for (const d of opts.drop ?? []) unused.add(d);
  for (const k of opts.keep ?? []) unused.delete(k);
  if (opts.dropIdentifiers) for (const c of cfg.identifier_columns) unused.add(c);
  const labelCols = new Set(cfg.label_columns);
  return cfg.columns.filter((c) => !unused.has(c) && !labelCols.has(c));
}
