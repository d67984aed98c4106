// Stage 1, parse: CSV bytes -> batches of records with canonical column names.
import { Transform, type TransformCallback } from 'node:stream';
import { CsvTokenizer, decodeText, lastDecodeWasCp1252, numKind, parseNumber, parseNumberAt, parseNumberSlow, type RowView } from '../src/csv.js';
import { DelimiterIndex } from '../src/kernels/csvscan.js';
import { canonicalHeader, detectFormat, type DatasetConfig } from '../src/config.js';
import { misreadError } from '../src/releases.js';
import { bump, type Batch, type Counts } from '../src/batch.js';
import { UserError } from '../src/errors.js';

export interface RejectRecord {
  file: string;
  line: number;
  reason: string;
  detail: string;
  raw: string;
}

export interface ParseOptions {
  file: string;
  cfg: DatasetConfig;
  /** Canonical columns to materialise; null keeps every column of the file (the stand-alone `parse` command). */
  want?: Set<string> | null;
  /**
   * Numeric columns whose values only ever reach the output as float32 (prep's features): their long
   * decimals may be parsed straight to the float32 (src/csv.ts parseNumberAt), the same float32 as
   * through the exact double. Other columns (and the general row path) keep exact doubles.
   */
  float32?: Set<string>;
  batchSize?: number;
  strict?: boolean;
  maxLineBytes?: number;
  /** Quoted fields may span lines (RFC 4180). Off: a quote left open at the end of a line quarantines that row. */
  multilineQuotes?: boolean;
  /** When false, a file without a label column is accepted (predict). */
  requireLabel?: boolean;
  delimiter?: string;
  /** Find the delimiters with the JavaScript loop instead of the WebAssembly scan (the same positions; for tests). */
  jsScan?: boolean;
  onReject?: (r: RejectRecord) => void;
  onHeader?: (h: HeaderInfo) => void;
}

export interface HeaderInfo {
  file: string;
  format: string;
  /** the feature extractor's release this layout belongs to (config formats.*.release) */
  release: string;
  raw: string[];
  canonical: string[];
  missing: string[];
  extra: string[];
  label?: string;
}

const KIND_NAMES = ['ok', 'empty', 'nan', 'text'] as const;
const MIN_KNOWN_COLUMNS = 8;
const OPTIONAL_TRAILING = 'external_ip';

export function parseCounts(): Counts {
  return { rows_read: 0, data_rows: 0, rows_out: 0, blank_rows: 0, header_rows: 0, quarantined: 0, cp1252_cells: 0, short_rows_accepted: 0, long_rows_accepted: 0 };
}

/** Push-style CSV -> Batch parser for one file. */
/** Slots of the parser's label cache. */
const LABEL_SLOTS = 61;

export class CsvBatchParser {
  readonly counts: Counts = parseCounts();
  header: HeaderInfo | null = null;
  private tok: CsvTokenizer;
  private out: Batch[] = [];
  private cur: Batch | null = null;
  private batchSize: number;
  // per header field: 0 skip, 1 numeric, 2 string
  private kinds: Uint8Array = new Uint8Array(0);
  // per header field: 1 when only its float32 is kept (opts.float32)
  private f32: Uint8Array = new Uint8Array(0);
  private names: string[] = [];
  /** The header's fields the parser materialises (kind 1 or 2), in order: a row visits only these. */
  private wantFields = new Int32Array(0);
  /** Delimiter positions of the buffer being tokenized, and the first one not yet passed. */
  private idx: DelimiterIndex;
  private pc = 0;
  private kernelNumbers = false;
  /** With the kernel: the numeric fields in its order (k -> field), the wanted text fields, and the rows of the batch already copied out of its stage. */
  private numFields = new Int32Array(0);
  private textFields = new Int32Array(0);
  private synced = 0;
  private numCols: (Float64Array | null)[] = [];
  private strCols: ((string | undefined)[] | null)[] = [];
  private headerFirst = '';
  private labelField = -1;
  private trailingField = -1; // index of external_ip when it is the optional trailing column of the header
  private stringSet: Set<string>;
  // label strings by their bytes (labels of up to 64 bytes), direct-mapped: rows of several classes
  // interleave, and a decode (a failed strict UTF-8 decode first, for CICIDS2017's Windows-1252 dash)
  // costs far more than a look-up
  private labBytes = new Uint8Array(LABEL_SLOTS * 64);
  private labLen = new Int32Array(LABEL_SLOTS).fill(-1);
  private labStr: (string | undefined)[] = new Array(LABEL_SLOTS).fill(undefined);
  private labCp = new Uint8Array(LABEL_SLOTS);
  /** Column arrays of batches already handed out, reused when the caller says they are consumed. */
  private spare: { num: Float64Array[]; str: (string | undefined)[][] } | null = null;

