// The rows' kernel in WebAssembly text, compiled to dist/src/kernels/scale.wasm by `npm run build`
// (src/kernels/build.ts). Used by src/kernels/scalekern.ts for stages/scale.ts applyScaler (pass 2,
// predict), for the train statistics of pass 1 (stages/shard.ts) and for packing parsed columns into
// rows with their fingerprints (src/prepfile.ts pack).
//
// log1p: the algorithm of fdlibm's s_log1p.c (Sun Microsystems, 1993, freely redistributable), which
// V8's Math.log1p runs (src/base/ieee754.cc), for x >= 0 and -0: the same argument reduction, the same
// correction term and the same polynomial, evaluated in the same order, so every result has the same
// bits as Math.log1p. Checked for all 2,139,095,040 non-negative finite float32 values (the only
// inputs it gets: shards hold float32) and on random doubles in the tests.
//
// Memory: per feature a record of REC bytes at PARAMS (f64 slots, below), the table of logs, a block's
// scratch, then the rows at DATA_AT.
//
// scale(x, n, F, clip): rows [0, n) of the row-major f32 matrix at x with F features, scaled in place
// as applyScaler's JavaScript loop does, with the same bits: a block of BLOCK rows at a time, within it
// a feature at a time; -0 read as 0; ±Infinity and NaN replaced (counted); slog1p where the feature asks for it;
// y = (t - center) * inv; clipped to [lo, hi] (counted) or, unclipped, held within float32's range.
// The counts add up in the records from call to call.
//
// train(x, rows, k, F, mom): pass 1's train statistics over k <= BLOCK_MAX rows of the f32 matrix at x
// whose row offsets (in values, i32) are at `rows`: per feature the min and max of the finite values
// (compared in row order, so -0 and 0 come out as a row-by-row loop gives), their count and, when mom,
// the sums of round(t * ONE) and round(t * t * ONE), t = slog1p(v) (Math.round: half up), in row
// order as exact f64 integers (src/moments.ts keeps them below 2^53).
//
// pack(cols, stride, lab, n, F, xo, ho): the columns (f64) as a row-major f32 matrix and each row's
// fingerprint, src/hash.ts rowHash32's arithmetic on four rows at once (i32x4 lanes).
//
// rows(src, idx, k, bytes, dst): k rows of `bytes` bytes, the r-th at src + 4 · idx[r] (value offsets,
// i32), copied one after another to dst (pass 1 gathers a batch's rows of one split into its block).
//
// scale and train take each block's logs in two loops ($slog_block): the table, or a list of the values to pass
// to log1p; the loops have no branch that depends on the data (V8 compiles an f64 select and a
// value-dependent `if` to branches, which mispredict on these mixed columns: 19 ns a value before).

/** Bytes per feature record and its f64 slots. */
export const REC = 128;
export const SLOT = {
  // scale: in
  center: 0, inv: 1, lo: 2, hi: 3, posRep: 4, negRep: 5, useLog: 6,
  // scale: out (added to)
  clipped: 11, inf: 12,
  // train: min and max in and out; one in; count and sums out
  min: 2, max: 3, count: 11, s1: 12, s2: 13, one: 14,
} as const;
/** The records start here; room for FEATURES_MAX features; the rows start at DATA_AT. */
export const PARAMS = 0;
export const FEATURES_MAX = 4096;
/** log1p of the whole numbers below SMALL (f64), filled by init() with the kernel's own log1p. */
export const SMALL = 65536;
export const TABLE_AT = PARAMS + REC * FEATURES_MAX;
/** Scratch of one block's values of a feature: their f64 values, their logs, the rows listed for log1p. */
export const BLOCK_MAX = 4096;
export const SCR_V = TABLE_AT + 8 * SMALL;
export const SCR_T = SCR_V + 8 * (BLOCK_MAX + 2); // V: room for a zero past an odd last value
export const SCR_L = SCR_T + 8 * (BLOCK_MAX + 2); // T: likewise
// (L: room for an odd block's last pair, whose second lane's row is written, never counted)
export const DATA_AT = SCR_L + 4 * (BLOCK_MAX + 2);
/** Rows per block of scale(), as applyScaler's SCALE_BLOCK. */
export const BLOCK = 256;

