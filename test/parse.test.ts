import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CsvBatchParser, type RejectRecord } from '../stages/parse.js';
import { loadConfig, canonicalHeader, normalizeHeaderName } from '../src/config.js';
import { parseNumber, parseNumberAt, numKind, decodeText } from '../src/csv.js';
import type { Batch } from '../src/batch.js';
import { tlHeader, tlRow } from './helpers.js';

const cfg = loadConfig();

function parseAll(text: string | Buffer, opts: { chunk?: number; strict?: boolean; maxLineBytes?: number; multiline?: boolean; jsScan?: boolean; want?: Set<string> | null; delimiter?: string; dispose?: boolean } = {}) {
  const rejects: RejectRecord[] = [];
  const p = new CsvBatchParser({ file: 't.csv', cfg, want: opts.want ?? null, onReject: (r) => rejects.push(r), strict: opts.strict, maxLineBytes: opts.maxLineBytes, multilineQuotes: opts.multiline, batchSize: 7, jsScan: opts.jsScan, delimiter: opts.delimiter });
  const buf = Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1');
  const batches: Batch[] = [];
  const step = opts.chunk ?? buf.length;
  for (let i = 0; i < buf.length; i += step) batches.push(...p.push(buf.subarray(i, i + step)));
  batches.push(...p.end());
  if (opts.dispose) p.dispose(); // its kernel instance goes to the next parser, memory as this one left it
  return { p, batches, rejects, rows: batches.reduce((a, b) => a + b.n, 0) };
}

test('header names follow the seed rule, repeats get .1 like pandas', () => {
  assert.equal(normalizeHeaderName(' Flow Bytes/s'), 'flow_bytes_per_s');
  assert.equal(normalizeHeaderName('Down/Up Ratio'), 'down_per_up_ratio');
  assert.equal(normalizeHeaderName('\uFEFFFlow ID'), 'flow_id');
  const h = canonicalHeader([' Fwd Header Length', 'x', 'Fwd Header Length'], cfg);
  assert.deepEqual(h, ['fwd_header_length', 'x', 'fwd_header_length.1']);
});

test('all four header layouts map onto the canonical names and are detected', () => {
  const cases: [string, string][] = [
    [tlHeader(), 'trafficlabelling'],
    [' Destination Port, Flow Duration, Total Fwd Packets, Total Backward Packets,Total Length of Fwd Packets, Total Length of Bwd Packets, Fwd Header Length, Bwd Header Length, Flow Bytes/s, Flow Packets/s, Label', 'machinelearningcve'],
    ['flow_id,source_ip,source_port,destination_ip,destination_port,protocol,timestamp,flow_duration,total_fwd_packets,total_backward_packets,fwd_header_length,fwd_header_length.1,flow_bytes_per_s,label,external_ip', 'clean'],
    ['id,Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,Flow Duration,Total Fwd Packet,Total Bwd packets,Total Length of Fwd Packet,Total Length of Bwd Packet,FWD Init Win Bytes,Bwd Init Win Bytes,Fwd Act Data Pkts,CWR Flag Count,ICMP Code,Label,Attempted Category', 'improved'],
  ];
  for (const [header, fmt] of cases) {
    const n = header.split(',').length;
    const row = Array.from({ length: n }, (_, i) => (header.split(',')[i].trim().toLowerCase().includes('label') ? 'BENIGN' : header.split(',')[i].toLowerCase().includes('ip') ? '10.0.0.1' : String(i))).join(',');
    const { p, rows } = parseAll(`${header}\n${row}\n`);
    assert.equal(p.header!.format, fmt, header.slice(0, 40));
    assert.equal(rows, 1);
    const c = p.header!.canonical;
    for (const want of ['flow_duration', 'total_fwd_packets', 'total_backward_packets', 'label']) assert.ok(c.includes(want), `${fmt}: ${want} in ${c.join(',')}`);
  }
  // the improved layout's other spellings reach the canonical features
  const { p } = parseAll('id,Src IP,Dst Port,Total Fwd Packet,FWD Init Win Bytes,Fwd Act Data Pkts,CWR Flag Count,Flow Duration,Total Bwd packets,Total Length of Fwd Packet,Label,Attempted Category\n');
  for (const c of ['source_ip', 'destination_port', 'total_fwd_packets', 'init_win_bytes_forward', 'act_data_pkt_fwd', 'cwe_flag_count']) assert.ok(p.header!.canonical.includes(c), c);
});

