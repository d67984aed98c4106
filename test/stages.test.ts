import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeIp, ipv4Value, createIpSplit } from '../stages/ipsplit.js';
import { createLabels } from '../stages/labels.js';
import { createSanitize } from '../stages/sanitize.js';
import { createSplit } from '../stages/split.js';
import { createFilter } from '../stages/filter.js';
import { fitScaler, applyScaler, runShardJobs, slog1p } from '../stages/scale.js';
import { Moments, mergeMoments, meanStd } from '../src/moments.js';
import { rng } from '../src/synth.js';
import { EventEmitter } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { loadConfig } from '../src/config.js';
import type { Batch } from '../src/batch.js';
import type { RejectRecord } from '../stages/parse.js';

const cfg = loadConfig();

function batch(n: number, num: Record<string, number[]>, str: Record<string, (string | undefined)[]> = {}, extra: Partial<Batch> = {}): Batch {
  const b: Batch = { file: 'f.csv', format: 'trafficlabelling', n, line: Int32Array.from({ length: n }, (_, i) => i + 2), num: new Map(), str: new Map(), issues: [], ...extra };
  for (const [k, v] of Object.entries(num)) b.num.set(k, Float64Array.from(v));
  for (const [k, v] of Object.entries(str)) b.str.set(k, v);
  return b;
}

