// Byte-level CSV tokenizer and number parser: the hot path of `prep`.
// Works on Buffers, never builds a string for a numeric cell, handles RFC 4180 quotes,
// CRLF, a UTF-8 BOM, a last line without newline, and caps the length of a line.
// CICFlowMeter never quotes, so by default a quoted field ends at its line: a quote left open at the
// end of a line, or text after a closing quote, makes that one row malformed (reported, then skipped
// to the end of its line) instead of swallowing the lines after it. multiline: true allows RFC 4180
// fields that span lines.

export interface RowView {
  buf: Buffer;
  starts: Int32Array;
  ends: Int32Array;
  nFields: number;
  /** Unescaped values of quoted fields (index -> string), or null when the row had no quotes. */
  quoted: (string | undefined)[] | null;
  /** 1-based physical line where the row starts. */
  line: number;
  /** Byte offsets of the whole row in buf (without the line ending). */
  rowStart: number;
  rowEnd: number;
}

export interface TokenizerEvents {
  row(r: RowView): void;
  /**
   * Optional fast path for a row without quotes: bytes [start, end) of buf, line ending removed.
   * Return false to have the row split into fields and passed to row() instead.
   */
  rawRow?(buf: Buffer, start: number, end: number, line: number): boolean;
  /** Optional: a buffer is about to be tokenized from its start (its rows follow, in order). */
  scanStart?(buf: Buffer): void;
  /** A line longer than maxLineBytes: its bytes are skipped up to the next newline. */
  oversize(line: number, bytesSeen: number): void;
  /**
   * A row with broken quoting (a quote left open at the end of its line, or text after a closing
   * quote): skipped up to the end of its line. raw: the row's first bytes.
   */
  malformed(line: number, reason: 'unterminated_quote' | 'text_after_quote', raw: string): void;
}

export interface TokenizerOptions {
  maxLineBytes?: number;
  delimiter?: string;
  /** Quoted fields may span lines (RFC 4180); off by default (CICFlowMeter never quotes). */
  multiline?: boolean;
}

const NL = 10;
const CR = 13;
const QUOTE = 34;

export class CsvTokenizer {
  private tail: Buffer | null = null;
  /** 1-based number of the line the tokenizer is at (1 + newlines consumed). */
  line = 1;
  private first = true;
  private skipping = false;
  private skipStartLine = 0;
  private skipped = 0;
  private starts = new Int32Array(128);
  private ends = new Int32Array(128);
  readonly delimiter: number;
  readonly maxLineBytes: number;
  readonly multiline: boolean;
  bytesIn = 0;

  constructor(private ev: TokenizerEvents, o: TokenizerOptions = {}) {
    this.maxLineBytes = o.maxLineBytes ?? 1 << 20;
    this.delimiter = (o.delimiter ?? ',').charCodeAt(0);
    this.multiline = !!o.multiline;
  }

  push(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    let buf = chunk;
    if (this.first) {
      this.first = false;
      if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
    }
    if (this.skipping) {
      const nl = buf.indexOf(NL);
      if (nl < 0) {
        this.skipped += buf.length;
        return;
      }
      this.skipped += nl;
      this.ev.oversize(this.skipStartLine, this.skipped);
      this.skipping = false;
      this.line++;
      buf = buf.subarray(nl + 1);
    }
    if (this.tail) {
      // the row cut at the chunk's start: joined with the chunk's first line only (not a copy of the
      // whole chunk); a quoted field open past that line falls back to joining the rest too
      const tail = this.tail;
      this.tail = null;
      const nl = buf.indexOf(NL);
      if (nl < 0) buf = Buffer.concat([tail, buf]);
      else {
        const head = Buffer.concat([tail, buf.subarray(0, nl + 1)]);
        const used = this.scan(head, false);
        buf = used === head.length ? buf.subarray(nl + 1) : Buffer.concat([head.subarray(used), buf.subarray(nl + 1)]);
      }
    }
    const pos = this.scan(buf, false);
    if (pos < buf.length) {
      const rest = buf.length - pos;
      if (rest > this.maxLineBytes) {
        this.skipping = true;
        this.skipStartLine = this.line;
        this.skipped = rest;
        // only a multi-line quoted row holds newlines here: count them, so later line numbers stay true
        if (this.multiline) for (let k = buf.indexOf(NL, pos); k >= 0; k = buf.indexOf(NL, k + 1)) this.line++;
      } else {
        // copy so the big chunk can be collected
        this.tail = Buffer.from(buf.subarray(pos));
      }
    }
  }

  end(): void {
    if (this.skipping) {
      this.ev.oversize(this.skipStartLine, this.skipped);
      this.skipping = false;
      return;
    }
    if (this.tail && this.tail.length) {
      const buf = this.tail;
      this.tail = null;
      this.scan(buf, true);
    }
  }