test('quirks: BOM, CRLF, blank and comma-only rows, repeated header, last line without newline', () => {
  const h = tlHeader();
  const text = '\uFEFF'.replace('\uFEFF', '\xEF\xBB\xBF') + h + '\r\n' + tlRow() + '\r\n\r\n' + ','.repeat(84) + '\r\n' + h + '\r\n' + tlRow({ 7: 5 }) + '\r\n' + ','.repeat(84) + '\n' + tlRow({ 7: 9 });
  for (const chunk of [undefined, 1, 13, 1000]) {
    const { p, rows, batches } = parseAll(text, { chunk });
    assert.equal(rows, 3, `chunk ${chunk}`);
    assert.equal(p.counts.blank_rows, 3);
    assert.equal(p.counts.header_rows, 1);
    assert.equal(p.counts.data_rows, 3);
    assert.equal(p.header!.canonical[0], 'flow_id');
    const dur = batches.flatMap((b) => Array.from(b.num.get('flow_duration')!.subarray(0, b.n)));
    assert.deepEqual(dur, [8, 5, 9]);
    const lines = batches.flatMap((b) => Array.from(b.line.subarray(0, b.n)));
    assert.deepEqual(lines, [2, 6, 8]);
    assert.equal(batches[0].str.get('label')![0], 'BENIGN');
  }
});

test('a row with the wrong field count is quarantined with file, line and reason; --strict stops', () => {
  const h = tlHeader();
  const text = `${h}\n${tlRow()}\n1,2,3\n${tlRow()}\n`;
  const { rows, rejects, p } = parseAll(text);
  assert.equal(rows, 2);
  assert.equal(rejects.length, 1);
  assert.deepEqual([rejects[0].file, rejects[0].line, rejects[0].reason], ['t.csv', 3, 'field_count']);
  assert.equal(p.counts.quarantined, 1);
  assert.throws(() => parseAll(text, { strict: true }), /t\.csv:3: 3 fields where the header has 85/);
});

test('an 86th external_ip field and a short row under an external_ip header are accepted and counted', () => {
  const h = tlHeader();
  const { rows, p, batches } = parseAll(`${h}\n${tlRow()},1.2.3.4\n`);
  assert.equal(rows, 1);
  assert.equal(p.counts.long_rows_accepted, 1);
  assert.equal(batches[0].str.get('external_ip')![0], '1.2.3.4');
  const clean = 'flow_id,source_ip,flow_duration,total_fwd_packets,total_backward_packets,fwd_header_length,bwd_header_length,flow_bytes_per_s,flow_packets_per_s,label,external_ip';
  const r2 = parseAll(`${clean}\nx,1.1.1.1,1,2,3,4,5,6,7,BENIGN\n`);
  assert.equal(r2.rows, 1);
  assert.equal(r2.p.counts.short_rows_accepted, 1);
  assert.equal(r2.batches[0].str.get('external_ip')![0], undefined);
});

test('numeric quirks become NaN/±Infinity with an issue naming the kind', () => {
  const h = tlHeader();
  // column 20 is Flow Bytes/s, 21 Flow Packets/s, 7 Flow Duration
  const rows = [tlRow({ 20: 'Infinity', 21: 'NaN' }), tlRow({ 20: '', 21: 'inf' }), tlRow({ 20: 'abc', 21: '-Infinity', 7: '-1' }), tlRow({ 20: '1.5E+07', 21: ' 42 ' })];
  const { batches } = parseAll(`${h}\n${rows.join('\n')}\n`);
  const b = batches[0];
  const fb = b.num.get('flow_bytes_per_s')!;
  const fp = b.num.get('flow_packets_per_s')!;
  assert.equal(fb[0], Infinity);
  assert.ok(Number.isNaN(fp[0]));
  assert.ok(Number.isNaN(fb[1]));
  assert.equal(fp[1], Infinity);
  assert.ok(Number.isNaN(fb[2]));
  assert.equal(fp[2], -Infinity);
  assert.equal(b.num.get('flow_duration')![2], -1);
  assert.equal(fb[3], 1.5e7);
  assert.equal(fp[3], 42);
  const kinds = b.issues.map((i) => `${i.row}:${i.col}:${i.kind}`).sort();
  assert.deepEqual(kinds, ['0:flow_packets_per_s:nan', '1:flow_bytes_per_s:empty', '2:flow_bytes_per_s:text']);
});