test('ipsplit: IPv4 as IPv4-mapped groups, IPv6 in full, missing and invalid as zeros + family 0', () => {
  const g = new Uint16Array(8);
  assert.equal(encodeIp('192.168.10.5', g), 4);
  assert.deepEqual(Array.from(g), [0, 0, 0, 0, 0, 0xffff, 192 * 256 + 168, 10 * 256 + 5]);
  assert.equal(encodeIp('2001:db8::1', g), 6);
  assert.deepEqual(Array.from(g), [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
  assert.equal(encodeIp('fe80::1:2%eth0', g), 6);
  assert.deepEqual(Array.from(g), [0xfe80, 0, 0, 0, 0, 0, 1, 2]);
  assert.equal(encodeIp('::ffff:10.0.0.1', g), 4); // the same host as 10.0.0.1
  assert.deepEqual(Array.from(g), [0, 0, 0, 0, 0, 0xffff, 10 * 256, 1]);
  assert.equal(encodeIp('1:2:3:4:5:6:7:8', g), 6);
  for (const bad of ['300.1.1.1', '1.2.3', '12345', 'abc', '1::2::3', '1:2:3:4:5:6:7:8:9', '']) {
    assert.equal(encodeIp(bad, g), 0, bad);
    assert.ok(g.every((x) => x === 0), bad);
  }
  assert.equal(ipv4Value('255.255.255.255'), 4294967295);
  assert.equal(ipv4Value('1.2.3.04'), 16909060);
  const s = createIpSplit(['source_ip']);
  const out = s.apply(batch(4, { a: [1, 2, 3, 4] }, { source_ip: ['10.0.0.1', '2001:db8::2', undefined, '12345'] }, { order: ['source_ip', 'a'] }));
  assert.deepEqual(out.order!.slice(0, 3), ['source_ip_h0', 'source_ip_h1', 'source_ip_h2']);
  assert.deepEqual(Array.from(out.num.get('source_ip_family')!), [4, 6, 0, 0]);
  assert.deepEqual(Array.from(out.num.get('source_ip_h7')!), [1, 2, 0, 0]);
  assert.ok([...out.num.values()].every((c) => c.every((v) => Number.isFinite(v))));
  assert.deepEqual(s.counts, { ipv4: { source_ip: 1 }, ipv6: { source_ip: 1 }, missing: { source_ip: 1 }, invalid: { source_ip: 1 } });
});

test('labels: every spelling in the real samples maps to one class', () => {
  const l = createLabels({ cfg });
  const cases: [string, string, string?][] = [
    ['BENIGN', 'BENIGN'], ['DDoS', 'DDoS'], ['PortScan', 'PortScan'], ['Portscan', 'PortScan'], ['Bot', 'Bot'], ['Botnet', 'Bot'],
    ['Infiltration', 'Infiltration'], ['Infiltration - Portscan', 'Infiltration'],
    ['Web Attack \u2013 Brute Force', 'BruteForce'], ['Web Attack \x96 Brute Force', 'BruteForce'], ['Web Attack \u0096 Brute Force', 'BruteForce'], ['Web Attack \ufffd Brute Force', 'BruteForce'], ['Web Attack - Brute Force', 'BruteForce'], ['BruteForce', 'BruteForce', 'clean'],
    ['Web Attack \ufffd XSS', 'XSS'], ['Web Attack \u0096 XSS', 'XSS'], ['XSS', 'XSS'],
    ['Web Attack \u0096 Sql Injection', 'SQLInjection'], ['Web Attack - SQL Injection', 'SQLInjection'], ['SQLInjection', 'SQLInjection'],
    ['FTP-Patator', 'FTPPatator'], ['FTPPatator', 'FTPPatator'], ['SSH-Patator', 'SSHPatator'], ['SSHPatator', 'SSHPatator'],
    ['DoS slowloris', 'DoSSlowloris'], ['DoS Slowloris', 'DoSSlowloris'], ['DoSSlowloris', 'DoSSlowloris'], ['DoS Slowhttptest', 'DoSSlowhttptest'],
    ['DoS Hulk', 'DoSHulk'], ['DoS GoldenEye', 'DoSGoldenEye'], ['Heartbleed', 'Heartbleed'], ['Normal Traffic', 'BENIGN'], ['Port Scanning', 'PortScan'], ['Bots', 'Bot'],
  ];
  for (const [raw, cls, fmt] of cases) assert.equal(l.vocab[l.resolve(raw, fmt ?? 'trafficlabelling', 'f', 1)], cls, raw);
  assert.deepEqual(l.vocab, cfg.classes);
});

test('labels: unknown and merged labels are clear errors naming file and line, unless --allow-new-labels', () => {
  const l = createLabels({ cfg });
  assert.throws(() => l.apply(batch(2, {}, { label: ['BENIGN', 'Gremlins'] })), /f\.csv:3: unknown label "Gremlins"/);
  assert.throws(() => l.resolve('DoS', 'derived', 'g.csv', 9), /g\.csv:9: unknown label "DoS": a merged label/);
  assert.throws(() => l.resolve('BruteForce', 'trafficlabelling', 'g.csv', 9), /merged label/);
  const seen: string[] = [];
  const a = createLabels({ cfg, allowNewLabels: true, onNewLabel: (x) => seen.push(x) });
  const out = a.apply(batch(3, {}, { label: ['Gremlins', 'BENIGN', 'Gremlins'] }));
  assert.deepEqual(Array.from(out.label!), [15, 0, 15]);
  assert.equal(a.vocab[15], 'Gremlins');
  assert.deepEqual(seen, ['Gremlins']);
});

test('labels: attempted attacks follow the policy (benign by default, attack, drop) and are counted', () => {
  const rows = ['DoS Hulk - Attempted', 'DoS Hulk', 'Web Attack - Brute Force - Attempted'];
  const def = createLabels({ cfg });
  assert.deepEqual(Array.from(def.apply(batch(3, {}, { label: rows })).label!).map((i) => def.vocab[i]), ['BENIGN', 'DoSHulk', 'BENIGN']);
  const att = createLabels({ cfg, attempted: 'attack' });
  assert.deepEqual(Array.from(att.apply(batch(3, {}, { label: rows })).label!).map((i) => att.vocab[i]), ['DoSHulk', 'DoSHulk', 'BruteForce']);
  const drop = createLabels({ cfg, attempted: 'drop' });
  const out = drop.apply(batch(3, {}, { label: rows }));
  assert.equal(out.n, 1);
  assert.equal(out.line[0], 3);
  assert.equal(drop.counts.dropped_attempted, 2);
});

test('labels: an empty label cell is quarantined with its line', () => {
  const rej: RejectRecord[] = [];
  const l = createLabels({ cfg, onReject: (r) => rej.push(r) });
  const out = l.apply(batch(2, { x: [1, 2] }, { label: [undefined, 'BENIGN'] }));
  assert.equal(out.n, 1);
  assert.deepEqual([rej[0].line, rej[0].reason], [2, 'missing_label']);
});

test('sanitize: NaN/empty/text -> 0 counted per column; ±Inf kept for scale; overflow counts as Inf; policies', () => {
  const b = batch(4, { a: [NaN, 1, NaN, 4e38], c: [Infinity, -Infinity, 2, NaN] });
  b.issues.push({ row: 0, col: 'a', kind: 'nan', raw: 'NaN' }, { row: 2, col: 'a', kind: 'text', raw: 'abc' }, { row: 3, col: 'c', kind: 'empty', raw: '' });
  const s = createSanitize({ cfg });
  const out = s.apply(b);
  assert.deepEqual(Array.from(out.num.get('a')!), [0, 1, 0, Infinity]);
  assert.deepEqual(Array.from(out.num.get('c')!), [Infinity, -Infinity, 2, 0]);
  assert.deepEqual(s.counts.replaced, { 'a.nan': 1, 'a.text': 1, 'c.empty': 1 });
  assert.deepEqual(s.counts.kept_for_scale, { 'a.posinf': 1, 'c.posinf': 1, 'c.neginf': 1 });
  assert.deepEqual(s.examples['a/text'], [{ file: 'f.csv', line: 4, raw: 'abc' }]);
  const rej: RejectRecord[] = [];
  const q = createSanitize({ cfg, policy: { posinf: 'quarantine', text: 'drop' }, onReject: (r) => rej.push(r) });
  const b2 = batch(3, { a: [Infinity, 1, NaN] });
  b2.issues.push({ row: 2, col: 'a', kind: 'text', raw: 'x' });
  const o2 = q.apply(b2);
  assert.equal(o2.n, 1);
  assert.deepEqual(rej.map((r) => [r.line, r.reason]), [[2, 'posinf_value']]);
  assert.equal(q.counts.dropped_rows, 1);
  assert.equal(q.counts.quarantined_rows, 1);
});

test('filter: keeps the seed columns, fills a missing twin from its source, zero-fills with a count', () => {
  const f = createFilter({ cfg });
  assert.equal(f.columns.length, 38);
  assert.ok(!f.columns.includes('flow_iat_mean') && f.columns.includes('fwd_header_length.1'));
  const b = batch(2, { fwd_header_length: [40, 60], flow_duration: [1, 2] }, { label: ['BENIGN', 'BENIGN'] });
  const out = f.apply(b);
  assert.deepEqual(Array.from(out.num.get('fwd_header_length.1')!), [40, 60]);
  assert.deepEqual(Array.from(out.num.get('act_data_pkt_fwd')!), [0, 0]);
  assert.equal((f.counts.filled_missing_column as Record<string, number>).act_data_pkt_fwd, 2);
  const noid = createFilter({ cfg, dropIdentifiers: true });
  for (const c of cfg.identifier_columns) assert.ok(!noid.columns.includes(c), c);
});

test('split: deterministic, duplicates stay together or are dropped (the per-class minimum is decided later)', () => {
  const n = 3000;
  const label = new Int32Array(n).map((_, i) => (i < 3 ? 1 : i % 7 === 0 ? 2 : 0));
  const F = 3;
  const x = new Float32Array(n * F).map((_, k) => Math.floor(k / F) % 1000); // rows repeat every 1000
  const s1 = createSplit({ ratios: cfg.split });
  const r1 = s1.assign(x, F, n, label);
  const s2 = createSplit({ ratios: cfg.split });
  const r2 = s2.assign(x, F, n, label);
  assert.deepEqual(r1.split, r2.split);
  const share = [0, 0, 0];
  r1.split.forEach((s) => share[s]++);
  assert.ok(Math.abs(share[0] / n - 0.7) < 0.05 && Math.abs(share[1] / n - 0.15) < 0.04, share.join());
  // duplicates (same features and label) share a split
  for (let i = 1000; i < n; i++) if (label[i] === label[i - 1000]) assert.equal(r1.split[i], r1.split[i - 1000]);
  const d = createSplit({ ratios: cfg.split, dedupe: true });
  const rd = d.assign(x, F, n, label);
  const kept = rd.keep!.reduce((a, v) => a + v, 0);
  assert.equal(kept + (d.counts.deduplicated as number), n);
  assert.ok(kept <= 2000 && kept >= 1000, String(kept));
  const noVal = createSplit({ ratios: { train: 80, val: 0, test: 20 } });
  const rv = noVal.assign(x, F, 10, label.subarray(0, 10));
  assert.ok(!rv.split.includes(1));
});

test('scale: min-max on train, constant feature defined, log1p, ±Inf to train max/min, clipping counted', () => {
  const features = ['a', 'b', 'c'];
  const sc = fitScaler(features, [0, 5, 0], [10, 5, 1000], { log1p: ['c'], clip: true, posinf: ['train_max', 'train_max', 'train_max'], neginf: ['train_min', 'train_min', 'train_min'] });
  const x = new Float32Array([0, 5, 0, 10, 5, 1000, 5, 5, Infinity, 20, 7, -Infinity, -3, 4, 999]);
  const counts = { clipped: {} as Record<string, number>, inf: {} as Record<string, number> };
  applyScaler(x, 3, sc, counts, features);
  const r = Array.from(x).map((v) => Math.round(v * 1e6) / 1e6);
  assert.deepEqual(r.slice(0, 6), [0, 0, 0, 1, 0, 1]);
  assert.equal(r[6], 0.5);
  assert.equal(r[8], 1); // +Inf -> train max -> 1
  assert.equal(r[9], 1); // 20 > train max 10: clipped
  assert.equal(r[10], 1); // constant feature b: above its value
  assert.equal(r[11], 0); // -Inf -> train min
  assert.equal(r[12], 0); // -3 clipped
  assert.equal(r[13], 0);
  assert.ok(Math.abs(r[14] - Math.log1p(999) / Math.log1p(1000)) < 1e-6);
  assert.deepEqual(counts.clipped, { a: 2, b: 2 });
  assert.deepEqual(counts.inf, { c: 2 });
  assert.ok(x.every((v) => v >= 0 && v <= 1));
});

test('scale jobs: after a failure nothing is handed out and the error waits for the jobs still running', async () => {
  // a stand-in worker that answers 40 ms late; the main thread fails at once on a missing file
  const events: string[] = [];
  const w = new EventEmitter() as EventEmitter & { postMessage: (m: { id: number; job: { file: string } }) => void };
  const posted: number[] = [];
  w.postMessage = (m) => {
    posted.push(m.id);
    setTimeout(() => {
      events.push(`worker answered ${m.id}`);
      w.emit('message', { type: 'scaled', id: m.id, r: { file: m.job.file, bytes: 0, sha256: '', clipped: {}, inf: {} } });
    }, 40);
  };
  const jobs = [0, 1, 2, 3].map((k) => ({ full: `/nonexistent/flowtensor/${k}.safetensors`, file: `train/${k}`, split: 'train' as const, rows: 1 }));
  const scaler = fitScaler(['a'], [0], [1], { log1p: [], clip: true, posinf: [], neginf: [] });
  await assert.rejects(
    runShardJobs(jobs, scaler, ['a'], [w as unknown as Worker], true).finally(() => events.push('rejected')),
    /ENOENT/,
  );
  // the worker holds two jobs at a time (the one it runs and the next): both were handed out before the failure
  assert.deepEqual(events, ['worker answered 0', 'worker answered 1', 'rejected']);
  assert.deepEqual(posted, [0, 1], 'no job handed to the worker after the failure');
});

test('moments: blocks filled by beginRows and then continued row by row stay exact (sums checked against BigInt)', () => {
  // pass 1 adds train rows a feature at a time in blocks (beginRows) and rows evicted from the held
  // list one at a time (add + endRow): a block left at exactly its size must still be flushed
  const m = new Moments(1);
  const ONE = 2 ** 24;
  let s1 = 0n;
  let s2 = 0n;
  const put = (v: number) => {
    m.add(0, v);
    s1 += BigInt(Math.round(v * ONE));
    s2 += BigInt(Math.round(v * v * ONE));
  };
  for (let b = 0; b < 64; b++) {
    m.beginRows(256);
    for (let i = 0; i < 256; i++) put(120 + ((b * 256 + i) % 97) / 97);
  }
  for (let i = 0; i < 100_000; i++) {
    put(120 + (i % 89) / 89); // v² · 2^24 ≈ 2^38: 2^15 such rows in one double would pass 2^53
    m.endRow();
  }
  const j = m.toJSON();
  assert.equal(j.n[0], 64 * 256 + 100_000);
  assert.equal(j.s1[0], String(s1));
  assert.equal(j.s2[0], String(s2));
});

test('moments: exact and order-free (any order, any partitioning, the same integers); mean and std match a direct computation', () => {
  const r = rng(17);
  const F = 3;
  const rows: number[][] = [];
  for (let i = 0; i < 5000; i++) rows.push([r() * 100 - 50, slog1p(Math.exp(r() * 80)), i % 7 === 0 ? Infinity : r()]);
  const whole = new Moments(F);
  for (const row of rows) whole.addRow(row, 0);
  const a = whole.toJSON();
  // shuffled and cut into 4 parts, merged in two different tree orders
  const shuffled = [...rows].sort(() => r() - 0.5);
  const parts = [0, 1, 2, 3].map((k) => {
    const m = new Moments(F);
    for (const row of shuffled.slice(k * 1250, (k + 1) * 1250)) m.addRow(row, 0);
    return m.toJSON();
  });
  assert.deepEqual(mergeMoments([mergeMoments([parts[3], parts[0]]), mergeMoments([parts[2], parts[1]])]), a);
  assert.deepEqual(mergeMoments(parts), a);
  assert.equal(a.n[2], rows.filter((x) => Number.isFinite(x[2])).length, 'non-finite values are not counted');
  const { mean, std } = meanStd(a);
  for (let f = 0; f < F; f++) {
    const v = rows.map((x) => x[f]).filter(Number.isFinite);
    const mu = v.reduce((s, x) => s + x, 0) / v.length;
    const sd = Math.sqrt(v.reduce((s, x) => s + (x - mu) ** 2, 0) / v.length);
    assert.ok(Math.abs(mean[f] - mu) < 1e-6 * Math.max(1, Math.abs(mu)), `mean ${f}: ${mean[f]} vs ${mu}`);
    assert.ok(Math.abs(std[f] - sd) < 1e-6 * Math.max(1, sd), `std ${f}: ${std[f]} vs ${sd}`);
  }
});

test('scale: log-standard is (signed log1p - train mean) / train std, clipped to the train range; a constant feature gets scale 1', () => {
  const features = ['a', 'b'];
  const train = [[0, 5], [10, 5], [1000, 5], [-3, 5]];
  const m = new Moments(2);
  for (const row of train) m.addRow(row.map(slog1p), 0);
  const sc = fitScaler(features, [-3, 5], [1000, 5], { log1p: features, clip: true, posinf: ['train_max', 'train_max'], neginf: ['train_min', 'train_min'], method: 'log-standard', moments: m.toJSON() });
  const t = train.map((row) => slog1p(row[0]));
  const mu = t.reduce((s, x) => s + x, 0) / t.length;
  const sd = Math.sqrt(t.reduce((s, x) => s + (x - mu) ** 2, 0) / t.length);
  assert.ok(Math.abs(sc.center![0] - mu) < 1e-6 && Math.abs(sc.scale![0] - sd) < 1e-6);
  assert.equal(sc.scale![1], 1);
  const x = new Float32Array([10, 5, 1e6, 5, -Infinity, 7, Infinity, 4]);
  const counts = { clipped: {} as Record<string, number>, inf: {} as Record<string, number> };
  applyScaler(x, 2, sc, counts, features);
  assert.ok(Math.abs(x[0] - (Math.log1p(10) - mu) / sd) < 1e-5);
  assert.equal(x[1], 0); // the constant feature at its train value
  assert.ok(Math.abs(x[2] - sc.y_max![0]) < 1e-6, '1e6 > train max: clipped to it');
  assert.ok(Math.abs(x[4] - sc.y_min![0]) < 1e-6, '-Infinity -> train min');
  assert.ok(Math.abs(x[6] - sc.y_max![0]) < 1e-6, '+Infinity -> train max');
  assert.equal(x[3], 0);
  assert.equal(x[5], 0); // 7 on a feature constant at 5 in train: clipped to its train value
  assert.deepEqual(counts.clipped, { a: 1, b: 2 });
  assert.deepEqual(counts.inf, { a: 2 });
});