  constructor(private opts: ParseOptions) {
    this.batchSize = opts.batchSize ?? 4096;
    this.stringSet = new Set(opts.cfg.string_columns);
    this.idx = new DelimiterIndex((opts.delimiter ?? ',').charCodeAt(0), !opts.jsScan);
    this.tok = new CsvTokenizer(
      {
        row: (r) => this.onRow(r),
        scanStart: (buf) => {
          this.idx.scan(buf);
          this.pc = 0;
        },
        rawRow: (buf, s, e, line) => this.fastRow(buf, s, e, line),
        oversize: (line, bytes) => {
          bump(this.counts, 'rows_read');
          if (!this.header) throw new UserError(`${this.opts.file}:${line}: the first line is over ${this.tok.maxLineBytes} bytes (${bytes}): not a CSV header`, 'give a CICFlowMeter CSV');
          bump(this.counts, 'data_rows');
          this.reject(line, 'line_too_long', `line longer than ${this.tok.maxLineBytes} bytes (${bytes} bytes skipped)`, '');
        },
        malformed: (line, reason, raw) => {
          bump(this.counts, 'rows_read');
          const what = reason === 'unterminated_quote' ? `a quoted field is not closed by the end of its line` : 'text after a closing quote';
          if (!this.header) throw new UserError(`${this.opts.file}:${line}: the header line is malformed (${what})`, 'give a CICFlowMeter CSV');
          bump(this.counts, 'data_rows');
          this.reject(line, reason, what + (reason === 'unterminated_quote' && !this.tok.multiline ? ' (CICFlowMeter never quotes; --multiline-quotes reads fields that span lines)' : ''), raw);
        },
      },
      { maxLineBytes: opts.maxLineBytes, delimiter: opts.delimiter, multiline: opts.multilineQuotes },
    );
  }

  push(chunk: Buffer): Batch[] {
    this.tok.push(chunk);
    const o = this.out;
    this.out = [];
    return o;
  }

  end(): Batch[] {
    this.tok.end();
    this.flush();
    if (!this.header) throw new UserError(`${this.opts.file}: empty file (no header line)`, 'give a CICFlowMeter CSV with a header row');
    const o = this.out;
    this.out = [];
    return o;
  }

  /** The rows parsed so far as a (short) batch, without ending the input: a stream gone quiet is scored. */
  takePartial(): Batch[] {
    this.flush();
    const o = this.out;
    this.out = [];
    return o;
  }

  /** Done with this parser (no push or end after): its kernel's instance goes to the next parser of this thread. */
  dispose(): void {
    this.kernelNumbers = false;
    this.idx.release();
  }

  get bytesIn(): number {
    return this.tok.bytesIn;
  }

  /** Newlines consumed so far. */
  get newlines(): number {
    return this.tok.line - 1;
  }

  private reject(line: number, reason: string, detail: string, raw: string): void {
    bump(this.counts, 'quarantined');
    bump(this.counts, 'quarantine_reasons', reason);
    if (this.opts.strict) throw Object.assign(new UserError(`${this.opts.file}:${line}: ${detail}`, 'drop --strict to quarantine such rows instead'), { at: { file: this.opts.file, line, detail } });
    this.opts.onReject?.({ file: this.opts.file, line, reason, detail, raw: raw.length > 200 ? raw.slice(0, 200) + '…' : raw });
  }

