// Data-set knowledge lives in config/*.json; this module loads it and derives lookup tables.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { UserError } from './errors.js';
import { readJsonFile } from './safefile.js';
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
  const isPath = nameOrPath.endsWith('.json') || nameOrPath.includes('/');
  const dir = path.join(packageRoot(), 'config');
  const file = isPath ? nameOrPath : path.join(dir, `${nameOrPath}.json`);
  if (!isPath && !existsSync(file)) {
    const known = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
    throw new UserError(`--config ${nameOrPath}: no such data-set config (known: ${known.join(', ')}; or give a path to a .json file)`);
  }
  const cfg = readJsonFile<DatasetConfig>(file, { hint: 'a data-set config is a JSON object like config/cicids2017.json' });
  checkConfig(cfg, file);
  // fields added later: a config written for an older flowtensor still loads
  cfg.optional_columns ??= [];
  cfg.benign_class ??= 'BENIGN';
  cfg.timestamp_pm_below_hour ??= null;
  cfg.layouts ??= {};
  for (const rule of Object.values(cfg.formats ?? {})) rule.release ??= cfg.name;
  cache.set(nameOrPath, cfg);
  return cfg;
}

/** The fields every part of flowtensor reads from a config, with their types: one clear error for a bad one. */
function checkConfig(c: DatasetConfig, file: string): void {
  const bad = (k: string, what: string) => new UserError(`${file}: ${k} is not ${what}`, 'a data-set config is a JSON object like config/cicids2017.json');
  const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
  const object = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (typeof c.name !== 'string') throw bad('name', 'a string');
  for (const k of ['string_columns', 'label_columns', 'ip_columns', 'identifier_columns', 'columns', 'unused_fields', 'classes'] as const) if (!strings(c[k])) throw bad(k, 'a list of names');
  if (c.classes.length === 0 || c.label_columns.length === 0 || c.columns.length === 0) throw bad('classes, label_columns or columns', 'a non-empty list');
  for (const k of ['aliases', 'derived_columns', 'formats', 'label_spellings', 'format_label_spellings', 'merged_labels'] as const) if (!object(c[k])) throw bad(k, 'an object');
  if (!object(c.attempted) || typeof c.attempted.suffix_key !== 'string' || !['benign', 'attack', 'drop'].includes(c.attempted.default_policy)) throw bad('attempted', 'an object with suffix_key and default_policy (benign, attack or drop)');
  const sp = c.split as unknown as Record<string, unknown>;
  if (!object(sp) || !['train', 'val', 'test'].every((k) => typeof sp[k] === 'number' && (sp[k] as number) >= 0) || (sp.train as number) + (sp.val as number) + (sp.test as number) <= 0) throw bad('split', 'three non-negative shares train, val, test');
  if (!object(c.scale) || typeof c.scale.clip !== 'boolean' || !strings(c.scale.log1p)) throw bad('scale', 'an object with clip and log1p');
  if (!object(c.sanitize) || !object(c.sanitize.default) || !object(c.sanitize.columns)) throw bad('sanitize', 'an object with default and columns');
  if (c.layouts !== undefined && (!object(c.layouts) || !Object.values(c.layouts).every(strings))) throw bad('layouts', 'an object of header name lists');
  if (c.optional_columns !== undefined && !strings(c.optional_columns)) throw bad('optional_columns', 'a list of names');
  if (c.benign_class !== undefined && typeof c.benign_class !== 'string') throw bad('benign_class', 'a string');
  for (const [f, rule] of Object.entries(c.formats)) if (!object(rule) || (rule.release !== undefined && typeof rule.release !== 'string')) throw bad(`formats.${f}`, 'an object with detection rules and a release name');
  if (c.scale.method !== undefined && !['minmax', 'log-minmax', 'log-standard'].includes(c.scale.method)) throw bad('scale.method', 'one of log-standard, log-minmax, minmax');
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