  /** Scan complete rows; returns the offset of the first byte not consumed. */
  private scan(buf: Buffer, final: boolean): number {
    this.ev.scanStart?.(buf);
    let pos = 0;
    const len = buf.length;
    const d = this.delimiter;
    let q = buf.indexOf(QUOTE, 0); // next quote at or after pos (-1: none left); searched once, not per row
    while (pos < len) {
      let nl = buf.indexOf(NL, pos);
      if (q >= 0 && q < pos) q = buf.indexOf(QUOTE, pos);
      if (q >= 0 && (nl < 0 || q < nl)) {
        const next = this.scanQuoted(buf, pos, final);
        if (next < 0) return pos; // need more bytes
        pos = next;
        continue;
      }
      if (nl < 0) {
        if (!final) return pos;
        nl = len;
      }
      let end = nl;
      if (end > pos && buf[end - 1] === CR) end--;
      if (this.ev.rawRow && this.ev.rawRow(buf, pos, end, this.line)) {
        this.line++;
        pos = nl + 1;
        continue;
      }
      // split on delimiter
      let nf = 0;
      let s = pos;
      let starts = this.starts;
      let ends = this.ends;
      for (let i = pos; i < end; i++) {
        if (buf[i] === d) {
          if (nf + 1 >= starts.length) {
            this.grow();
            starts = this.starts;
            ends = this.ends;
          }
          starts[nf] = s;
          ends[nf] = i;
          nf++;
          s = i + 1;
        }
      }
      if (nf + 1 >= starts.length) {
        this.grow();
        starts = this.starts;
        ends = this.ends;
      }
      starts[nf] = s;
      ends[nf] = end;
      nf++;
      this.ev.row({ buf, starts, ends, nFields: nf, quoted: null, line: this.line, rowStart: pos, rowEnd: end });
      this.line++;
      pos = nl + 1;
    }
    return pos;
  }

  private grow(): void {
    const n = this.starts.length * 2;
    const s = new Int32Array(n);
    s.set(this.starts);
    const e = new Int32Array(n);
    e.set(this.ends);
    this.starts = s;
    this.ends = e;
  }

  /**
   * RFC 4180 row with quotes. Returns the next row's offset, or -1 when more bytes are needed.
   * A quoted field ends at its line unless multiline; broken quoting makes the row malformed.
   */
  private scanQuoted(buf: Buffer, pos: number, final: boolean): number {
    const d = this.delimiter;
    const len = buf.length;
    const multi = this.multiline;
    const quoted: (string | undefined)[] = [];
    let nf = 0;
    let i = pos;
    let newlines = 0;
    let fieldStart = i;
    for (;;) {
      if (nf + 1 >= this.starts.length) this.grow();
      if (i < len && buf[i] === QUOTE) {
        // quoted field
        const parts: Buffer[] = [];
        let j = i + 1;
        let segStart = j;
        let closed = false;
        while (j < len) {
          const c = buf[j];
          if (c === QUOTE) {
            if (j + 1 < len && buf[j + 1] === QUOTE) {
              parts.push(buf.subarray(segStart, j + 1));
              j += 2;
              segStart = j;
              continue;
            }
            if (j + 1 >= len && !final) return -1;
            parts.push(buf.subarray(segStart, j));
            j++;
            closed = true;
            break;
          }
          if (c === NL) {
            if (!multi) break; // the line ends inside the quotes
            newlines++;
          }
          j++;
        }
        if (!closed) {
          if (j >= len && !final) return -1;
          return this.malformed(buf, pos, j, newlines, 'unterminated_quote', final);
        }
        // after the closing quote: the delimiter, the line end (CRLF too) or the end of the input
        let k = j;
        if (k < len && buf[k] === CR) {
          if (k + 1 >= len && !final) return -1;
          if (k + 1 >= len || buf[k + 1] === NL) k++;
        }
        if (k < len && buf[k] !== d && buf[k] !== NL) return this.malformed(buf, pos, k, newlines, 'text_after_quote', final);
        quoted[nf] = decodeText(Buffer.concat(parts));
        this.starts[nf] = i;
        this.ends[nf] = i;
        nf++;
        i = k;
      } else {
        fieldStart = i;
        while (i < len && buf[i] !== d && buf[i] !== NL) i++;
        if (i >= len && !final) return -1;
        let e = i;
        if (e > fieldStart && buf[e - 1] === CR && (i >= len || buf[i] === NL)) e--;
        this.starts[nf] = fieldStart;
        this.ends[nf] = e;
        nf++;
      }
      if (i >= len || buf[i] === NL) break;
      i++; // delimiter
    }
    let rowEnd = i;
    if (rowEnd > pos && buf[rowEnd - 1] === CR) rowEnd--;
    this.ev.row({ buf, starts: this.starts, ends: this.ends, nFields: nf, quoted, line: this.line, rowStart: pos, rowEnd });
    this.line += 1 + newlines;
    return i < len ? i + 1 : len;
  }