  private onHeader(r: RowView): void {
    const raw: string[] = [];
    for (let j = 0; j < r.nFields; j++) raw.push(r.quoted?.[j] ?? decodeText(r.buf, r.starts[j], r.ends[j]));
    const cfg = this.opts.cfg;
    const canonical = canonicalHeader(raw, cfg);
    const known = new Set(cfg.columns);
    const knownCount = canonical.filter((c) => known.has(c)).length;
    const numericLike = raw.filter((x) => x.trim() !== '' && !Number.isNaN(Number(x))).length;
    if (numericLike > raw.length / 2)
      throw new UserError(`${this.opts.file}:${r.line}: the first line holds numbers, not column names: the file has no header`, 'CICFlowMeter CSVs start with a header line; add it back');
    if (knownCount < MIN_KNOWN_COLUMNS) {
      const text = raw.join(',');
      const odd = [...text].filter((ch) => ch < ' ' || ch === '\ufffd' || (ch > '~' && ch < '\u00a0')).length;
      if (odd > text.length * 0.1)
        throw new UserError(`${this.opts.file}:${r.line}: the file looks binary or is not text (${odd} control or undecodable characters in its first line)`, 'give a CICFlowMeter CSV; a .gz file is read transparently');
      const sample = raw.slice(0, 6).map((x) => JSON.stringify(x.trim().slice(0, 40))).join(', ');
      const delimHint = r.nFields === 1 && /[;\t|]/.test(raw[0]) ? ' (it looks like another delimiter: try --delimiter)' : '';
      throw new UserError(
        `${this.opts.file}:${r.line}: header is not a CICFlowMeter header: ${knownCount} known columns among ${r.nFields} (${sample}, ...)${delimHint}`,
        'flowtensor reads CICIDS2017 CSVs (TrafficLabelling, MachineLearningCVE, *_clean.csv, improved CNS2022)',
      );
    }
    const format = detectFormat(raw, canonical, cfg);
    // a layout another data-set config knows better (CSE-CIC-IDS2018's abbreviated names read with the
    // CICIDS2017 config would zero-fill most features): say which config reads it
    const misread = misreadError(`${this.opts.file}:${r.line}`, raw, cfg, knownCount);
    if (misread) throw misread;
    let labelField = -1;
    for (const lc of cfg.label_columns) {
      const k = canonical.indexOf(lc);
      if (k >= 0) {
        labelField = k;
        break;
      }
    }
    if (labelField < 0 && this.opts.requireLabel !== false)
      throw new UserError(`${this.opts.file}: no label column (looked for ${cfg.label_columns.join(', ')})`, 'prep needs labelled flows; use predict for unlabelled ones');
    this.labelField = labelField;
    const want = this.opts.want;
    this.names = canonical;
    this.kinds = new Uint8Array(canonical.length + 1);
    canonical.forEach((c, j) => {
      if (want && !want.has(c) && j !== labelField) this.kinds[j] = 0;
      else this.kinds[j] = this.stringSet.has(c) || j === labelField ? 2 : 1;
    });
    const f32 = this.opts.float32;
    this.f32 = new Uint8Array(canonical.length + 1);
    if (f32) canonical.forEach((c, j) => (this.f32[j] = this.kinds[j] === 1 && f32.has(c) ? 1 : 0));
    this.wantFields = Int32Array.from(canonical.map((_, j) => j).filter((j) => this.kinds[j] !== 0));
    // the numeric ones are read by the kernel, a row at a time (plain decimals; the rest here)
    this.numFields = Int32Array.from(canonical.map((_, j) => j).filter((j) => this.kinds[j] === 1));
    this.textFields = Int32Array.from(canonical.map((_, j) => j).filter((j) => this.kinds[j] === 2));
    this.kernelNumbers = this.idx.setFields(this.numFields, this.batchSize);
    this.synced = 0;
    this.trailingField = -1;
    if (!canonical.includes(OPTIONAL_TRAILING) && (!want || want.has(OPTIONAL_TRAILING))) {
      this.names = [...canonical, OPTIONAL_TRAILING];
      this.kinds[canonical.length] = 2;
    }
    if (canonical[canonical.length - 1] === OPTIONAL_TRAILING) this.trailingField = canonical.length - 1;
    this.headerFirst = canonical[0];
    const wanted = want ? [...want] : [];
    this.header = {
      file: this.opts.file,
      format,
      release: cfg.formats[format]?.release ?? cfg.name,
      raw,
      canonical,
      missing: wanted.filter((c) => !canonical.includes(c) && !cfg.label_columns.includes(c)),
      extra: canonical.filter((c) => !known.has(c) && !cfg.label_columns.includes(c)),
      label: labelField >= 0 ? canonical[labelField] : undefined,
    };
    this.opts.onHeader?.(this.header);
  }