const F32_MAX = '3.4028234663852886e38';

export function scaleWat(): string {
  const l = (n: string) => `(local.get $${n})`;
  const slot = (s: number) => `offset=${8 * s}`;
  const hi32 = (x: string) => `(i32.wrap_i64 (i64.shr_u (i64.reinterpret_f64 ${x}) (i64.const 32)))`;
  /** x with its high word replaced by h (i32). */
  const withHi = (x: string, h: string) => `(f64.reinterpret_i64 (i64.or (i64.and (i64.reinterpret_f64 ${x}) (i64.const 0xffffffff)) (i64.shl (i64.extend_i32_u ${h}) (i64.const 32))))`;
  /**
   * Inline: local `out` = slog1p(local `v`) with the whole numbers below SMALL from the table (half
   * the values of a flow record: counts, flags, ports, sizes), the sign copied (so ±0 gives ±0, as
   * log1p(±0)). Uses $a and $i.
   */
  const slog = (v: string, out: string) => `(local.set $a (f64.abs ${l(v)}))
      ;; (no f64.trunc or f64.floor, and no f64 select: V8 runs the first as calls on some machines and
      ;; the second as a branch, which mispredicts on these mixed columns)
      (local.set $i (i32.trunc_sat_f64_u ${l('a')}))
      (if (i32.and (f64.lt ${l('a')} (f64.const ${SMALL})) (f64.eq (f64.convert_i32_u ${l('i')}) ${l('a')}))
        (then (local.set $${out} (f64.copysign (f64.load offset=${TABLE_AT} (i32.shl ${l('i')} (i32.const 3))) ${l(v)})))
        (else (local.set $${out} (call $slog1p ${l(v)}))))`;
  return `(module
  (memory (export "memory") ${Math.ceil((DATA_AT + 65536) / 65536)})
  ;; log(1 + x) for x >= 0 (and -0), bit for bit as fdlibm's log1p
  (func $log1p (param $x f64) (result f64)
    (local $hx i32) (local $hu i32) (local $k i32) (local $f f64) (local $c f64) (local $u f64)
    (local $hfsq f64) (local $s f64) (local $z f64) (local $R f64) (local $dk f64)
    (local.set $hx ${hi32(l('x'))})
    (local.set $k (i32.const 1))
    (if (i32.lt_s ${l('hx')} (i32.const 0x3fda827a)) (then
      ;; |x| < 2^-29: x, or below 2^-54 x itself
      (if (i32.lt_s ${l('hx')} (i32.const 0x3e200000)) (then
        (if (i32.lt_s ${l('hx')} (i32.const 0x3c900000)) (then (return ${l('x')})))
        (return (f64.sub ${l('x')} (f64.mul (f64.mul ${l('x')} ${l('x')}) (f64.const 0.5))))))
      ;; 1 + x below sqrt(2): no reduction, f = x
      (local.set $k (i32.const 0))
      (local.set $f ${l('x')})
      (local.set $hu (i32.const 1))))
    (if (i32.ge_s ${l('hx')} (i32.const 0x7ff00000)) (then (return (f64.add ${l('x')} ${l('x')}))))
    (if ${l('k')} (then
      (if (i32.lt_s ${l('hx')} (i32.const 0x43400000))
        (then
          (local.set $u (f64.add (f64.const 1) ${l('x')}))
          (local.set $hu ${hi32(l('u'))})
          (local.set $k (i32.sub (i32.shr_s ${l('hu')} (i32.const 20)) (i32.const 1023)))
          ;; the correction term of 1 + x's rounding
          (local.set $c (select
            (f64.sub (f64.const 1) (f64.sub ${l('u')} ${l('x')}))
            (f64.sub ${l('x')} (f64.sub ${l('u')} (f64.const 1)))
            (i32.gt_s ${l('k')} (i32.const 0))))
          (local.set $c (f64.div ${l('c')} ${l('u')})))
        (else
          (local.set $u ${l('x')})
          (local.set $hu ${l('hx')})
          (local.set $k (i32.sub (i32.shr_s ${l('hu')} (i32.const 20)) (i32.const 1023)))
          (local.set $c (f64.const 0))))
      (local.set $hu (i32.and ${l('hu')} (i32.const 0x000fffff)))
      (if (i32.lt_s ${l('hu')} (i32.const 0x6a09e))
        (then (local.set $u ${withHi(l('u'), `(i32.or ${l('hu')} (i32.const 0x3ff00000))`)}))
        (else
          (local.set $k (i32.add ${l('k')} (i32.const 1)))
          (local.set $u ${withHi(l('u'), `(i32.or ${l('hu')} (i32.const 0x3fe00000))`)})
          (local.set $hu (i32.shr_s (i32.sub (i32.const 0x00100000) ${l('hu')}) (i32.const 2)))))
      (local.set $f (f64.sub ${l('u')} (f64.const 1)))))
    (local.set $hfsq (f64.mul (f64.mul (f64.const 0.5) ${l('f')}) ${l('f')}))
    (local.set $dk (f64.convert_i32_s ${l('k')}))
    (if (i32.eqz ${l('hu')}) (then
      ;; |f| < 2^-20
      (if (f64.eq ${l('f')} (f64.const 0)) (then
        (if (i32.eqz ${l('k')}) (then (return (f64.const 0))))
        (return (f64.add (f64.mul ${l('dk')} (f64.const 6.93147180369123816490e-01)) (f64.add ${l('c')} (f64.mul ${l('dk')} (f64.const 1.90821492927058770002e-10)))))))
      (local.set $R (f64.mul ${l('hfsq')} (f64.sub (f64.const 1) (f64.mul (f64.const 0.66666666666666666) ${l('f')}))))
      (if (i32.eqz ${l('k')}) (then (return (f64.sub ${l('f')} ${l('R')}))))
      (return (f64.sub (f64.mul ${l('dk')} (f64.const 6.93147180369123816490e-01))
        (f64.sub (f64.sub ${l('R')} (f64.add (f64.mul ${l('dk')} (f64.const 1.90821492927058770002e-10)) ${l('c')})) ${l('f')})))))
    (local.set $s (f64.div ${l('f')} (f64.add (f64.const 2) ${l('f')})))
    (local.set $z (f64.mul ${l('s')} ${l('s')}))
    (local.set $R (f64.mul ${l('z')}
      (f64.add (f64.const 6.666666666666735130e-01) (f64.mul ${l('z')}
      (f64.add (f64.const 3.999999999940941908e-01) (f64.mul ${l('z')}
      (f64.add (f64.const 2.857142874366239149e-01) (f64.mul ${l('z')}
      (f64.add (f64.const 2.222219843214978396e-01) (f64.mul ${l('z')}
      (f64.add (f64.const 1.818357216161805012e-01) (f64.mul ${l('z')}
      (f64.add (f64.const 1.531383769920937332e-01) (f64.mul ${l('z')} (f64.const 1.479819860511658591e-01)))))))))))))))
    (if (i32.eqz ${l('k')}) (then
      (return (f64.sub ${l('f')} (f64.sub ${l('hfsq')} (f64.mul ${l('s')} (f64.add ${l('hfsq')} ${l('R')})))))))
    (f64.sub (f64.mul ${l('dk')} (f64.const 6.93147180369123816490e-01))
      (f64.sub (f64.sub ${l('hfsq')} (f64.add (f64.mul ${l('s')} (f64.add ${l('hfsq')} ${l('R')})) (f64.add (f64.mul ${l('dk')} (f64.const 1.90821492927058770002e-10)) ${l('c')}))) ${l('f')})))
  ;; the signed log1p of stages/scale.ts: -log1p(-x) below 0
  (func $slog1p (export "slog1p") (param $x f64) (result f64)
    (if (result f64) (f64.lt ${l('x')} (f64.const 0))
      (then (f64.neg (call $log1p (f64.neg ${l('x')}))))
      (else (call $log1p ${l('x')}))))
  (func (export "init")
    (local $i i32)
    (block $done (loop $fill
      (br_if $done (i32.ge_u ${l('i')} (i32.const ${SMALL})))
      (f64.store offset=${TABLE_AT} (i32.shl ${l('i')} (i32.const 3)) (call $log1p (f64.convert_i32_u ${l('i')})))
      (local.set $i (i32.add ${l('i')} (i32.const 1)))
      (br $fill))))
  (func (export "slogFast") (param $v f64) (result f64) (local $a f64) (local $i i32) (local $t f64)
    ${slog('v', 't')}
    ${l('t')})
  ;; A block's values of one feature: $slog_block turns V[0..k) (f64 at SCR_V) into T[r] = slog1p(V[r])
  ;; (f64 at SCR_T) in two loops without a data-dependent branch in the first: whole numbers below
  ;; SMALL from the table, the others (finite ones only) listed at SCR_L and computed in the second
  ;; (whose calls then follow each other: no mispredicted branch per value). Non-finite: T = ±0.
  (func $slog_block (param $k i32)
    (local $r i32) (local $m i32) (local $i i32) (local $b i32)
    (local $v v128) (local $a v128) (local $small v128) (local $ix v128) (local $t v128)
    ;; an odd block's last pair reads one value past it: 0 (a table value, not listed)
    (f64.store offset=${SCR_V} (i32.shl ${l('k')} (i32.const 3)) (f64.const 0))
    (block $done (loop $each
      (br_if $done (i32.ge_u ${l('r')} ${l('k')}))
      (local.set $v (v128.load offset=${SCR_V} (i32.shl ${l('r')} (i32.const 3))))
      (local.set $a (f64x2.abs ${l('v')}))
      (local.set $small (v128.and (f64x2.lt ${l('a')} (f64x2.splat (f64.const ${SMALL}))) (f64x2.eq (f64x2.trunc ${l('a')}) ${l('a')})))
      ;; each lane's table index (0 where not in the table), in i32 lanes 0 and 1
      (local.set $ix (v128.and (i32x4.trunc_sat_f64x2_u_zero ${l('a')}) (i8x16.shuffle 0 1 2 3 8 9 10 11 0 1 2 3 0 1 2 3 ${l('small')} ${l('small')})))
      (local.set $t (f64x2.replace_lane 1
        (f64x2.splat (f64.load offset=${TABLE_AT} (i32.shl (i32x4.extract_lane 0 ${l('ix')}) (i32.const 3))))
        (f64.load offset=${TABLE_AT} (i32.shl (i32x4.extract_lane 1 ${l('ix')}) (i32.const 3)))))
      ;; the table's magnitude with the value's sign (so ±0 gives ±0)
      (v128.store offset=${SCR_T} (i32.shl ${l('r')} (i32.const 3)) (v128.bitselect ${l('v')} ${l('t')} (v128.const i64x2 0x8000000000000000 0x8000000000000000)))
      ;; listed when not in the table and finite (a finite value minus itself is 0)
      (local.set $b (i64x2.bitmask (v128.andnot (f64x2.eq (f64x2.sub ${l('v')} ${l('v')}) (f64x2.splat (f64.const 0))) ${l('small')})))
      (i32.store offset=${SCR_L} (i32.shl ${l('m')} (i32.const 2)) ${l('r')})
      (local.set $m (i32.add ${l('m')} (i32.and ${l('b')} (i32.const 1))))
      (i32.store offset=${SCR_L} (i32.shl ${l('m')} (i32.const 2)) (i32.add ${l('r')} (i32.const 1)))
      (local.set $m (i32.add ${l('m')} (i32.shr_u ${l('b')} (i32.const 1))))
      (local.set $r (i32.add ${l('r')} (i32.const 2)))
      (br $each)))
    (block $done2 (loop $listed
      (br_if $done2 (i32.ge_u ${l('i')} ${l('m')}))
      (local.set $r (i32.shl (i32.load offset=${SCR_L} (i32.shl ${l('i')} (i32.const 2))) (i32.const 3)))
      (f64.store offset=${SCR_T} ${l('r')} (call $slog1p (f64.load offset=${SCR_V} ${l('r')})))
      (local.set $i (i32.add ${l('i')} (i32.const 1)))
      (br $listed))))
  (func (export "scale") (param $x i32) (param $n i32) (param $F i32) (param $clip i32)
    (local $i0 i32) (local $k i32) (local $f i32) (local $p i32) (local $o i32) (local $r i32) (local $stride i32)
    (local $v f64) (local $y f64) (local $c0 f64) (local $kk f64) (local $lo f64) (local $hi f64)
    (local $nClip i32) (local $nInf i32) (local $log i32) (local $c i32)
    (local.set $stride (i32.shl ${l('F')} (i32.const 2)))
    (block $blocks_done (loop $blocks
      (br_if $blocks_done (i32.ge_u ${l('i0')} ${l('n')}))
      (local.set $k (select (i32.const ${BLOCK}) (i32.sub ${l('n')} ${l('i0')}) (i32.lt_u (i32.add ${l('i0')} (i32.const ${BLOCK})) ${l('n')})))
      (local.set $f (i32.const 0))
      (block $feats_done (loop $feats
        (br_if $feats_done (i32.ge_u ${l('f')} ${l('F')}))
        (local.set $p (i32.add (i32.const ${PARAMS}) (i32.mul ${l('f')} (i32.const ${REC}))))
        (local.set $c0 (f64.load ${slot(SLOT.center)} ${l('p')}))
        (local.set $kk (f64.load ${slot(SLOT.inv)} ${l('p')}))
        (local.set $lo (f64.load ${slot(SLOT.lo)} ${l('p')}))
        (local.set $hi (f64.load ${slot(SLOT.hi)} ${l('p')}))
        (local.set $log (f64.ne (f64.load ${slot(SLOT.useLog)} ${l('p')}) (f64.const 0)))
        (local.set $nClip (i32.const 0))
        (local.set $nInf (i32.const 0))
        (local.set $o (i32.add ${l('x')} (i32.shl (i32.add (i32.mul ${l('i0')} ${l('F')}) ${l('f')}) (i32.const 2))))
        ;; the values, ±Infinity and NaN replaced (counted)
        (local.set $r (i32.const 0))
        (block $in_done (loop $in
          (br_if $in_done (i32.ge_u ${l('r')} ${l('k')}))
          ;; -0 scales as 0 (+ 0 turns -0 into 0 and leaves every other value as it is)
          (local.set $v (f64.add (f64.promote_f32 (f32.load (i32.add ${l('o')} (i32.mul ${l('r')} ${l('stride')})))) (f64.const 0)))
          (if (f64.ne (f64.sub ${l('v')} ${l('v')}) (f64.const 0)) (then
            (local.set $nInf (i32.add ${l('nInf')} (i32.const 1)))
            (local.set $v (if (result f64) (f64.gt ${l('v')} (f64.const 0)) (then (f64.load ${slot(SLOT.posRep)} ${l('p')}))
              (else (if (result f64) (f64.lt ${l('v')} (f64.const 0)) (then (f64.load ${slot(SLOT.negRep)} ${l('p')})) (else (f64.const 0))))))))
          (f64.store offset=${SCR_V} (i32.shl ${l('r')} (i32.const 3)) ${l('v')})
          (local.set $r (i32.add ${l('r')} (i32.const 1)))
          (br $in)))
        (if ${l('log')}
          (then (call $slog_block ${l('k')}))
          (else (memory.copy (i32.const ${SCR_T}) (i32.const ${SCR_V}) (i32.shl ${l('k')} (i32.const 3)))))
        ;; y = (t - center) * inv, clipped (counted), stored as float32
        (local.set $r (i32.const 0))
        (block $out_done (loop $out
          (br_if $out_done (i32.ge_u ${l('r')} ${l('k')}))
          (local.set $y (f64.mul (f64.sub (f64.load offset=${SCR_T} (i32.shl ${l('r')} (i32.const 3))) ${l('c0')}) ${l('kk')}))
          (local.set $c (i32.const 0))
          (if ${l('clip')}
            (then
              (if (f64.lt ${l('y')} ${l('lo')})
                (then (local.set $y ${l('lo')}) (local.set $c (i32.const 1)))
                (else (if (f64.gt ${l('y')} ${l('hi')}) (then (local.set $y ${l('hi')}) (local.set $c (i32.const 1)))))))
            (else
              ;; unclipped, a value far outside the train range can pass float32's range: never an Infinity in a shard
              (if (i32.eqz (f64.le (f64.abs ${l('y')}) (f64.const ${F32_MAX}))) (then
                (local.set $y (if (result f64) (f64.gt ${l('y')} (f64.const 0)) (then (f64.const ${F32_MAX})) (else (f64.const -${F32_MAX}))))
                (local.set $c (i32.const 1))))))
          (local.set $nClip (i32.add ${l('nClip')} ${l('c')}))
          (f32.store (i32.add ${l('o')} (i32.mul ${l('r')} ${l('stride')})) (f32.demote_f64 ${l('y')}))
          (local.set $r (i32.add ${l('r')} (i32.const 1)))
          (br $out)))
        (f64.store ${slot(SLOT.clipped)} ${l('p')} (f64.add (f64.load ${slot(SLOT.clipped)} ${l('p')}) (f64.convert_i32_u ${l('nClip')})))
        (f64.store ${slot(SLOT.inf)} ${l('p')} (f64.add (f64.load ${slot(SLOT.inf)} ${l('p')}) (f64.convert_i32_u ${l('nInf')})))
        (local.set $f (i32.add ${l('f')} (i32.const 1)))
        (br $feats)))
      (local.set $i0 (i32.add ${l('i0')} ${l('k')}))
      (br $blocks))))
  (func (export "train") (param $x i32) (param $rows i32) (param $k i32) (param $F i32) (param $mom i32)
    (local $f i32) (local $p i32) (local $r i32) (local $count i32)
    (local $v f64) (local $lo f64) (local $hi f64) (local $s1 f64) (local $s2 f64) (local $one f64)
    (local $acc1 v128) (local $acc2 v128) (local $onev v128) (local $tv v128) (local $av v128) (local $fv v128)
    (block $feats_done (loop $feats
      (br_if $feats_done (i32.ge_u ${l('f')} ${l('F')}))
      (local.set $p (i32.add (i32.const ${PARAMS}) (i32.mul ${l('f')} (i32.const ${REC}))))
      (local.set $lo (f64.load ${slot(SLOT.min)} ${l('p')}))
      (local.set $hi (f64.load ${slot(SLOT.max)} ${l('p')}))
      (local.set $one (f64.load ${slot(SLOT.one)} ${l('p')}))
      (local.set $count (i32.const 0))
      ;; min and max of the finite values, in row order; the values gathered for the logs
      (local.set $r (i32.const 0))
      (block $rows_done (loop $rows
        (br_if $rows_done (i32.ge_u ${l('r')} ${l('k')}))
        (local.set $v (f64.promote_f32 (f32.load (i32.add ${l('x')} (i32.shl (i32.add (i32.load (i32.add ${l('rows')} (i32.shl ${l('r')} (i32.const 2)))) ${l('f')}) (i32.const 2))))))
        (f64.store offset=${SCR_V} (i32.shl ${l('r')} (i32.const 3)) ${l('v')})
        (local.set $r (i32.add ${l('r')} (i32.const 1)))
        (br_if $rows (f64.ne (f64.sub ${l('v')} ${l('v')}) (f64.const 0)))
        (local.set $count (i32.add ${l('count')} (i32.const 1)))
        (if (f64.lt ${l('v')} ${l('lo')}) (then (local.set $lo ${l('v')})))
        (if (f64.gt ${l('v')} ${l('hi')}) (then (local.set $hi ${l('v')})))
        (br $rows)))
      (f64.store ${slot(SLOT.min)} ${l('p')} ${l('lo')})
      (f64.store ${slot(SLOT.max)} ${l('p')} ${l('hi')})
      (f64.store ${slot(SLOT.count)} ${l('p')} (f64.convert_i32_u ${l('count')}))
      (if ${l('mom')} (then
        ;; the fixed-point terms summed in row order; a non-finite value's T is ±0: it adds +0
        (call $slog_block ${l('k')})
        ;; two values at a time: Math.round(a) = floor(a) + (a - floor(a) >= 0.5), every term and partial
        ;; sum an exact integer, so the lanes' sums add up to the row-by-row sum; an odd last value's
        ;; T is set to 0 (adds 0)
        (f64.store offset=${SCR_T} (i32.shl ${l('k')} (i32.const 3)) (f64.const 0))
        (local.set $acc1 (f64x2.splat (f64.const 0)))
        (local.set $acc2 (f64x2.splat (f64.const 0)))
        (local.set $onev (f64x2.splat ${l('one')}))
        (local.set $r (i32.const 0))
        (block $sums_done (loop $sums
          (br_if $sums_done (i32.ge_u ${l('r')} ${l('k')}))
          (local.set $tv (v128.load offset=${SCR_T} (i32.shl ${l('r')} (i32.const 3))))
          (local.set $av (f64x2.mul ${l('tv')} ${l('onev')}))
          (local.set $fv (f64x2.floor ${l('av')}))
          (local.set $acc1 (f64x2.add ${l('acc1')} (f64x2.add ${l('fv')}
            (v128.and (f64x2.ge (f64x2.sub ${l('av')} ${l('fv')}) (f64x2.splat (f64.const 0.5))) (f64x2.splat (f64.const 1))))))
          (local.set $av (f64x2.mul (f64x2.mul ${l('tv')} ${l('tv')}) ${l('onev')}))
          (local.set $fv (f64x2.floor ${l('av')}))
          (local.set $acc2 (f64x2.add ${l('acc2')} (f64x2.add ${l('fv')}
            (v128.and (f64x2.ge (f64x2.sub ${l('av')} ${l('fv')}) (f64x2.splat (f64.const 0.5))) (f64x2.splat (f64.const 1))))))
          (local.set $r (i32.add ${l('r')} (i32.const 2)))
          (br $sums)))
        (local.set $s1 (f64.add (f64x2.extract_lane 0 ${l('acc1')}) (f64x2.extract_lane 1 ${l('acc1')})))
        (local.set $s2 (f64.add (f64x2.extract_lane 0 ${l('acc2')}) (f64x2.extract_lane 1 ${l('acc2')})))
        (f64.store ${slot(SLOT.s1)} ${l('p')} ${l('s1')})
        (f64.store ${slot(SLOT.s2)} ${l('p')} ${l('s2')})))
      (local.set $f (i32.add ${l('f')} (i32.const 1)))
      (br $feats))))
  (func (export "rows") (param $src i32) (param $idx i32) (param $k i32) (param $bytes i32) (param $dst i32)
    (local $r i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u ${l('r')} ${l('k')}))
      (memory.copy
        (i32.add ${l('dst')} (i32.mul ${l('r')} ${l('bytes')}))
        (i32.add ${l('src')} (i32.shl (i32.load (i32.add ${l('idx')} (i32.shl ${l('r')} (i32.const 2)))) (i32.const 2)))
        ${l('bytes')})
      (local.set $r (i32.add ${l('r')} (i32.const 1)))
      (br $next))))
  ;; pack: columns (f64, column-major, stride bytes apart, rows padded to a multiple of 4) to the
  ;; row-major f32 matrix at xo, and each row's 64-bit fingerprint (src/hash.ts rowHash32: the
  ;; float32 words, -0 as 0, and the label) to ho, four rows at a time
  (func (export "pack") (param $cols i32) (param $stride i32) (param $lab i32) (param $n i32) (param $F i32) (param $xo i32) (param $ho i32)
    (local $r0 i32) (local $f i32) (local $p i32) (local $o i32) (local $rowb i32)
    (local $la v128) (local $a1 v128) (local $a2 v128) (local $w v128)
    (local.set $rowb (i32.shl ${l('F')} (i32.const 2)))
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u ${l('r0')} ${l('n')}))
      (local.set $la (v128.load (i32.add ${l('lab')} (i32.shl ${l('r0')} (i32.const 2)))))
      (local.set $a1 (v128.xor (i32x4.splat (i32.const 0x9e3779b9)) ${l('la')}))
      (local.set $a2 (v128.xor (i32x4.splat (i32.const 0x7f4a7c15)) (i32x4.mul ${l('la')} (i32x4.splat (i32.const 0x27d4eb2f)))))
      (local.set $p (i32.add ${l('cols')} (i32.shl ${l('r0')} (i32.const 3))))
      (local.set $o (i32.add ${l('xo')} (i32.mul ${l('r0')} ${l('rowb')})))
      (local.set $f (i32.const 0))
      (block $feats_done (loop $feats
        (br_if $feats_done (i32.ge_u ${l('f')} ${l('F')}))
        (local.set $w (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (v128.load ${l('p')}))
          (f32x4.demote_f64x2_zero (v128.load offset=16 ${l('p')}))))
        (v128.store32_lane 0 ${l('o')} ${l('w')})
        (v128.store32_lane 1 (i32.add ${l('o')} ${l('rowb')}) ${l('w')})
        (v128.store32_lane 2 (i32.add ${l('o')} (i32.shl ${l('rowb')} (i32.const 1))) ${l('w')})
        (v128.store32_lane 3 (i32.add ${l('o')} (i32.mul ${l('rowb')} (i32.const 3))) ${l('w')})
        ;; -0 and 0 hash alike
        (local.set $w (v128.andnot ${l('w')} (i32x4.eq ${l('w')} (i32x4.splat (i32.const 0x80000000)))))
        (local.set $a1 (i32x4.mul (v128.xor ${l('a1')} ${l('w')}) (i32x4.splat (i32.const 0xcc9e2d51))))
        (local.set $a1 (v128.or (i32x4.shl ${l('a1')} (i32.const 15)) (i32x4.shr_u ${l('a1')} (i32.const 17))))
        (local.set $a1 (i32x4.add (i32x4.mul ${l('a1')} (i32x4.splat (i32.const 0x1b873593))) (i32x4.splat (i32.const 0xe6546b64))))
        (local.set $a2 (i32x4.mul (v128.xor ${l('a2')} ${l('w')}) (i32x4.splat (i32.const 0x85ebca6b))))
        (local.set $a2 (v128.or (i32x4.shl ${l('a2')} (i32.const 13)) (i32x4.shr_u ${l('a2')} (i32.const 19))))
        (local.set $a2 (i32x4.add (i32x4.mul ${l('a2')} (i32x4.splat (i32.const 0xc2b2ae35))) (i32x4.splat (i32.const 0x561ccd1b))))
        (local.set $p (i32.add ${l('p')} ${l('stride')}))
        (local.set $o (i32.add ${l('o')} (i32.const 4)))
        (local.set $f (i32.add ${l('f')} (i32.const 1)))
        (br $feats)))
      (local.set $a1 (call $fmix4 (v128.xor ${l('a1')} (i32x4.splat ${l('F')}))))
      (local.set $a2 (call $fmix4 (v128.xor ${l('a2')} (i32x4.splat (i32.mul ${l('F')} (i32.const 0x165667b1))))))
      ;; interleaved: lo, hi of row r0, then r0 + 1, ...
      (v128.store (i32.add ${l('ho')} (i32.shl ${l('r0')} (i32.const 3))) (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 ${l('a1')} ${l('a2')}))
      (v128.store offset=16 (i32.add ${l('ho')} (i32.shl ${l('r0')} (i32.const 3))) (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 ${l('a1')} ${l('a2')}))
      (local.set $r0 (i32.add ${l('r0')} (i32.const 4)))
      (br $rows))))
  (func $fmix4 (param $h v128) (result v128)
    (local.set $h (v128.xor ${l('h')} (i32x4.shr_u ${l('h')} (i32.const 16))))
    (local.set $h (i32x4.mul ${l('h')} (i32x4.splat (i32.const 0x85ebca6b))))
    (local.set $h (v128.xor ${l('h')} (i32x4.shr_u ${l('h')} (i32.const 13))))
    (local.set $h (i32x4.mul ${l('h')} (i32x4.splat (i32.const 0xc2b2ae35))))
    (v128.xor ${l('h')} (i32x4.shr_u ${l('h')} (i32.const 16))))
)`;
}
