import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { prep } from '../src/prep.js';
import { readManifest } from '../src/manifest.js';
import { readSafetensors } from '../src/safetensors.js';
import { SPLITS } from '../src/batch.js';
import { cli, synthFile, tmpdir, tlHeader, tlRow, writeCsv, realSamples, NO_REAL_DATA } from './helpers.js';

function listShards(dir: string): string[] {
  return SPLITS.flatMap((s) => fs.readdirSync(path.join(dir, s)).sort().map((f) => path.join(s, f)));
}

test('prep on synth: row accounting adds up, train features standardised (log-standard), val/test inside the train range, shards match the manifest', async () => {
  const d = tmpdir();
  const a = synthFile(d, 'a.csv', { rows: 6000, seed: 3 });
  const b = synthFile(d, 'b.csv', { rows: 3000, seed: 4, ipv6: 0.2, crlf: true, bom: true });
  const out = path.join(d, 'shards');
  const m = await prep({ out, inputs: [a, b], shardRows: 2000, workers: 0 });
  const acc = m.accounting;
  assert.equal(acc.data_rows, 9000);
  assert.equal(acc.rows_in_shards + acc.quarantined + acc.dropped + acc.deduplicated, acc.data_rows);
  assert.equal(acc.unaccounted, 0);
  assert.equal(acc.header_rows, 2); // synth repeats its header once per file
  assert.equal(acc.blank_rows, 8);
  assert.ok((m.quality.ip as { ipv6: Record<string, number> }).ipv6.source_ip > 300);
  assert.deepEqual(m.labels, readManifest(out).labels);
  assert.equal(m.scaler.method, 'log-standard');
  const F = m.num_features;
  const yMin = m.scaler.y_min!;
  const yMax = m.scaler.y_max!;
  const sum = new Float64Array(F);
  const sq = new Float64Array(F);
  let rows = 0;
  for (const s of SPLITS) {
    const counts: Record<string, number> = {};
    for (const sh of m.splits[s].shards) {
      const st = readSafetensors(path.join(out, sh.file));
      const x = st.get('features') as Float32Array;
      const y = st.get('labels') as Int32Array;
      assert.equal(y.length, sh.rows);
      assert.equal(x.length, sh.rows * m.num_features);
      assert.equal(st.metadata.scaled, 'true');
      for (let i = 0; i < x.length; i++) {
        const f = i % F;
        assert.ok(x[i] >= yMin[f] - 1e-5 && x[i] <= yMax[f] + 1e-5, `${s}: ${m.features[f]} ${x[i]} outside [${yMin[f]}, ${yMax[f]}]`);
        if (s === 'train') {
          sum[f] += x[i];
          sq[f] += x[i] * x[i];
        }
      }
      for (const l of y) counts[m.labels[l]] = (counts[m.labels[l]] ?? 0) + 1;
      rows += y.length;
    }
    assert.deepEqual(counts, m.splits[s].class_counts);
    for (const cls of m.labels) if ((m.splits.train.class_counts[cls] ?? 0) + (m.splits.val.class_counts[cls] ?? 0) + (m.splits.test.class_counts[cls] ?? 0) >= 3) assert.ok((m.splits[s].class_counts[cls] ?? 0) > 0, `${cls} in ${s}`);
  }
  assert.equal(rows, acc.rows_in_shards);
  // the scaler was fitted on train rows only: every train feature has mean 0 and variance 1, or is constant
  const n = m.splits.train.rows;
  const infs = m.quality.infinities_replaced as Record<string, number>;
  for (let f = 0; f < F; f++) {
    if (infs[m.features[f]]) continue; // ±Infinity became the train max/min after the moments were taken
    const mean = sum[f] / n;
    const v = sq[f] / n - mean * mean;
    assert.ok(Math.abs(mean) < 1e-3, `${m.features[f]} train mean ${mean}`);
    if (m.scaler.scale![f] !== 1 || v > 1e-6) assert.ok(Math.abs(v - 1) < 1e-3, `${m.features[f]} train variance ${v}`);
  }
  assert.equal(fs.readFileSync(path.join(out, 'rejects.ndjson'), 'utf8'), '');
  // the scaler was fitted on train rows only: every train feature reaches 0 and 1 or is constant
  readManifest(out, { verify: 'sha256' });
});