  /**
   * Give back a batch's column arrays once it has been fully consumed (prep packs every batch before
   * the next push): the next batch reuses them instead of allocating ~50 arrays.
   */
  recycle(b: Batch): void {
    if (b.n !== this.batchSize) return;
    const num: Float64Array[] = [];
    const str: (string | undefined)[][] = [];
    for (let j = 0; j < this.names.length; j++) {
      const k = this.kinds[j];
      if (k === 1) {
        const a = b.num.get(this.names[j]);
        if (!a || a.length !== this.batchSize) return;
        num.push(a);
      } else if (k === 2) {
        const a = b.str.get(this.names[j]);
        if (!a || a.length !== this.batchSize) return;
        str.push(a);
      }
    }
    this.spare = { num, str };
  }

  private newBatch(): Batch {
    const b: Batch = {
      file: this.opts.file,
      format: this.header!.format,
      n: 0,
      line: new Int32Array(this.batchSize),
      num: new Map(),
      str: new Map(),
      issues: [],
      order: this.names.filter((_, j) => this.kinds[j] !== 0),
    };
    this.numCols = [];
    this.strCols = [];
    this.synced = 0;
    const spare = this.spare;
    this.spare = null;
    let ni = 0;
    let si = 0;
    for (let j = 0; j < this.names.length; j++) {
      const k = this.kinds[j];
      const name = this.names[j];
      if (k === 1) {
        const a = spare ? spare.num[ni++] : new Float64Array(this.batchSize);
        b.num.set(name, a);
        this.numCols[j] = a;
        this.strCols[j] = null;
      } else if (k === 2) {
        const a: (string | undefined)[] = spare ? spare.str[si++] : new Array(this.batchSize);
        b.str.set(name, a);
        this.strCols[j] = a;
        this.numCols[j] = null;
      } else {
        this.numCols[j] = null;
        this.strCols[j] = null;
      }
    }
    return b;
  }

  /** Copy the rows [synced, to) of the current batch out of the kernel's stage into its columns. */
  private syncStage(to: number): void {
    if (!this.kernelNumbers || this.synced >= to) return;
    const stage = this.idx.stage;
    const B = this.batchSize;
    const from = this.synced;
    const nums = this.numFields;
    for (let k = 0; k < nums.length; k++) this.numCols[nums[k]]!.set(stage.subarray(k * B + from, k * B + to), from);
    this.synced = to;
  }

  private flush(): void {
    if (this.cur) this.syncStage(this.cur.n);
    if (this.cur && this.cur.n > 0) {
      this.out.push(this.cur);
      this.counts.rows_out = (this.counts.rows_out as number) + this.cur.n;
    }
    this.cur = null;
  }