  /** Report the row starting at pos as malformed and skip to the end of the line holding `at`. */
  private malformed(buf: Buffer, pos: number, at: number, newlines: number, reason: 'unterminated_quote' | 'text_after_quote', final: boolean): number {
    let nl = buf.indexOf(NL, at);
    if (nl < 0) {
      if (!final) return -1;
      nl = buf.length;
    }
    let end = nl;
    if (end > pos && buf[end - 1] === CR) end--;
    this.ev.malformed(this.line, reason, decodeText(buf, pos, Math.min(end, pos + 400)));
    this.line += 1 + newlines;
    return nl < buf.length ? nl + 1 : buf.length;
  }
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });
// Windows-1252 0x80-0x9F; other bytes are Latin-1.
const CP1252 = [
  0x20ac, 0xfffd, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0xfffd, 0x017d, 0xfffd,
  0xfffd, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0xfffd, 0x017e, 0x0178,
];

export let lastDecodeWasCp1252 = false;

/** Decode a text cell: ASCII fast path, strict UTF-8, else Windows-1252 (the original CICIDS2017 encoding). */
export function decodeText(b: Uint8Array, s = 0, e = b.length): string {
  lastDecodeWasCp1252 = false;
  let ascii = true;
  for (let i = s; i < e; i++)
    if (b[i] >= 0x80) {
      ascii = false;
      break;
    }
  if (ascii) return Buffer.prototype.latin1Slice.call(b, s, e);
  try {
    return utf8Strict.decode(b.subarray(s, e));
  } catch {
    lastDecodeWasCp1252 = true;
    let out = '';
    for (let i = s; i < e; i++) {
      const c = b[i];
      out += String.fromCharCode(c >= 0x80 && c < 0xa0 ? CP1252[c - 0x80] : c);
    }
    return out;
  }
}

declare global {
  interface Buffer {
    latin1Slice(start: number, end: number): string;
  }
}

// ---- numbers ----

/** Set by parseNumber: 0 finite or ±Infinity token, 1 empty, 2 NaN token, 3 text. */
export let numKind = 0;