test('identical bytes on rerun, whatever the file order, threads or chunking', async () => {
  const d = tmpdir();
  const files = [synthFile(d, 'x.csv', { rows: 5000, seed: 5 }), synthFile(d, 'y.csv', { rows: 4000, seed: 6, ipv6: 0.1 }), synthFile(d, 'z.csv', { rows: 3000, seed: 7, crlf: true })];
  const o1 = path.join(d, 'o1');
  const o2 = path.join(d, 'o2');
  await prep({ out: o1, inputs: files, workers: 0, shardRows: 3000, dedupe: true });
  await prep({ out: o2, inputs: [...files].reverse(), workers: 2, chunkBytes: 200_000, shardRows: 3000, dedupe: true });
  const o3 = path.join(d, 'o3');
  await prep({ out: o3, inputs: files, workers: 1, mainParses: true, chunkBytes: 150_000, shardRows: 3000, dedupe: true });
  for (const f of [...listShards(o3), 'manifest.json']) assert.ok(fs.readFileSync(path.join(o1, f)).equals(fs.readFileSync(path.join(o3, f))), `main-parses ${f}`);
  const s1 = listShards(o1);
  assert.deepEqual(s1, listShards(o2));
  assert.ok(s1.length >= 4);
  for (const f of [...s1, 'manifest.json']) assert.ok(fs.readFileSync(path.join(o1, f)).equals(fs.readFileSync(path.join(o2, f))), f);
  // a rerun into the same folder replaces it cleanly
  await prep({ out: o1, inputs: files, workers: 0, shardRows: 3000, dedupe: true });
  assert.ok(fs.readFileSync(path.join(o1, 'manifest.json')).equals(fs.readFileSync(path.join(o2, 'manifest.json'))));
  assert.ok(fs.readdirSync(o1).every((f) => !f.includes('.tmp-')));
});

test('val/test are scaled with train statistics: a larger test maximum is clipped and counted', async () => {
  const d = tmpdir();
  // Heartbleed has 3 rows: by fingerprint order one goes to train, one to val, one to test (the per-class
  // minimum); the large one is made to land in test by trying values until its fingerprint does
  let out = '';
  let m: Awaited<ReturnType<typeof prep>> | null = null;
  let big = 1e9;
  for (let i = 0; i < 40 && !m; i++, big++) {
    const rows = [tlRow({ 7: 10, 84: 'Heartbleed' }), tlRow({ 7: 20, 84: 'Heartbleed' }), tlRow({ 7: big, 84: 'Heartbleed' })];
    for (let j = 0; j < 50; j++) rows.push(tlRow({ 7: j, 8: j, 84: 'BENIGN' }));
    const f = writeCsv(d, `small${i}.csv`, `${tlHeader()}\n${rows.join('\n')}\n`);
    out = path.join(d, `o${i}`);
    const mm = await prep({ out, inputs: [f], workers: 0, scaler: 'minmax' });
    const k = mm.features.indexOf('flow_duration');
    if (mm.scaler.max[k] <= 49) m = mm;
    else continue;
    // the same with the default scaler: clipped to the largest train value's standardised value
    const out2 = path.join(d, `p${i}`);
    const m2 = await prep({ out: out2, inputs: [f], workers: 0 });
    assert.equal(m2.scaler.method, 'log-standard');
    assert.ok((m2.quality.clipped_to_train_range as Record<string, Record<string, number>>).test.flow_duration >= 1);
    const t2 = m2.splits.test.shards.map((s) => readSafetensors(path.join(out2, s.file)));
    const hb2 = m2.labels.indexOf('Heartbleed');
    const vals = t2.flatMap((st) => {
      const x = st.get('features') as Float32Array;
      return Array.from(st.get('labels') as Int32Array).flatMap((lab, r) => (lab === hb2 ? [x[r * m2.num_features + k]] : []));
    });
    assert.equal(vals.length, 1);
    assert.ok(Math.abs(vals[0] - m2.scaler.y_max![k]) < 1e-5);
    assert.ok(Math.abs(m2.scaler.y_max![k] - (Math.log1p(49) - m2.scaler.center![k]) / m2.scaler.scale![k]) < 1e-9);
  }
  assert.ok(m, 'the large Heartbleed row never landed in test');
  const k = m.features.indexOf('flow_duration');
  const clipped = (m.quality.clipped_to_train_range as Record<string, Record<string, number>>).test;
  assert.ok(clipped.flow_duration >= 1);
  // each split holds one Heartbleed row; the test one is clipped to 1
  const hb = m.labels.indexOf('Heartbleed');
  for (const sp of ['train', 'val', 'test'] as const) assert.equal(m.splits[sp].class_counts.Heartbleed, 1, sp);
  const got = m.splits.test.shards.flatMap((s) => {
    const st = readSafetensors(path.join(out, s.file));
    const x = st.get('features') as Float32Array;
    return Array.from(st.get('labels') as Int32Array).flatMap((lab, r) => (lab === hb ? [x[r * m!.num_features + k]] : []));
  });
  assert.deepEqual(got, [1]);
});

