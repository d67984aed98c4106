// `flowtensor synth`: a CICIDS2017 TrafficLabelling-format CSV with class-dependent feature
// distributions (learnable, not realistic in every detail) and the quirks of the real files:
// leading spaces and a repeated `Fwd Header Length` in the header, Infinity/NaN/empty rates for
// zero-duration flows, cp1252 byte 0x96 in web-attack labels, negative durations, a repeated
// header line, comma-only blank rows, optional CRLF / BOM / IPv6, and a last line without newline.
// `layout` writes the same flows in another published layout (config `layouts`): MachineLearningCVE,
// the improved CNS2022 release, CSE-CIC-IDS2018 / CICFlowMeter-V4 (80 or 84 columns), with that
// layout's timestamps and label spellings.
import fs from 'node:fs';
import { canonicalHeader, loadConfig, shippedConfigs, type DatasetConfig } from './config.js';
import { UserError } from './errors.js';

export interface SynthOptions {
  rows: number;
  seed?: number;
  ipv6?: number; // fraction of rows with IPv6 addresses (0..1)
  crlf?: boolean;
  bom?: boolean;
  quirks?: boolean; // default true
  /** Class mix: 'realistic' (BENIGN-heavy like CICIDS2017) or 'balanced'. */
  mix?: 'realistic' | 'balanced';
  /** Only these classes (canonical names). */
  classes?: string[];
  /** A layout of a shipped config (`synthLayouts()`); default trafficlabelling. */
  layout?: string;
}

/** Every layout synth can write, with the config that reads it. */
export function synthLayouts(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of shippedConfigs()) for (const l of Object.keys(loadConfig(name).layouts)) out[l] ??= name;
  return out;
}

/** Columns of the improved and CICFlowMeter-V4 layouts that CICIDS2017's TrafficLabelling rows lack. */
const FILLERS: Record<string, (i: number) => string> = {
  id: (i) => String(i + 1),
  fwd_rst_flags: () => '0',
  bwd_rst_flags: () => '0',
  icmp_code: () => '-1',
  icmp_type: () => '-1',
  total_tcp_flow_time: () => '0',
  attempted_category: () => '-1',
};

interface Renderer {
  header: string[];
  /** raw column j <- index into the TrafficLabelling row (or -1: a filler) */
  from: number[];
  fill: ((i: number) => string)[];
  time: (d: Date) => string;
  label: (tlLabel: string) => string;
  cfg: DatasetConfig;
}

const pad2 = (n: number) => String(n).padStart(2, '0');

function renderer(layout: string): Renderer {
  const cfgName = synthLayouts()[layout];
  if (!cfgName) throw new UserError(`--layout ${layout}: unknown layout`, `choose one of: ${Object.keys(synthLayouts()).join(', ')}`);
  const cfg = loadConfig(cfgName);
  const tl = loadConfig('cicids2017');
  const tlCanon = canonicalHeader(tl.layouts.trafficlabelling, tl);
  const header = cfg.layouts[layout];
  const canon = canonicalHeader(header, cfg);
  const fmt = Object.entries(cfg.formats).find(([f]) => f === layout)?.[1]?.timestamp ?? 'mdy12';
  const time =
    fmt === 'ymd'
      ? (d: Date) => `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}.${String(d.getUTCMilliseconds() * 1000).padStart(6, '0')}`
      : fmt === 'dmy24'
        ? (d: Date) => `${pad2(d.getUTCDate())}/${pad2(d.getUTCMonth() + 1)}/${d.getUTCFullYear()} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`
        : (d: Date) => `${d.getUTCMonth() + 1}/${d.getUTCDate()}/${d.getUTCFullYear()} ${((d.getUTCHours() + 11) % 12) + 1}:${pad2(d.getUTCMinutes())}`;
  const from = canon.map((c) => tlCanon.indexOf(c));
  const fill = canon.map((c) => FILLERS[c] ?? (() => '0'));
  const label =
    cfg.synth_labels
      ? (l: string) => cfg.synth_labels![canonicalOf(l)] ?? l
      : layout === 'trafficlabelling'
        ? (l: string) => l
        : (l: string) => l.replace(/\x96/g, '-'); // later releases write a hyphen where the original has cp1252's en dash
  return { header, from, fill, time, label, cfg };
}

