// The scaler's WebAssembly kernel (src/kernels/scalewat.ts) against JavaScript: its log1p has
// Math.log1p's bits, applyScaler gives a plain loop's bits, pack gives the JavaScript packing's rows
// and fingerprints, and prep writes the same bytes with the
// kernel and with FLOWTENSOR_SCALE_KERNEL=js (pass 1's train statistics and pass 2's scaling).
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ScaleKernel } from '../src/kernels/scalekern.js';
import { applyScaler, fitScaler, slog1p } from '../stages/scale.js';
import type { ScalerStats } from '../src/manifest.js';
import { Moments } from '../src/moments.js';
import { columnsOf, rowHashes, toRowMajor } from '../stages/split.js';
import type { Batch } from '../src/batch.js';
import { cli, synthFile, tmpdir } from './helpers.js';

/** A deterministic stream of numbers (xorshift). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

test('scale kernel: slog1p has Math.log1p\'s bits (random float32 bit patterns, whole numbers, ±0, subnormals, extremes), with and without the table', () => {
  const k = ScaleKernel.get();
  assert.ok(k, 'the kernel loads here');
  const u = new Uint32Array(1);
  const f = new Float32Array(u.buffer);
  const r = rng(7);
  const values: number[] = [0, -0, 1, -1, 65535, 65536, -65535, 65535.5, 2 ** 53, 3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -1e-45, 1.1754942106924411e-38, 2 ** -29, 2 ** -54, 0.41421356, 0.4142135623730950, -0.2928932];
  for (let i = 0; i < 400_000; i++) {
    u[0] = Math.floor(r() * 2 ** 32);
    if (Number.isFinite(f[0])) values.push(f[0]);
  }
  for (let i = -70_000; i <= 70_000; i++) values.push(i, i + 0.5);
  for (let i = 0; i < 100_000; i++) values.push((r() - 0.5) * 10 ** (r() * 40 - 20)); // doubles
  let bad = 0;
  for (const v of values) {
    const want = slog1p(v);
    if (!Object.is(k.slog1p(v), want) || !Object.is(k.slog1p(v, true), want)) {
      if (bad++ < 5) assert.fail(`slog1p(${v}): kernel ${k.slog1p(v)} / table ${k.slog1p(v, true)}, Math.log1p ${want}`);
    }
  }
  assert.equal(bad, 0);
});

/** applyScaler written out plainly: one value at a time, no caches, no blocks. */
function reference(x: Float32Array, F: number, sc: ScalerStats, features: string[]): { clipped: Record<string, number>; inf: Record<string, number> } {
  const clipped: Record<string, number> = {};
  const inf: Record<string, number> = {};
  const logSet = new Set(sc.log1p);
  for (let i = 0; i < x.length; i++) {
    const f = i % F;
    const name = features[f];
    let v = x[i] + 0; // -0 scales as 0
    if (!Number.isFinite(v)) {
      inf[name] = (inf[name] ?? 0) + 1;
      v = v > 0 ? (sc.posinf[f] === 'zero' ? 0 : sc.posinf[f] === 'train_min' ? sc.min[f] : sc.max[f]) : v < 0 ? (sc.neginf[f] === 'zero' ? 0 : sc.neginf[f] === 'train_max' ? sc.max[f] : sc.min[f]) : 0;
    }
    const t = logSet.has(name) ? slog1p(v) : v;
    let y = (t - sc.center![f]) * (1 / sc.scale![f]);
    let c = false;
    if (sc.clip) {
      if (y < sc.y_min![f]) (y = sc.y_min![f]), (c = true);
      else if (y > sc.y_max![f]) (y = sc.y_max![f]), (c = true);
    } else if (!(Math.abs(y) <= 3.4028234663852886e38)) (y = y > 0 ? 3.4028234663852886e38 : -3.4028234663852886e38), (c = true);
    if (c) clipped[name] = (clipped[name] ?? 0) + 1;
    x[i] = y;
  }
  return { clipped, inf };
}