test('shards are readable without flowtensor (Python standard library)', async (t) => {
  const py = spawnSync('python3', ['--version']);
  if (py.status !== 0) return t.skip('python3 not installed');
  const d = tmpdir();
  const out = path.join(d, 'o');
  const m = await prep({ out, inputs: [synthFile(d, 'a.csv', { rows: 2000, seed: 9 })], workers: 0 });
  const shard = path.join(out, m.splits.train.shards[0].file);
  const script = `
import json, struct, sys
with open(sys.argv[1], 'rb') as f:
    n = struct.unpack('<Q', f.read(8))[0]
    h = json.loads(f.read(n))
    data = f.read()
x, y = h['features'], h['labels']
rows, F = x['shape']
vals = struct.unpack('<%df' % (rows * F), data[x['data_offsets'][0]:x['data_offsets'][1]])
labs = struct.unpack('<%di' % rows, data[y['data_offsets'][0]:y['data_offsets'][1]])
print(json.dumps({'rows': rows, 'F': F, 'min': min(vals), 'max': max(vals), 'labsum': sum(labs), 'first': vals[:5], 'meta': h['__metadata__']}))
`;
  const r = spawnSync('python3', ['-c', script, shard], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout);
  const st = readSafetensors(shard);
  const y = st.get('labels') as Int32Array;
  assert.equal(got.rows, m.splits.train.shards[0].rows);
  assert.equal(got.F, m.num_features);
  assert.equal(got.labsum, y.reduce((a, b) => a + b, 0));
  assert.deepEqual(got.first, Array.from((st.get('features') as Float32Array).subarray(0, 5)));
  assert.ok(got.min >= Math.min(...m.scaler.y_min!) - 1e-5 && got.max <= Math.max(...m.scaler.y_max!) + 1e-5);
  assert.equal(got.meta.split, 'train');
});