  /**
   * The hot path: a data row without quotes, parsed field by field in one pass over its bytes.
   * Returns false (having changed nothing) when the row needs the general path: the header,
   * blank or comma-only lines, a repeated header, or a field count other than the header's.
   */
  private fastRow(buf: Buffer, s: number, e: number, line: number): boolean {
    const h = this.header;
    if (!h) return false;
    const c0 = buf[s];
    const d = this.tok.delimiter;
    // letters may start a repeated header; a delimiter may start a blank row
    if (e - s < this.names.length || c0 === d || c0 === 32 || (c0 >= 65 && c0 <= 90) || (c0 >= 97 && c0 <= 122)) return false;
    // the row's delimiters, from the buffer's index: exactly hlen - 1 of them before e, else the general path
    const pos = this.idx.pos;
    const np = this.idx.count;
    let c = this.pc;
    while (c < np && pos[c] < s) c++;
    this.pc = c;
    const hlen = h.canonical.length;
    const last = c + hlen - 2; // the row's last delimiter
    if (hlen > 1 && (last >= np || pos[last] >= e)) return false;
    if (last + 1 < np && pos[last + 1] < e) return false;
    this.pc = last + 1;
    if (!this.cur) this.cur = this.newBatch();
    const b = this.cur;
    const i = b.n;
    const kinds = this.kinds;
    const f32 = this.f32;
    const numCols = this.numCols;
    const strCols = this.strCols;
    const want = this.wantFields;
    let cp1252 = 0;
    if (this.kernelNumbers) {
      // the plain decimal cells, written by the kernel into row i of its stage; the others (st[k] = 1) here
      if (this.idx.numbers(s, e, c, hlen, i) > 0) {
        const st = this.idx.status;
        const stage = this.idx.stage;
        const nums = this.numFields;
        for (let k = 0; k < nums.length; k++) {
          if (st[k] === 0) continue;
          const j = nums[k];
          const p = j === 0 ? s : pos[c + j - 1] + 1;
          const end = j === hlen - 1 ? e : pos[c + j];
          stage[k * this.batchSize + i] = parseNumberAt(buf, p, end, d, f32[j] === 1);
          if (numKind !== 0) b.issues.push({ row: i, col: this.names[j], kind: KIND_NAMES[numKind] as 'empty' | 'nan' | 'text', raw: buf.latin1Slice(p, Math.min(end, p + 100)) });
        }
      }
      const texts = this.textFields;
      for (let t = 0; t < texts.length; t++) {
        const j = texts[t];
        cp1252 += this.textCell(buf, j === 0 ? s : pos[c + j - 1] + 1, j === hlen - 1 ? e : pos[c + j], j, i);
      }
    } else {
      // only the fields the stages need: each field's bytes are [after the delimiter before it, the one after it)
      for (let w = 0; w < want.length; w++) {
        const j = want[w];
        const p = j === 0 ? s : pos[c + j - 1] + 1;
        const end = j === hlen - 1 ? e : pos[c + j];
        if (kinds[j] === 1) {
          numCols[j]![i] = parseNumberAt(buf, p, end, d, f32[j] === 1);
          if (numKind !== 0) b.issues.push({ row: i, col: this.names[j], kind: KIND_NAMES[numKind] as 'empty' | 'nan' | 'text', raw: buf.latin1Slice(p, Math.min(end, p + 100)) });
        } else cp1252 += this.textCell(buf, p, end, j, i);
      }
    }
    if (kinds[hlen] === 2 && strCols[hlen]) strCols[hlen]![i] = undefined;
    this.counts.rows_read = (this.counts.rows_read as number) + 1;
    this.counts.data_rows = (this.counts.data_rows as number) + 1;
    if (cp1252) bump(this.counts, 'cp1252_cells', undefined, cp1252);
    b.line[i] = line;
    b.n = i + 1;
    if (b.n === this.batchSize) this.flush();
    return true;
  }

  /** A text cell of row i (a label, an address): its string, from the label cache when its bytes match; 1 when it was Windows-1252. */
  private textCell(buf: Buffer, p: number, end: number, j: number, i: number): number {
    const strCols = this.strCols;
    const len = end - p;
    let slot = -1;
    if (j === this.labelField && len <= 64) {
      let hsh = len;
      for (let q = p; q < end; q++) hsh = Math.imul(hsh ^ buf[q], 0x01000193);
      slot = (hsh >>> 0) % LABEL_SLOTS;
      if (this.labLen[slot] === len) {
        let same = true;
        const lb = this.labBytes;
        for (let q = 0, o = slot * 64; q < len; q++)
          if (lb[o + q] !== buf[p + q]) {
            same = false;
            break;
          }
        if (same) {
          strCols[j]![i] = this.labStr[slot];
          return this.labCp[slot];
        }
      }
    }
    const v = decodeText(buf, p, end);
    const cp = lastDecodeWasCp1252 ? 1 : 0;
    const sv = v.length === 0 || v.trim() === '' ? undefined : v;
    strCols[j]![i] = sv;
    if (slot >= 0) {
      this.labBytes.set(buf.subarray(p, end), slot * 64);
      this.labLen[slot] = len;
      this.labStr[slot] = sv;
      this.labCp[slot] = cp;
    }
    return cp;
  }