test('quoted fields with delimiters; with multilineQuotes, fields that span lines', () => {
  const text = 'Flow ID,Source IP,Destination IP,Flow Duration,Total Fwd Packets,Total Backward Packets,Fwd Header Length,Bwd Header Length,Flow Bytes/s,Flow Packets/s,Label\n"a,b",1.1.1.1,2.2.2.2,"12",2,3,4,5,6,7,"Web Attack\n ""x"""\nz,1.1.1.1,2.2.2.2,13,2,3,4,5,6,7,BENIGN\n"c,d",1.1.1.1,2.2.2.2,"14",2,3,4,5,6,7,"Web ""Attack"""\r\n';
  for (const chunk of [undefined, 3]) {
    const { batches, rows } = parseAll(text, { chunk, multiline: true });
    assert.equal(rows, 3);
    const b = batches[0];
    assert.equal(b.str.get('label')![0], 'Web Attack\n "x"');
    assert.equal(b.str.get('flow_id')![2], 'c,d');
    assert.equal(b.str.get('label')![2], 'Web "Attack"');
    assert.equal(b.num.get('flow_duration')![0], 12);
    assert.deepEqual(Array.from(b.line.subarray(0, 3)), [2, 4, 5]);
    // by default the open quote ends at its line: that row is quarantined, its next line read as a row
    const d = parseAll(text, { chunk });
    assert.equal(d.rows, 2, `chunk ${chunk}`);
    assert.deepEqual(d.rejects.map((r) => [r.line, r.reason]), [[2, 'unterminated_quote'], [3, 'field_count']]);
    assert.deepEqual(d.batches.flatMap((x) => Array.from(x.line.subarray(0, x.n))), [4, 5]);
  }
});

test('stray quotes never swallow rows: an open quote ends at its line, text after a closing quote is malformed', () => {
  const h = tlHeader();
  const lines = [h];
  for (let i = 0; i < 200; i++) lines.push(tlRow({ 7: i }));
  lines[2] = tlRow({ 0: '"192.168.10.5-1', 7: 1 }); // line 3: a field starting with a quote, never closed
  lines[12] = tlRow({ 0: '"x', 7: 11 }); // line 13
  lines[20] = tlRow({ 0: '"ab"c', 7: 19 }); // line 21: text after the closing quote
  lines[30] = tlRow({ 0: '"quoted, fine"', 7: 29 }); // line 31: a well-formed quoted field
  const text = lines.join('\n') + '\n';
  for (const chunk of [undefined, 7, 1000]) {
    const { rows, rejects, p, batches } = parseAll(text, { chunk });
    assert.deepEqual(rejects.map((r) => [r.line, r.reason]), [[3, 'unterminated_quote'], [13, 'unterminated_quote'], [21, 'text_after_quote']], `chunk ${chunk}`);
    assert.equal(rows, 197);
    assert.equal(p.counts.data_rows, 200);
    assert.equal(p.counts.quarantined, 3);
    const got = batches.flatMap((b) => Array.from(b.line.subarray(0, b.n)));
    assert.ok(got.includes(4) && got.includes(14) && got.includes(31) && got.includes(201));
    const dur = batches.flatMap((b) => Array.from(b.num.get('flow_duration')!.subarray(0, b.n)));
    assert.ok(got.every((l, k) => dur[k] === l - 2), 'every row keeps its own line number');
    assert.equal(batches.flatMap((b) => b.str.get('flow_id')!.slice(0, b.n)).filter((v) => v === 'quoted, fine').length, 1);
  }
  assert.throws(() => parseAll(text, { strict: true }), /t\.csv:3: a quoted field is not closed by the end of its line/);
});

test('Windows-1252 bytes decode to the en dash; UTF-8 stays UTF-8', () => {
  assert.equal(decodeText(Buffer.from('Web Attack \x96 Brute Force', 'latin1')), 'Web Attack \u2013 Brute Force');
  assert.equal(decodeText(Buffer.from('Web Attack \u2013 XSS', 'utf8')), 'Web Attack \u2013 XSS');
  assert.equal(decodeText(Buffer.from('Web Attack \ufffd XSS', 'utf8')), 'Web Attack \ufffd XSS');
  const h = tlHeader();
  const { batches, p } = parseAll(Buffer.concat([Buffer.from(`${h}\n`), Buffer.from(tlRow({ 84: 'Web Attack \x96 Brute Force' }) + '\n', 'latin1')]));
  assert.equal(batches[0].str.get('label')![0], 'Web Attack \u2013 Brute Force');
  assert.equal(p.counts.cp1252_cells, 1);
});