test('scale kernel: applyScaler gives a plain loop\'s bits and counts (every method, clip or not, NaN, ±Infinity, -0, odd row counts, repeats)', () => {
  const r = rng(11);
  for (const method of ['log-standard', 'log-minmax', 'minmax'] as const) {
    for (const clip of [true, false]) {
      for (const [F, n] of [[1, 1], [3, 257], [7, 1000], [33, 4099]]) {
        const features = Array.from({ length: F }, (_, i) => `f${i}`);
        const train = new Float32Array(200 * F).map(() => (r() < 0.5 ? Math.floor(r() * 300) : (r() - 0.3) * 1e6));
        const min = features.map((_, f) => Math.min(...Array.from({ length: 200 }, (_, i) => train[i * F + f])));
        const max = features.map((_, f) => Math.max(...Array.from({ length: 200 }, (_, i) => train[i * F + f])));
        const logs = method === 'minmax' ? features.filter((_, f) => f % 2 === 1) : features;
        let moments;
        if (method === 'log-standard') {
          // the moments of slog1p over train, as pass 1 adds them
          const m = new Moments(F);
          for (let i = 0; i < 200; i++) {
            for (let f = 0; f < F; f++) m.add(f, slog1p(train[i * F + f]));
            m.endRow();
          }
          moments = m.toJSON();
        }
        const sc = fitScaler(features, min, max, { log1p: logs, clip, posinf: features.map((_, f) => (f % 3 === 0 ? 'zero' : 'train_max')), neginf: features.map((_, f) => (f % 3 === 1 ? 'train_max' : 'train_min')), method, moments });
        const x = new Float32Array(n * F).map(() => {
          const p = r();
          if (p < 0.08) return r() < 0.5 ? 0 : -0; // runs of zeros of both signs
          if (p < 0.3) return Math.floor(r() * 300) * (r() < 0.1 ? -1 : 1);
          if (p < 0.35) return [NaN, Infinity, -Infinity, -0, 0][Math.floor(r() * 5)];
          if (p < 0.5) return 7; // repeats
          return (r() - 0.3) * 2e6;
        });
        const want = Float32Array.from(x);
        const ref = reference(want, F, sc, features);
        const counts = { clipped: {} as Record<string, number>, inf: {} as Record<string, number> };
        applyScaler(x, F, sc, counts, features);
        const wb = new Uint32Array(want.buffer);
        const xb = new Uint32Array(x.buffer);
        for (let i = 0; i < x.length; i++) if (wb[i] !== xb[i]) assert.fail(`${method} clip=${clip} F=${F} n=${n}: value ${i} is ${x[i]}, a plain loop gives ${want[i]}`);
        assert.deepEqual(counts.clipped, ref.clipped, `${method} clip=${clip} F=${F}: clipped counts`);
        assert.deepEqual(counts.inf, ref.inf, `${method} clip=${clip} F=${F}: infinity counts`);
      }
    }
  }
});

test('prep writes the same bytes with the scale kernel and with FLOWTENSOR_SCALE_KERNEL=js (train statistics, moments, scaled shards); a wrong value is one line, exit 2', () => {
  const d = tmpdir();
  const a = synthFile(d, 'a.csv', { rows: 6000, seed: 3, ipv6: 0.05 });
  const b = synthFile(d, 'b.csv', { rows: 3000, seed: 4, layout: 'improved' });
  const digest = (dir: string) =>
    fs
      .readdirSync(dir, { recursive: true })
      .map(String)
      .filter((f) => fs.statSync(path.join(dir, f)).isFile())
      .sort()
      .map((f) => `${f} ${fs.readFileSync(path.join(dir, f)).toString('base64')}`);
  // -0 cells among the zeros (a 0 before a -0 in a feature whose center is 0 once gave the two paths
  // different signs: the JavaScript reused the 0's result)
  let k = 0;
  const z = path.join(d, 'negzero.csv');
  fs.writeFileSync(z, fs.readFileSync(a, 'utf8').replace(/,0(?=,)/g, (m) => (k++ % 3 === 1 ? ',-0' : k % 7 === 0 ? ',-0.0' : m)));
  for (const [name, args] of [['tl', [a]], ['imp', [b]], ['minmax', ['--scaler', 'minmax', '--log1p', a]], ['dedupe', ['--dedupe', '--drop-identifiers', a]], ['negzero', [z]], ['negzero-minmax', ['--scaler', 'minmax', z]]] as const) {
    const runs = ['wasm', 'js'].map((mode) => {
      const out = path.join(d, `${name}-${mode}`);
      const r = cli(['prep', '-q', '--out', out, ...args], { env: { FLOWTENSOR_SCALE_KERNEL: mode } });
      assert.equal(r.status, 0, r.stderr);
      return digest(out);
    });
    assert.deepEqual(runs[0], runs[1], `${name}: the kernel and JavaScript differ`);
  }
  const bad = cli(['prep', '-q', '--out', path.join(d, 'x'), a], { env: { FLOWTENSOR_SCALE_KERNEL: 'simd' } });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /FLOWTENSOR_SCALE_KERNEL/);
  assert.equal(bad.stderr.trim().split('\n').filter((l) => l.startsWith('flowtensor:')).length, 1);
});

test('scale kernel: pack gives toRowMajor\'s rows and rowHashes\' fingerprints, bit for bit (-0, NaN, ±Infinity, row counts not a multiple of 4)', () => {
  const k = ScaleKernel.get()!;
  const r = rng(5);
  for (const [F, n] of [[1, 1], [2, 3], [3, 5], [7, 4], [33, 2048], [62, 1001]]) {
    const names = Array.from({ length: F }, (_, i) => `c${i}`);
    // columns longer than n (a parser's batch arrays are): only the first n rows count
    const num = new Map(
      names.map((nm) => [
        nm,
        Float64Array.from({ length: n + 7 }, () => {
          const p = r();
          return p < 0.1 ? -0 : p < 0.13 ? NaN : p < 0.16 ? Infinity : p < 0.19 ? -Infinity : p < 0.5 ? Math.floor(r() * 100) : (r() - 0.5) * 1e9 * r();
        }),
      ]),
    );
    const label = Int32Array.from({ length: n }, () => Math.floor(r() * 15));
    const b = { n, num, file: 'x.csv' } as unknown as Batch;
    const want = toRowMajor(b, names);
    const wantHash = rowHashes(want, F, n, label);
    const x = new Float32Array(n * F);
    const hash = new Uint32Array(2 * n);
    k.pack(columnsOf(b, names), label, n, x, hash);
    assert.deepEqual(new Uint32Array(x.buffer), new Uint32Array(want.buffer), `F=${F} n=${n}: rows`);
    assert.deepEqual(hash, wantHash, `F=${F} n=${n}: fingerprints`);
  }
});