/** mulberry32: small, fast, deterministic. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Profile {
  label: string; // as written in the original TrafficLabelling files (cp1252 en dash as \x96)
  weight: number;
  ports: number[];
  proto: number;
  logDur: [number, number]; // mean, sd of ln(duration µs)
  fwd: [number, number]; // mean, sd of ln(packets)
  bwd: [number, number];
  fwdLen: [number, number]; // mean, sd of bytes per fwd packet
  bwdLen: [number, number];
  syn: number;
  fin: number;
  rst: number;
  psh: number;
  ack: number;
  winF: number[];
  winB: number[];
  attacker?: boolean;
}

const P = (label: string, weight: number, o: Partial<Profile>): Profile => ({
  label,
  weight,
  ports: [80],
  proto: 6,
  logDur: [10, 2],
  fwd: [1.5, 0.8],
  bwd: [1.5, 0.8],
  fwdLen: [200, 150],
  bwdLen: [800, 600],
  syn: 0.1,
  fin: 0.3,
  rst: 0.05,
  psh: 0.4,
  ack: 0.6,
  winF: [29200, 8192, 65535, -1],
  winB: [29200, 235, -1],
  ...o,
});

const PROFILES: Profile[] = [
  P('BENIGN', 800, { ports: [53, 443, 80, 123, 137, 22, 8080, 3268, 389, 445], logDur: [11, 3], proto: 17, attacker: false }),
  P('DDoS', 45, { ports: [80], logDur: [13.5, 1], fwd: [1.2, 0.3], bwd: [1.5, 0.4], fwdLen: [7, 5], bwdLen: [1900, 300], syn: 0, fin: 0.05, ack: 0.9, psh: 0.1, winF: [256, 8192], winB: [229], attacker: true }),
  P('PortScan', 55, { ports: [21, 22, 23, 25, 110, 139, 443, 1720, 3389, 5900, 8080, 1025, 4444], logDur: [3.5, 1], fwd: [0.3, 0.3], bwd: [0.3, 0.3], fwdLen: [0, 1], bwdLen: [3, 3], syn: 0.9, fin: 0, rst: 0.6, psh: 0, ack: 0.1, winF: [1024, 29200], winB: [0, -1], attacker: true }),
  P('Bot', 8, { ports: [8080], logDur: [11, 1], fwd: [1.2, 0.3], bwd: [1.0, 0.3], fwdLen: [160, 40], bwdLen: [130, 30], fin: 0.6, psh: 0.8, winF: [8192], winB: [237], attacker: true }),
  P('Infiltration', 4, { ports: [444, 135, 139], logDur: [15, 1.5], fwd: [3, 1], bwd: [3, 1], fwdLen: [80, 40], bwdLen: [150, 80], winF: [65535], winB: [65535], attacker: true }),
  P('Web Attack \x96 Brute Force', 6, { ports: [80], logDur: [15.5, 0.5], fwd: [1.3, 0.3], bwd: [1.3, 0.3], fwdLen: [120, 20], bwdLen: [900, 200], psh: 1, winF: [29200], winB: [235], attacker: true }),
  P('Web Attack \x96 XSS', 5, { ports: [80], logDur: [15.6, 0.4], fwd: [1.4, 0.3], bwd: [1.3, 0.3], fwdLen: [260, 60], bwdLen: [1200, 300], psh: 1, winF: [29200], winB: [235], attacker: true }),
  P('Web Attack \x96 Sql Injection', 3, { ports: [80], logDur: [14, 1], fwd: [1.6, 0.3], bwd: [1.6, 0.3], fwdLen: [90, 20], bwdLen: [500, 100], psh: 1, winF: [29200], winB: [235], attacker: true }),
  P('FTP-Patator', 20, { ports: [21], logDur: [15, 0.4], fwd: [2.3, 0.2], bwd: [2.6, 0.2], fwdLen: [9, 3], bwdLen: [20, 5], fin: 0.8, psh: 0.9, winF: [29200], winB: [227], attacker: true }),
  P('SSH-Patator', 15, { ports: [22], logDur: [16, 0.5], fwd: [3.1, 0.2], bwd: [3.3, 0.2], fwdLen: [70, 10], bwdLen: [90, 10], fin: 0.7, psh: 0.9, winF: [29200], winB: [247], attacker: true }),
  P('DoS slowloris', 12, { ports: [80], logDur: [16.5, 1], fwd: [1.8, 0.4], bwd: [0.8, 0.4], fwdLen: [40, 20], bwdLen: [0, 1], psh: 0.9, winF: [29200], winB: [28960], attacker: true }),
  P('DoS Slowhttptest', 12, { ports: [80], logDur: [17, 1], fwd: [1.5, 0.4], bwd: [0.5, 0.4], fwdLen: [30, 10], bwdLen: [0, 1], fin: 0.1, psh: 0.5, winF: [29200], winB: [-1, 28960], attacker: true }),
  P('DoS Hulk', 70, { ports: [80], logDur: [12, 3], fwd: [1.2, 0.5], bwd: [1.0, 0.6], fwdLen: [60, 30], bwdLen: [2000, 800], fin: 0.5, psh: 0.3, winF: [29200, 251], winB: [235, -1], attacker: true }),
  P('DoS GoldenEye', 10, { ports: [80], logDur: [15.8, 0.8], fwd: [1.8, 0.3], bwd: [1.6, 0.3], fwdLen: [100, 30], bwdLen: [1500, 500], fin: 0.3, psh: 0.6, winF: [29200], winB: [235], attacker: true }),
  P('Heartbleed', 1, { ports: [444], logDur: [18.5, 0.2], fwd: [7.5, 0.2], bwd: [8, 0.2], fwdLen: [30, 5], bwdLen: [4500, 500], psh: 1, winF: [29200], winB: [235], attacker: true }),
];


function gauss(r: () => number): number {
  let u = 0;
  while (u === 0) u = r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

const fmt = (x: number) => (Number.isInteger(x) ? String(x) : String(Math.round(x * 1e6) / 1e6));
// packet sizes and inter-arrival times: integers or a few decimals, as CICFlowMeter writes them mostly
const f2 = (x: number) => String(Math.round(x * 100) / 100);
const fi = (x: number) => String(Math.round(x));

/** Yield the CSV as Buffers of about 1 MiB. */
export function* synthCsv(opts: SynthOptions): Generator<Buffer> {
  const layout = opts.layout ?? 'trafficlabelling';
  const rd = renderer(layout);
  const header = rd.header;
  const r = rng(opts.seed ?? 1);
  const quirks = opts.quirks !== false;
  const eol = opts.crlf ? '\r\n' : '\n';
  let profiles = PROFILES;
  if (opts.classes) {
    const want = new Set(opts.classes);
    profiles = PROFILES.filter((p) => want.has(p.label) || want.has(canonicalOf(p.label)));
  }
  const weights = profiles.map((p) => (opts.mix === 'balanced' ? 1 : p.weight));
  const wsum = weights.reduce((a, b) => a + b, 0);
  const cum = weights.map(((s) => (w: number) => (s += w / wsum))(0));
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)];
  let out: string[] = [];
  let size = 0;
  const parts: Buffer[] = [];
  const emit = (s: string) => {
    out.push(s);
    size += s.length;
  };
  const take = (): Buffer => {
    const b = Buffer.from(out.join(''), 'latin1');
    out = [];
    size = 0;
    return b;
  };
  if (opts.bom) parts.push(Buffer.from([0xef, 0xbb, 0xbf]));
  emit(header.join(',') + eol);
  const repeatHeaderAt = quirks && opts.rows > 20 ? Math.floor(opts.rows / 2) : -1;
  const blankAt = quirks && opts.rows > 10 ? opts.rows - 5 : -1;
  const v6 = opts.ipv6 ?? 0;
  const t0 = rd.cfg.name === 'cicids2017' ? Date.UTC(2017, 6, 3, 8, 55) : Date.UTC(2018, 1, 28, 8, 22);
  const labelCol = rd.header.length - 1 - [...rd.header].reverse().findIndex((h) => /^\s*label\s*$/i.test(h));
  for (let i = 0; i < opts.rows; i++) {
    if (i === repeatHeaderAt) emit(header.join(',') + eol);
    if (i === blankAt) {
      // the original Thursday WebAttacks file carries a block of comma-only rows (at its end);
      // here it sits before the last rows so that the file can also end without a newline
      emit(eol);
      for (let j = 0; j < 3; j++) emit(','.repeat(header.length - 1) + eol);
    }
    const u = r();
    let k = 0;
    while (k < cum.length - 1 && u > cum[k]) k++;
    const p = profiles[k];
    const ipv6 = v6 > 0 && r() < v6;
    const src = p.attacker
      ? ipv6 ? `2001:db8:${(r() * 16) | 0}::${((r() * 65535) | 0).toString(16)}` : pick(['172.16.0.1', '205.174.165.73', '192.168.10.' + (8 + ((r() * 10) | 0))])
      : ipv6 ? `fe80::${((r() * 65535) | 0).toString(16)}:${((r() * 65535) | 0).toString(16)}` : `192.168.10.${(r() * 25 + 1) | 0}`;
    const dst = p.attacker
      ? ipv6 ? `2001:db8:1::50` : pick(['192.168.10.50', '192.168.10.51'])
      : ipv6 ? `2606:4700::${((r() * 65535) | 0).toString(16)}` : `${(r() * 200 + 20) | 0}.${(r() * 255) | 0}.${(r() * 255) | 0}.${(r() * 255) | 0}`;
    const sport = 1024 + ((r() * 64000) | 0);
    const dport = pick(p.ports);
    const proto = p.proto === 17 ? pick([6, 6, 17, 17, 0]) : p.proto;
    let dur = Math.round(Math.exp(p.logDur[0] + p.logDur[1] * gauss(r)));
    const fwd = Math.max(1, Math.round(Math.exp(p.fwd[0] + p.fwd[1] * gauss(r))));
    const bwd = Math.max(0, Math.round(Math.exp(p.bwd[0] + p.bwd[1] * gauss(r)) - 0.5));
    const fl = Math.max(0, p.fwdLen[0] + p.fwdLen[1] * gauss(r));
    const bl = Math.max(0, p.bwdLen[0] + p.bwdLen[1] * gauss(r));
    const fwdBytes = Math.round(fwd * fl);
    const bwdBytes = Math.round(bwd * bl);
    if (quirks && r() < 0.002) dur = 0;
    if (quirks && r() < 0.0005) dur = -1;
    const durS = dur / 1e6;
    let bytesPerS: string;
    let pktsPerS: string;
    if (dur === 0) {
      bytesPerS = fwdBytes + bwdBytes === 0 ? (quirks && r() < 0.5 ? '' : 'NaN') : 'Infinity';
      pktsPerS = 'Infinity';
    } else {
      bytesPerS = fmt((fwdBytes + bwdBytes) / durS);
      pktsPerS = fmt((fwd + bwd) / durS);
    }
    const fps = dur > 0 ? fmt(fwd / durS) : '0';
    const bps = dur > 0 ? fmt(bwd / durS) : '0';
    const hdrF = fwd * 20 + (quirks && r() < 0.001 ? -((r() * 1e9) | 0) : 0);
    const hdrB = bwd * 20;
    const iat = fwd + bwd > 1 ? dur / (fwd + bwd - 1) : 0;
    const flag = (x: number) => (r() < x ? 1 : 0);
    const pktMean = (fwdBytes + bwdBytes) / (fwd + bwd);
    const ts = new Date(t0 + Math.floor((i / Math.max(1, opts.rows)) * 8 * 3600e3 * 1000) / 1000);
    const stamp = rd.time(ts);
    const row = [
      `${src}-${dst}-${sport}-${dport}-${proto}`, src, sport, dst, dport, proto, stamp,
      dur, fwd, bwd, fwdBytes, bwdBytes,
      fi(fl * 1.5), fi(fl * 0.5), f2(fl), f2(fl * 0.3),
      fi(bl * 1.5), fi(bl * 0.2), f2(bl), f2(bl * 0.4),
      bytesPerS, pktsPerS, f2(iat), f2(iat * 0.8), fi(iat * 3), fi(iat * 0.1),
      fi(dur), f2(iat * 1.2), f2(iat), fi(iat * 3), fi(iat * 0.1),
      fi(bwd > 1 ? dur : 0), f2(iat * 1.1), f2(iat), fi(iat * 3), fi(iat * 0.1),
      flag(p.psh * 0.2), 0, 0, 0, hdrF, hdrB,
      fps, bps, fi(Math.min(fl, bl) * 0.5), fi(Math.max(fl, bl) * 1.5), f2(pktMean), f2(pktMean * 0.4), f2(pktMean * pktMean * 0.16),
      flag(p.fin), flag(p.syn), flag(p.rst), flag(p.psh), flag(p.ack), flag(0.05), 0, 0, bwd > 0 ? Math.round(bwd / fwd) : 0,
      f2(pktMean * 1.1), f2(fl), f2(bl), hdrF,
      0, 0, 0, 0, 0, 0,
      fwd, fwdBytes, bwd, bwdBytes,
      pick(p.winF), pick(p.winB), Math.max(0, fwd - 1), 20 + (proto === 6 ? 12 : 0),
      0, 0, 0, 0, fi(dur > 1e7 ? dur / 2 : 0), 0, fi(dur > 1e7 ? dur / 2 : 0), fi(dur > 1e7 ? dur / 3 : 0),
      p.label,
    ];
    const cells = layout === 'trafficlabelling' ? row : rd.from.map((k, j) => (j === labelCol ? rd.label(p.label) : k >= 0 ? row[k] : rd.fill[j](i)));
    emit(cells.join(',') + (i === opts.rows - 1 && quirks ? '' : eol));
    if (size > 1 << 20) parts.push(take());
    while (parts.length) yield parts.shift()!;
  }
  parts.push(take());
  for (const b of parts) yield b;
}

function canonicalOf(label: string): string {
  const cfg = loadConfig();
  const key = label.toLowerCase().replace(/[^a-z0-9]/g, '');
  return cfg.label_spellings[key] ?? label;
}

export function synthToFile(file: string, opts: SynthOptions): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (const b of synthCsv(opts)) fs.writeSync(fd, b);
  } finally {
    fs.closeSync(fd);
  }
}