test('a line longer than the cap is skipped with bounded memory and quarantined', () => {
  const h = tlHeader();
  const long = 'x'.repeat(5000);
  const { rows, rejects } = parseAll(`${h}\n${tlRow()}\n${long}\n${tlRow()}\n`, { chunk: 512, maxLineBytes: 1024 });
  assert.equal(rows, 2);
  assert.equal(rejects.length, 1);
  assert.equal(rejects[0].reason, 'line_too_long');
  assert.equal(rejects[0].line, 3);
});

test('header problems are one clear error', () => {
  assert.throws(() => parseAll(''), /empty file/);
  assert.throws(() => parseAll('1,2,3,4\n5,6,7,8\n'), /no header/);
  assert.throws(() => parseAll('name,age,city\nbob,3,x\n'), /not a CICFlowMeter header/);
  assert.throws(() => parseAll(tlHeader().replace(/,/g, ';') + '\n'), /another delimiter/);
  assert.throws(() => parseAll(tlHeader().replace(' Label', ' Foo') + '\n'), /no label column/);
});

test('float32 fast path: long decimals parse to exactly Math.fround(Number(text)), also next to float32 rounding boundaries (property)', () => {
  const f32Of = (s: string) => {
    const b = Buffer.from(s + ',');
    const v = parseNumberAt(b, 0, b.length, 44, true);
    assert.equal(numKind, 0, s);
    return Math.fround(v);
  };
  // 16-25 significant digits, as CICFlowMeter writes means and rates
  const digits = fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 15, maxLength: 24 });
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 9 }), digits, fc.nat(30), fc.boolean(), fc.nat(4), (lead, rest, dot, neg, zeros) => {
      const d = String(lead) + rest;
      const at = Math.min(dot, d.length);
      let s = at === 0 ? `0.${'0'.repeat(zeros)}${d}` : at >= d.length ? d : `${d.slice(0, at)}.${d.slice(at)}`;
      if (neg) s = '-' + s;
      assert.ok(Object.is(f32Of(s), Math.fround(Number(s))), s);
    }),
    { numRuns: 3000 },
  );
  // decimals at and around the midpoint of two neighbouring float32s (where the double's rounding decides)
  fc.assert(
    fc.property(fc.float({ min: Math.fround(1e-30), max: Math.fround(1e30), noNaN: true }), fc.constantFrom(16, 17, 18, 21), fc.constantFrom(0, 2 ** -52, -(2 ** -52), 2 ** -40), (a, p, rel) => {
      const f = new Float32Array([a]);
      const u = new Uint32Array(f.buffer);
      u[0]++;
      const mid = ((a + f[0]) / 2) * (1 + rel);
      const s = mid.toPrecision(p);
      if (/e/.test(s)) return;
      assert.ok(Object.is(f32Of(s), Math.fround(Number(s))), s);
    }),
    { numRuns: 3000 },
  );
});

test('parseNumber agrees with Number() on decimal strings (property)', () => {
  fc.assert(
    fc.property(fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: -1e9, max: 1e9 }).map((x) => x / 1000), fc.integer()), (x) => {
      const s = String(x);
      const b = Buffer.from(s + ',');
      const v = parseNumber(b, 0, s.length);
      assert.equal(numKind, 0);
      assert.ok(Object.is(v, Number(s)) || (v === 0 && Number(s) === 0), `${s}: ${v}`);
      const w = parseNumberAt(b, 0, b.length, 44);
      assert.ok(Object.is(w, Number(s)) || (w === 0 && Number(s) === 0), `${s}: ${w} (at)`);
    }),
    { numRuns: 2000 },
  );
});

test('any bytes in: the parser accounts for every line or stops with a clear error (property)', () => {
  const h = tlHeader();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), fc.integer({ min: 1, max: 64 }), (bytes, chunk) => {
      const text = Buffer.concat([Buffer.from(h + '\n' + tlRow() + '\n'), Buffer.from(bytes)]);
      let out;
      try {
        out = parseAll(text, { chunk });
      } catch (e) {
        assert.fail(`threw ${(e as Error).message}`);
      }
      const c = out.p.counts;
      assert.equal(c.data_rows, out.rows + (c.quarantined as number));
      assert.ok(out.rows >= 1);
    }),
    { numRuns: 300 },
  );
});