test('the stage commands piped together write the same shards as prep', async () => {
  const d = tmpdir();
  const csv = synthFile(d, 'a.csv', { rows: 3000, seed: 11, ipv6: 0.05 });
  const viaPrep = path.join(d, 'prep');
  await prep({ out: viaPrep, inputs: [csv], workers: 0 });
  const viaPipe = path.join(d, 'pipe');
  let data = cli(['parse', csv]);
  assert.equal(data.status, 0, data.stderr);
  for (const stage of ['filter', 'ipsplit', 'labels', 'sanitize', 'split']) {
    data = cli([stage], { input: data.stdout });
    assert.equal(data.status, 0, `${stage}: ${data.stderr}`);
  }
  const sh = cli(['shard', '--out', viaPipe], { input: data.stdout });
  assert.equal(sh.status, 0, sh.stderr);
  const sc = cli(['scale', viaPipe]);
  assert.equal(sc.status, 0, sc.stderr);
  const shards = listShards(viaPrep);
  assert.deepEqual(listShards(viaPipe), shards);
  for (const f of shards) assert.ok(fs.readFileSync(path.join(viaPrep, f)).equals(fs.readFileSync(path.join(viaPipe, f))), f);
  const a = readManifest(viaPrep);
  const b = readManifest(viaPipe);
  assert.deepEqual(b.accounting, a.accounting);
  assert.deepEqual(b.scaler, a.scaler);
  assert.deepEqual(b.quality.replaced_values, a.quality.replaced_values);
});

test('CLI: every command has --help; inspect prints a table and --json; bad input is one line, exit 2', () => {
  for (const c of ['prep', 'parse', 'filter', 'ipsplit', 'labels', 'sanitize', 'split', 'shard', 'scale', 'inspect', 'synth', 'demo']) {
    const r = cli([c, '--help']);
    assert.equal(r.status, 0, c);
    assert.match(r.stdout, new RegExp(`flowtensor ${c}`));
  }
  const d = tmpdir();
  const csv = synthFile(d, 'a.csv', { rows: 500, seed: 2 });
  const out = path.join(d, 'o');
  const r = cli(['prep', '-q', '--out', out, csv]);
  assert.equal(r.status, 0, r.stderr);
  const t = cli(['inspect', out]);
  assert.match(t.stdout, /BENIGN/);
  assert.match(t.stdout, /500 read = 500 in shards/);
  assert.equal(JSON.parse(cli(['inspect', '--json', out]).stdout).accounting.data_rows, 500);
  const bad = cli(['prep', '--out', out, writeCsv(d, 'bad.csv', `${tlHeader()}\n${tlRow({ 84: 'Gremlins' })}\n`)]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /bad\.csv:2: unknown label "Gremlins"/);
  assert.doesNotMatch(bad.stderr, /at .*\.js:\d+/);
  const missing = cli(['inspect', path.join(d, 'nope')]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /no manifest\.json/);
});