const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];
const NUM_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** Parse a decimal number straight from bytes (Clinger's fast path, exact; else Number()). */
export function parseNumber(b: Uint8Array, s: number, e: number): number {
  while (s < e && (b[s] === 32 || b[s] === 9)) s++;
  while (e > s && (b[e - 1] === 32 || b[e - 1] === 9)) e--;
  if (s === e) {
    numKind = 1;
    return NaN;
  }
  let i = s;
  let neg = false;
  let c = b[i];
  if (c === 45) {
    neg = true;
    i++;
  } else if (c === 43) i++;
  let mant = 0;
  let sig = 0;
  let exp = 0;
  let digits = 0;
  while (i < e) {
    c = b[i];
    if (c < 48 || c > 57) break;
    if (sig > 0 || c !== 48) sig++;
    mant = mant * 10 + (c - 48);
    digits++;
    i++;
  }
  if (i < e && b[i] === 46) {
    i++;
    while (i < e) {
      c = b[i];
      if (c < 48 || c > 57) break;
      if (sig > 0 || c !== 48) sig++;
      mant = mant * 10 + (c - 48);
      exp--;
      digits++;
      i++;
    }
  }
  if (digits > 0 && i < e && (b[i] === 101 || b[i] === 69)) {
    i++;
    let eneg = false;
    if (i < e && (b[i] === 45 || b[i] === 43)) {
      eneg = b[i] === 45;
      i++;
    }
    let ev = 0;
    let ed = 0;
    while (i < e && b[i] >= 48 && b[i] <= 57 && ed < 6) {
      ev = ev * 10 + (b[i] - 48);
      i++;
      ed++;
    }
    if (ed === 0) i = -1; // malformed exponent
    exp += eneg ? -ev : ev;
  }
  if (i === e && digits > 0 && sig <= 15 && exp >= -22 && exp <= 22) {
    numKind = 0;
    const v = exp < 0 ? mant / POW10[-exp] : mant * POW10[exp];
    return neg ? -v : v;
  }
  return parseNumberSlow(Buffer.prototype.latin1Slice.call(b, s, e));
}

/** What parseNumberAt reads past e: never a digit, a sign, a point or any delimiter (with --delimiter '-' an empty cell read the delimiter as a minus sign). */
const END = -1;

/** Set by parseNumberAt: offset of the delimiter (or end) that ended the field. */
export let fieldEnd = 0;

/** Relative margin of the float32 fast path: well above the error of the inexact double below (< 2^-49). */
const F32_MARGIN = 2 ** -46;

/**
 * Parse the numeric field starting at s and ending at the next delimiter byte d (or e), in one pass.
 * Sets fieldEnd and numKind. Falls back to parseNumber for anything but plain decimals.
 *
 * f32: the caller keeps only the float32 of the value, and then a decimal of more than 15 significant
 * digits (CICFlowMeter's 16-17-digit means and rates) is parsed straight to it, without the exact
 * double: exactly Math.fround(Number(text)) is returned. The digits summed in a double are off from the
 * decimal by < 2^-49 relatively; when the float32 roundings of value·(1 ± 2^-46) agree, no float32
 * rounding boundary lies between the decimal and its double either, so both round to that float32.
 * Otherwise (a value next to a boundary, tiny or huge values, more than 25 digits) the exact path.
 */
export function parseNumberAt(b: Uint8Array, s: number, e: number, d: number, f32 = false): number {
  // Most cells are short (ports, counts, flags, 2-decimal means): up to 9 digits are summed as an
  // int32, whose multiply-add is a short dependency chain (a double's is ~8 cycles a digit). The same
  // integer, divided by the same power of ten, as below: the same value.
  let i = s;
  let c = i < e ? b[i] : END;
  let neg = false;
  if (c === 45) {
    neg = true;
    c = ++i < e ? b[i] : END;
  }
  let m = 0;
  let nd = 0;
  let fd = 0;
  while (c >= 48 && c <= 57 && nd < 9) {
    m = m * 10 + (c - 48);
    nd++;
    c = ++i < e ? b[i] : END;
  }
  if (c === 46 && nd < 9) {
    c = ++i < e ? b[i] : END;
    while (c >= 48 && c <= 57 && nd < 9) {
      m = m * 10 + (c - 48);
      nd++;
      fd++;
      c = ++i < e ? b[i] : END;
    }
  }
  if ((c === d || c === END) && nd > 0) {
    fieldEnd = i;
    numKind = 0;
    const v = fd > 0 ? m / POW10[fd] : m;
    return neg ? -v : v;
  }
  return parseLongAt(b, s, neg ? s + 1 : s, neg, e, d, f32);
}

/**
 * parseNumberAt past its short path: more than 9 digits, or anything but a plain decimal. The field
 * starts at s, its digits at i (after a minus sign: neg).
 */
function parseLongAt(b: Uint8Array, s: number, i: number, neg: boolean, e: number, d: number, f32: boolean): number {
  let c = i < e ? b[i] : END;
  let mant = 0;
  let sig = 0;
  let digits = 0;
  let exp = 0;
  while (c >= 48 && c <= 57) {
    if (sig > 0 || c !== 48) sig++;
    mant = mant * 10 + (c - 48);
    digits++;
    c = ++i < e ? b[i] : END;
  }
  if (c === 46) {
    c = ++i < e ? b[i] : END;
    while (c >= 48 && c <= 57) {
      if (sig > 0 || c !== 48) sig++;
      mant = mant * 10 + (c - 48);
      exp--;
      digits++;
      c = ++i < e ? b[i] : END;
    }
  }
  if ((c === d || c === END) && digits > 0 && sig <= 15 && exp >= -22) {
    fieldEnd = i;
    numKind = 0;
    const v = exp < 0 ? mant / POW10[-exp] : mant;
    return neg ? -v : v;
  }
  if (f32 && (c === d || c === END) && sig <= 25 && exp >= -22) {
    // sig > 15 here: mant holds the digits with rounding error, v is within 2^-49 of the decimal
    const v = exp < 0 ? mant / POW10[-exp] : mant;
    if (v >= 1e-37 && v <= 1e37) {
      const lo = Math.fround(v * (1 - F32_MARGIN));
      if (lo === Math.fround(v * (1 + F32_MARGIN))) {
        fieldEnd = i;
        numKind = 0;
        return neg ? -lo : lo;
      }
    }
  }
  // anything else (exponent, spaces, tokens, text): find the field end, then the general parser
  while (i < e && b[i] !== d) i++;
  fieldEnd = i;
  return parseNumber(b, s, i);
}

/** Parse a number from a string cell (quoted fields, NDJSON): same grammar and kinds. */
export function parseNumberSlow(str: string): number {
  const t = str.trim();
  if (t === '') {
    numKind = 1;
    return NaN;
  }
  if (NUM_RE.test(t)) {
    numKind = 0;
    return Number(t);
  }
  switch (t.toLowerCase()) {
    case 'infinity':
    case '+infinity':
    case 'inf':
    case '+inf':
      numKind = 0;
      return Infinity;
    case '-infinity':
    case '-inf':
      numKind = 0;
      return -Infinity;
    case 'nan':
    case '-nan':
    case '+nan':
      numKind = 2;
      return NaN;
  }
  numKind = 3;
  return NaN;
}