test('the WebAssembly delimiter scan and the JavaScript loop parse alike: rows of any shape, any chunking, a few columns or all (property)', () => {
  const h = tlHeader();
  const fields = h.split(',').length;
  // rows built from plausible and hostile cells: numbers, empty, tokens, text, quotes, extra or missing fields
  const cell = fc.oneof(fc.integer({ min: -99999, max: 999999 }).map(String), fc.double({ noNaN: true, min: -1e6, max: 1e6 }).map(String), fc.constantFrom('', 'NaN', 'Infinity', '-inf', 'x1', '"a,b"', '"', ' 7', '1e3', '0.1234567890123456789', '-0', '.5', '5.', '-', '.', '+5', '0007.250', '0.0000000000000000000001', '123456789012345', '1234567890123456', '-99999999999999.9', '00000000000000000000000000000042', '1.00000000000000000000000'), fc.tuple(fc.stringMatching(/^-?[0-9]{0,18}$/), fc.stringMatching(/^[0-9]{0,24}$/)).map(([a, b]) => (b ? `${a}.${b}` : a)));
  const row = fc.tuple(fc.array(cell, { minLength: fields - 2, maxLength: fields + 1 }), fc.constantFrom('BENIGN', 'DDoS', 'Web Attack \x96 XSS', '')).map(([cs, lab]) => [...cs, lab].join(','));
  fc.assert(
    fc.property(fc.array(row, { maxLength: 30 }), fc.integer({ min: 1, max: 300 }), fc.boolean(), fc.boolean(), (rows, chunk, crlf, some) => {
      const text = Buffer.from([h, tlRow(), ...rows].join(crlf ? '\r\n' : '\n'), 'latin1');
      const want = some ? new Set(['flow_duration', 'source_ip', 'total_fwd_packets', 'label', 'fwd_header_length.1']) : null;
      // a and c give their kernel instances back: the next runs reuse them, left by other column sets
      const a = parseAll(text, { chunk, want, dispose: true });
      const b = parseAll(text, { chunk, want, jsScan: true });
      const c = parseAll(text, { want, dispose: true }); // one chunk
      for (const other of [b, c]) {
        assert.deepEqual(other.batches, a.batches);
        assert.deepEqual(other.rejects, a.rejects);
        assert.deepEqual(other.p.counts, a.p.counts);
      }
    }),
    { numRuns: 300 },
  );
  // another delimiter: the scan looks for it, not for commas
  const semi = Buffer.from([h, tlRow()].join('\n').replace(/,/g, ';') + '\n', 'latin1');
  const r = parseAll(semi, { delimiter: ';', chunk: 17 });
  assert.equal(r.rows, 1);
  assert.deepEqual(parseAll(semi, { delimiter: ';', chunk: 17, jsScan: true }).batches, r.batches);
});

test('a delimiter that is also a sign or a point (--delimiter - or .): an empty cell is empty, as on the general path', () => {
  for (const delimiter of ['-', '.', ';']) {
    const h = tlHeader().split(',').map((c) => c.replace(/[-.]/g, ' ')).join(delimiter);
    // unsigned integers only (the delimiter may be '-' or '.'): an empty cell, and a quoted row for the general path
    const cells = (over: Record<number, string>) => tlRow(over).split(',').map((c, i) => (over[i] !== undefined ? over[i] : String(i + 1)));
    const fast = cells({ 20: '' }).join(delimiter);
    const general = cells({ 20: '', 0: '"x"' }).join(delimiter);
    for (const jsScan of [false, true]) {
      const { batches } = parseAll(`${h}\n${fast}\n${general}\n`, { delimiter, jsScan });
      const b = batches[0];
      assert.equal(b.n, 2, `${delimiter}: rows`);
      assert.deepEqual(b.issues.map((i) => `${i.row}:${i.col}:${i.kind}`), ['0:flow_bytes_per_s:empty', '1:flow_bytes_per_s:empty'], `delimiter ${delimiter}, js ${jsScan}`);
      assert.equal(b.num.get('flow_duration')![0], 8);
    }
  }
});