  private onRow(r: RowView): void {
    const { buf, starts, ends } = r;
    const nf = r.nFields;
    // blank or comma-only line
    if (r.rowEnd - r.rowStart <= nf - 1 || (r.rowEnd - r.rowStart < 4 * nf && isBlank(buf, r.rowStart, r.rowEnd, r.quoted))) {
      if (this.header) bump(this.counts, 'blank_rows');
      else bump(this.counts, 'blank_rows');
      bump(this.counts, 'rows_read');
      return;
    }
    bump(this.counts, 'rows_read');
    if (!this.header) {
      this.onHeader(r);
      return;
    }
    const hlen = this.header.canonical.length;
    const c0 = buf[starts[0]];
    if (nf === hlen && ((c0 >= 65 && c0 <= 90) || (c0 >= 97 && c0 <= 122) || c0 === 32)) {
      const first = canonicalHeader([r.quoted?.[0] ?? decodeText(buf, starts[0], ends[0])], this.opts.cfg)[0];
      if (first === this.headerFirst) {
        bump(this.counts, 'header_rows');
        return;
      }
    }
    bump(this.counts, 'data_rows');
    let useFields = nf;
    let trailing = -1; // field index that holds external_ip beyond the header
    if (nf !== hlen) {
      if (nf === hlen + 1 && this.kinds[hlen] === 2 && this.names[hlen] === OPTIONAL_TRAILING) {
        trailing = hlen;
        bump(this.counts, 'long_rows_accepted');
      } else if (nf === hlen - 1 && this.trailingField === hlen - 1) {
        useFields = nf;
        bump(this.counts, 'short_rows_accepted');
      } else {
        this.reject(r.line, 'field_count', `${nf} fields where the header has ${hlen}`, buf.latin1Slice(r.rowStart, Math.min(r.rowEnd, r.rowStart + 400)));
        return;
      }
    }
    if (!this.cur) this.cur = this.newBatch();
    const b = this.cur;
    const i = b.n;
    // the rows before from the kernel's stage; this one is written into the columns directly
    this.syncStage(i);
    if (this.kernelNumbers) this.synced = i + 1;
    const kinds = this.kinds;
    const numCols = this.numCols;
    const strCols = this.strCols;
    const quoted = r.quoted;
    const lim = Math.min(useFields, hlen);
    for (let j = 0; j < lim; j++) {
      const k = kinds[j];
      if (k === 0) continue;
      if (k === 1) {
        const q = quoted ? quoted[j] : undefined;
        const v = q !== undefined ? parseNumberSlow(q) : parseNumber(buf, starts[j], ends[j]);
        numCols[j]![i] = v;
        if (numKind !== 0) {
          b.issues.push({ row: i, col: this.names[j], kind: KIND_NAMES[numKind] as 'empty' | 'nan' | 'text', raw: q ?? buf.latin1Slice(starts[j], Math.min(ends[j], starts[j] + 100)) });
        }
      } else {
        const q = quoted ? quoted[j] : undefined;
        let v: string | undefined;
        if (q !== undefined) v = q;
        else {
          v = decodeText(buf, starts[j], ends[j]);
          if (lastDecodeWasCp1252) bump(this.counts, 'cp1252_cells');
        }
        strCols[j]![i] = v.trim() === '' ? undefined : v;
      }
    }
    if (useFields < hlen) {
      for (let j = useFields; j < hlen; j++) {
        if (kinds[j] === 1) numCols[j]![i] = NaN;
        else if (kinds[j] === 2) strCols[j]![i] = undefined;
      }
    }
    if (kinds[hlen] === 2 && strCols[hlen]) {
      if (trailing >= 0) {
        const v = quoted?.[trailing] ?? decodeText(buf, starts[trailing], ends[trailing]);
        strCols[hlen]![i] = v.trim() === '' ? undefined : v;
      } else strCols[hlen]![i] = undefined;
    }
    b.line[i] = r.line;
    b.n = i + 1;
    if (b.n === this.batchSize) this.flush();
  }
}

function isBlank(buf: Buffer, s: number, e: number, quoted: (string | undefined)[] | null): boolean {
  if (quoted) return false;
  for (let i = s; i < e; i++) {
    const c = buf[i];
    if (c !== 44 && c !== 32 && c !== 9 && c !== 13) return false;
  }
  return true;
}

/** Node stream: CSV bytes in, Batch objects out. */
export function parseStream(opts: ParseOptions): Transform & { parser: CsvBatchParser } {
  const parser = new CsvBatchParser(opts);
  const t = new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      try {
        for (const b of parser.push(chunk)) this.push(b);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
    flush(cb: TransformCallback) {
      try {
        for (const b of parser.end()) this.push(b);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
  }) as Transform & { parser: CsvBatchParser };
  t.parser = parser;
  return t;
}