test('parse | head exits quietly (EPIPE)', () => {
  const d = tmpdir();
  const csv = synthFile(d, 'a.csv', { rows: 20000, seed: 2 });
  const r = spawnSync('bash', ['-c', `node ${JSON.stringify(path.resolve('bin/flowtensor.js'))} parse ${JSON.stringify(csv)} | head -2`], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.equal(r.stdout.trim().split('\n').length, 2);
  assert.doesNotMatch(r.stderr, /Error|at /);
});

test('real CICIDS2017 samples: each release prepares on its own; derived merged labels give a clear error', async (t) => {
  const files = realSamples();
  if (!files) return t.skip(NO_REAL_DATA);
  const d = tmpdir();
  const ok = files.filter((f) => !/Derived-(Kaggle|WesternOC2)/.test(path.basename(f)));
  const improved = ok.filter((f) => /^Improved-/.test(path.basename(f)));
  const original = ok.filter((f) => !improved.includes(f));
  // MachineLearningCVE has no IPs, source port or protocol: refused unless zero-filling is asked for
  await assert.rejects(prep({ out: path.join(d, 'orig0'), inputs: original }), /lacks model columns source_ip, source_port, destination_ip, protocol/);
  const mo = await prep({ out: path.join(d, 'orig'), inputs: original, allowMissingFeatures: true });
  const mi = await prep({ out: path.join(d, 'imp'), inputs: improved });
  assert.deepEqual(mo.options.releases, ['cicids2017']);
  assert.deepEqual(mi.options.releases, ['cicids2017-improved']);
  assert.ok((mi.sources as { release: string }[]).every((s) => s.release === 'cicids2017-improved'));
  assert.equal(mo.accounting.data_rows + mi.accounting.data_rows, 88754 - 12000 - 6311);
  assert.equal(mi.accounting.data_rows, 40878);
  for (const m of [mo, mi]) {
    assert.equal(m.accounting.unaccounted, 0);
    assert.equal(m.accounting.rows_in_shards, m.accounting.data_rows);
  }
  const all = (m: typeof mo) => {
    const a = { ...m.splits.train.class_counts };
    for (const s of ['val', 'test'] as const) for (const [k, v] of Object.entries(m.splits[s].class_counts)) a[k] = (a[k] ?? 0) + v;
    return a;
  };
  const ao = all(mo);
  const ai = all(mi);
  // label spellings of four layouts reach the same classes
  assert.equal(ao.XSS, 1 + 652);
  assert.deepEqual([ao.SQLInjection, ai.SQLInjection], [21, 13]);
  assert.deepEqual([ao.BruteForce, ai.BruteForce], [6 + 1507, 73]);
  assert.deepEqual([ao.PortScan, ai.PortScan], [688, 5000 + 2500]);
  assert.deepEqual([ao.DoSSlowloris, ai.DoSSlowloris], [22, 3859]);
  const q = mo.quality as Record<string, Record<string, number>>;
  assert.equal(q.infinities_replaced_at_scale.flow_bytes_per_s + q.infinities_replaced_at_scale.flow_packets_per_s > 0, true);
  assert.ok((q.ip as unknown as Record<string, Record<string, number>>).invalid.source_ip >= 7267, 'label-encoded IPs are counted as invalid');
  assert.ok(q.filled_missing_column.protocol > 0, 'the zero-filled columns are counted');
  // negative durations and header lengths of the real files are kept and counted (PROVENANCE.md lists them)
  const qi = mi.quality as Record<string, Record<string, number>>;
  assert.ok(q.negative_values.flow_duration >= 1 && qi.negative_values.fwd_header_length >= 1, JSON.stringify([q.negative_values, qi.negative_values]));
  for (const derived of files.filter((f) => /Derived-(Kaggle|WesternOC2)/.test(path.basename(f)))) {
    const r = cli(['prep', '--log-level', 'error', '--out', path.join(d, 'x'), '--allow-missing-features', derived]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown label "DoS": a merged label from a derived data set/);
    assert.equal(r.stderr.trim().split('\n').length, 2);
  }
});

test('releases are not mixed: one line naming files and releases, no output; --allow-mixed-releases is recorded', async (t) => {
  const files = realSamples();
  if (!files) return t.skip(NO_REAL_DATA);
  const d = tmpdir();
  const pick = [files.find((f) => /^TrafficLabelling__/.test(path.basename(f)))!, files.find((f) => /^Improved-.*SQL-Injection/.test(path.basename(f)))!];
  const out = path.join(d, 'mixed');
  const r = cli(['prep', '--out', out, ...pick]);
  assert.equal(r.status, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 2, r.stderr);
  assert.match(lines[0], /mix releases .*cicids2017: 1 file \(TrafficLabelling__.*cicids2017-improved: 1 file \(Improved-/);
  assert.match(lines[1], /--allow-mixed-releases/);
  assert.ok(!fs.existsSync(path.join(out, 'manifest.json')) && !fs.existsSync(path.join(out, 'train')), 'no output');
  const m = await prep({ out, inputs: pick, allowMixedReleases: true });
  assert.deepEqual(m.options.releases, ['cicids2017', 'cicids2017-improved']);
  assert.equal(m.options.allow_mixed_releases, true);
});

test('sanitize examples: the first five in input order with true lines, whichever threads noted them', async () => {
  const d = tmpdir();
  const src = synthFile(d, 'src.csv', { rows: 6000, seed: 13, quirks: false });
  const lines = fs.readFileSync(src, 'latin1').split('\n');
  // 8 text cells in Flow Bytes/s, spread over chunks parsed by different threads (inserted from the back)
  const at = [5600, 4800, 4000, 3300, 2600, 1900, 1200, 500];
  for (const i of at) lines.splice(i, 0, tlRow({ 20: 'oops' }));
  const f = writeCsv(d, 'bad.csv', Buffer.from(lines.join('\n'), 'latin1'));
  const want = at.slice().reverse().map((i, k) => i + k + 1).slice(0, 5); // 1-based lines after the inserts
  for (const [workers, mainParses] of [[0, false], [1, true], [2, false], [2, true]] as const) {
    const m = await prep({ out: path.join(d, `o${workers}${mainParses}`), inputs: [f], workers, mainParses, chunkBytes: 100_000 });
    const ex = (m.quality.examples as Record<string, { line: number; raw: string }[]>)['flow_bytes_per_s/text'];
    assert.deepEqual(ex.map((e) => e.line), want, `workers ${workers}, main parses ${mainParses}`);
    assert.ok(ex.every((e) => e.raw === 'oops' && !('task' in e)));
    assert.equal((m.quality.replaced_values as Record<string, number>)['flow_bytes_per_s.text'], 8);
  }
});

test('line numbers stay true when a file is parsed in chunks by several threads', async () => {
  const d = tmpdir();
  const src = synthFile(d, 'src.csv', { rows: 6000, seed: 12, quirks: false });
  const lines = fs.readFileSync(src, 'latin1').split('\n');
  // inserted from the back: '1,2,3' ends at line 4503, text in Flow Bytes/s at lines 3301 and 4002
  // (far from the first chunk; with 100 kB chunks they fall in chunks 14, 17 and 19: with one worker
  // and the main thread taking every other chunk, 14 is the worker's, 17 and 19 the main thread's)
  lines.splice(4500, 0, '1,2,3');
  lines.splice(4000, 0, tlRow({ 20: 'oops' }));
  lines.splice(3300, 0, tlRow({ 20: 'oops' }));
  const f = writeCsv(d, 'bad.csv', Buffer.from(lines.join('\n'), 'latin1'));
  for (const [workers, mainParses] of [[0, false], [2, false], [1, true]] as const) {
    const out = path.join(d, `o${workers}${mainParses}`);
    const m = await prep({ out, inputs: [f], workers, mainParses, chunkBytes: 100_000 });
    const rej = fs.readFileSync(path.join(out, 'rejects.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(rej.map((r) => [r.line, r.reason]), [[4503, 'field_count']], `workers ${workers}`);
    // a sanitize quarantine (text -> quarantine) keeps its true line too, whichever thread parsed it
    const q = path.join(d, `q${workers}${mainParses}`);
    await prep({ out: q, inputs: [f], workers, mainParses, chunkBytes: 100_000, sanitize: { text: 'quarantine' } });
    const rq = fs.readFileSync(path.join(q, 'rejects.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(rq.map((r) => [r.line, r.reason]).sort(), [[3301, 'text_value'], [4002, 'text_value'], [4503, 'field_count']].sort(), `workers ${workers} (sanitize)`);
    const ex = (m.quality.examples as Record<string, { line: number }[]>)['flow_bytes_per_s/text'];
    assert.deepEqual(ex.map((e) => e.line), [3301, 4002], `workers ${workers}`);
  }
});

test('tasks claimed as they come: the main thread parsing tasks ahead of their turn (a slow worker) changes nothing in the output', async () => {
  const d = tmpdir();
  const src = synthFile(d, 'src.csv', { rows: 6000, seed: 14 });
  const lines = fs.readFileSync(src, 'latin1').split('\n');
  lines.splice(4500, 0, '1,2,3');
  lines.splice(4000, 0, tlRow({ 20: 'oops' }));
  lines.splice(1300, 0, tlRow({ 20: 'oops' }));
  const f = writeCsv(d, 'bad.csv', Buffer.from(lines.join('\n'), 'latin1'));
  const files = (dir: string) => fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name))).sort();
  const snapshot = (dir: string) => files(dir).map((n) => [n, fs.readFileSync(path.join(dir, n)).toString('base64')]);
  const ref = path.join(d, 'ref');
  await prep({ out: ref, inputs: [f], workers: 0, chunkBytes: 100_000, shardRows: 1500, sanitize: { text: 'quarantine' } });
  const logged: Record<string, unknown>[] = [];
  const { default: pino } = await import('pino');
  const logger = pino({ level: 'info' }, { write: (s: string) => void logged.push(JSON.parse(s)) });
  const out = path.join(d, 'slow');
  await prep({ out, inputs: [f], workers: 1, mainParses: true, chunkBytes: 100_000, shardRows: 1500, sanitize: { text: 'quarantine' }, testWorkerDelayMs: 60, logger });
  const share = logged.find((l) => l.msg === 'tasks parsed') as { tasks: number; main_thread: number; main_thread_ahead: number } | undefined;
  assert.ok(share, 'the share is logged');
  assert.ok(share.main_thread_ahead > 0 && share.main_thread < share.tasks, `main thread took ${share.main_thread} of ${share.tasks} tasks, ${share.main_thread_ahead} ahead`);
  assert.deepEqual(snapshot(out), snapshot(ref));
  const rej = fs.readFileSync(path.join(out, 'rejects.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(rej.map((r) => [r.line, r.reason]), [[1301, 'text_value'], [4002, 'text_value'], [4503, 'field_count']]);
});

test('claims: a gzip file (one task of unknown size) is never parsed ahead; with --strict the first bad row in input order is the error, on its line in the file', async () => {
  const d = tmpdir();
  const { default: pino } = await import('pino');
  const zlib = await import('node:zlib');
  // a plain file cut into chunks, then a gzip file: with a slow worker the main thread parses ahead, but not the gzip file
  const a = synthFile(d, 'a.csv', { rows: 6000, seed: 21, quirks: false });
  const b = synthFile(d, 'b.csv', { rows: 3000, seed: 22, quirks: false });
  const gz = path.join(d, 'c.csv.gz');
  fs.writeFileSync(gz, zlib.gzipSync(fs.readFileSync(b)));
  fs.rmSync(b);
  const logged: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (x: string) => void logged.push(JSON.parse(x)) });
  await prep({ out: path.join(d, 'o'), inputs: [a, gz], workers: 1, mainParses: true, chunkBytes: 100_000, testWorkerDelayMs: 60, logger });
  const share = logged.find((l) => l.msg === 'tasks parsed') as { tasks: number; ahead_tasks: number[] };
  assert.ok(share.ahead_tasks.length > 0, 'the main thread parsed ahead');
  assert.ok(!share.ahead_tasks.includes(share.tasks - 1), `the gzip file (task ${share.tasks - 1}) was parsed ahead: ${share.ahead_tasks}`);
  // --strict: bad rows (3, 4, 5 … fields) every 100 lines from line 4000 of a chunked file
  const lines = fs.readFileSync(a, 'latin1').split('\n');
  for (let k = 9; k >= 0; k--) lines.splice(3999 + 100 * k, 0, Array.from({ length: 3 + k }, (_, i) => String(i)).join(','));
  const bad = writeCsv(d, 'bad.csv', Buffer.from(lines.join('\n'), 'latin1'));
  const errs = new Set<string>();
  for (const [workers, delay] of [[0, 0], [1, 0], [1, 40], [1, 40]] as const) {
    await assert.rejects(prep({ out: path.join(d, `s${workers}${delay}${errs.size}`), inputs: [bad], workers, mainParses: true, chunkBytes: 100_000, strict: true, testWorkerDelayMs: delay }), (e: Error) => {
      errs.add(e.message);
      return true;
    });
  }
  assert.deepEqual([...errs], [`${bad}:4000: 3 fields where the header has 85`]);
});
