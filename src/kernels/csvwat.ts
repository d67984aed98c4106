// The CSV kernels in WebAssembly text, compiled to dist/src/kernels/csv.wasm by `npm run build`
// (src/kernels/build.ts). Used by src/kernels/csvscan.ts. Memory: the powers of ten at 0 (23 f64), the
// numeric fields' table at FIELDS, then the buffer and what the calls write.
//
// delims(p, len, d, out) -> n: the offsets (from p) of every byte equal to d in [p, p + len), in order,
// written as i32 at out; returns how many. Per 16 bytes: one compare and a bitmask (SIMD), then a store
// per delimiter found (count trailing zeros): four unconditionally, more in a loop. `out` needs 16 bytes
// of room past the last position.
//
// numbers(p, s, e, pos, c, hlen, nf, out, stride, st) -> flagged: the numeric fields of one row. The row is [s, e) of the
// buffer at p; its delimiters are the i32 offsets pos[c], pos[c + 1], …; the nf field indices (i32) are
// at FIELDS. For each, f64 at out + k·stride (the parser's column-major batch: stride = 8 × its rows)
// and st[k] = 0 when the cell is a plain decimal (-?digits[.digits])
// of at most 15 significant digits (the digits as an integer below 10^15; at 10^15 the sum stops, so it never
// overflows) and 22 after the point: the digits summed as an exact integer, then
// divided by the power of ten, as the JavaScript parser does (src/csv.ts parseNumberAt), so the same
// double; st[k] = 1 for anything else (the JavaScript parser takes that cell). Returns how many are 1.

/** Byte offset of the numeric fields' table (room for FIELDS_MAX indices), and where the buffer may start. */
export const FIELDS = 256;
export const FIELDS_MAX = 4096;
export const BUFFER_AT = FIELDS + 4 * FIELDS_MAX;

export function csvWat(): string {
  const l = (n: string) => `(local.get $${n})`;
  const pow10 = Array.from({ length: 23 }, (_, k) => {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(10 ** k);
    return [...b].map((x) => '\\' + x.toString(16).padStart(2, '0')).join('');
  }).join('');
  const byte = (at: string) => `(i32.load8_u (i32.add ${l('p')} ${at}))`;
  /** A run of digits from i up to b: summed into mant (it stops growing at 10^15: never an overflow), counted in nd; `extra` per digit. */
  const digitLoop = (name: string, extra: string) => `(block $${name}_done (loop $${name}
        (br_if $${name}_done (i32.ge_u ${l('i')} ${l('b')}))
        (local.set $ch (i32.sub ${byte(l('i'))} (i32.const 48)))
        (br_if $${name}_done (i32.ge_u ${l('ch')} (i32.const 10)))
        (local.set $mant (i64.add (i64.mul ${l('mant')} (i64.const 10)) (i64.extend_i32_u ${l('ch')})))
        (if (i64.ge_u ${l('mant')} (i64.const 1000000000000000)) (then (local.set $mant (i64.const 1000000000000000))))
        (local.set $nd (i32.add ${l('nd')} (i32.const 1)))
        ${extra}
        (local.set $i (i32.add ${l('i')} (i32.const 1)))
        (br $${name})))`;
  return `(module
  (memory (export "memory") 1)
  (data (i32.const 0) "${pow10}")
  (func (export "delims") (param $p i32) (param $len i32) (param $d i32) (param $out i32) (result i32)
    (local $i i32) (local $n i32) (local $m i32) (local $c i32) (local $o i32) (local $end16 i32) (local $dv v128)
    (local.set $dv (i8x16.splat ${l('d')}))
    (local.set $end16 (i32.and ${l('len')} (i32.const -16)))
    (block $blocks_done (loop $blocks
      (br_if $blocks_done (i32.ge_u ${l('i')} ${l('end16')}))
      (local.set $m (i8x16.bitmask (i8x16.eq (v128.load (i32.add ${l('p')} ${l('i')})) ${l('dv')})))
      ;; the first four positions are written whatever the count (no branch to mispredict; past the
      ;; count they are overwritten later), n moves by the count; a block with more loops for the rest
      (local.set $c (i32.popcnt ${l('m')}))
      (local.set $o (i32.add ${l('out')} (i32.shl ${l('n')} (i32.const 2))))
      ${[0, 1, 2, 3].map((k) => `(i32.store offset=${4 * k} ${l('o')} (i32.add ${l('i')} (i32.ctz ${l('m')})))
      (local.set $m (i32.and ${l('m')} (i32.sub ${l('m')} (i32.const 1))))`).join(' ')}
      (local.set $n (i32.add ${l('n')} (select ${l('c')} (i32.const 4) (i32.lt_u ${l('c')} (i32.const 4)))))
      (block $bits_done (loop $bits
        (br_if $bits_done (i32.eqz ${l('m')}))
        (i32.store (i32.add ${l('out')} (i32.shl ${l('n')} (i32.const 2))) (i32.add ${l('i')} (i32.ctz ${l('m')})))
        (local.set $n (i32.add ${l('n')} (i32.const 1)))
        (local.set $m (i32.and ${l('m')} (i32.sub ${l('m')} (i32.const 1))))
        (br $bits)))
      (local.set $i (i32.add ${l('i')} (i32.const 16)))
      (br $blocks)))
    (block $tail_done (loop $tail
      (br_if $tail_done (i32.ge_u ${l('i')} ${l('len')}))
      (if (i32.eq (i32.load8_u (i32.add ${l('p')} ${l('i')})) ${l('d')})
        (then
          (i32.store (i32.add ${l('out')} (i32.shl ${l('n')} (i32.const 2))) ${l('i')})
          (local.set $n (i32.add ${l('n')} (i32.const 1)))))
      (local.set $i (i32.add ${l('i')} (i32.const 1)))
      (br $tail)))
    ${l('n')})
  (func (export "numbers") (param $p i32) (param $s i32) (param $e i32) (param $pos i32) (param $c i32) (param $hlen i32) (param $nf i32) (param $out i32) (param $stride i32) (param $st i32) (result i32)
    (local $flagged i32) (local $k i32) (local $j i32) (local $a i32) (local $b i32) (local $i i32) (local $ch i32) (local $neg i32)
    (local $nd i32) (local $fd i32) (local $mant i64) (local $v f64)
    (block $fields_done (loop $fields
      (br_if $fields_done (i32.ge_u ${l('k')} ${l('nf')}))
      (local.set $j (i32.load (i32.add (i32.const ${FIELDS}) (i32.shl ${l('k')} (i32.const 2)))))
      (local.set $a (if (result i32) (i32.eqz ${l('j')}) (then ${l('s')})
        (else (i32.add (i32.load (i32.add ${l('pos')} (i32.shl (i32.add ${l('c')} (i32.sub ${l('j')} (i32.const 1))) (i32.const 2)))) (i32.const 1)))))
      (local.set $b (if (result i32) (i32.eq ${l('j')} (i32.sub ${l('hlen')} (i32.const 1))) (then ${l('e')})
        (else (i32.load (i32.add ${l('pos')} (i32.shl (i32.add ${l('c')} ${l('j')}) (i32.const 2)))))))
      (local.set $i ${l('a')})
      (local.set $neg (i32.const 0))
      (local.set $mant (i64.const 0))
      (local.set $nd (i32.const 0))
      (local.set $fd (i32.const 0))
      (if (i32.and (i32.lt_u ${l('i')} ${l('b')}) (i32.eq ${byte(l('i'))} (i32.const 45)))
        (then (local.set $neg (i32.const 1)) (local.set $i (i32.add ${l('i')} (i32.const 1)))))
      ;; integer digits
      ${digitLoop('int', '')}
      ;; the point and the digits after it
      (if (i32.and (i32.lt_u ${l('i')} ${l('b')}) (i32.eq ${byte(l('i'))} (i32.const 46)))
        (then
          (local.set $i (i32.add ${l('i')} (i32.const 1)))
          ${digitLoop('frac', `(local.set $fd (i32.add ${l('fd')} (i32.const 1)))`)}))
      (if (i32.and (i32.and (i32.eq ${l('i')} ${l('b')}) (i32.ne ${l('nd')} (i32.const 0)))
                   (i32.and (i64.lt_u ${l('mant')} (i64.const 1000000000000000)) (i32.le_u ${l('fd')} (i32.const 22))))
        (then
          (local.set $v (f64.convert_i64_s ${l('mant')}))
          (if (i32.ne ${l('fd')} (i32.const 0))
            (then (local.set $v (f64.div ${l('v')} (f64.load (i32.shl ${l('fd')} (i32.const 3)))))))
          (if ${l('neg')} (then (local.set $v (f64.neg ${l('v')}))))
          (f64.store (i32.add ${l('out')} (i32.mul ${l('k')} ${l('stride')})) ${l('v')})
          (i32.store8 (i32.add ${l('st')} ${l('k')}) (i32.const 0)))
        (else
          (i32.store8 (i32.add ${l('st')} ${l('k')}) (i32.const 1))
          (local.set $flagged (i32.add ${l('flagged')} (i32.const 1)))))
      (local.set $k (i32.add ${l('k')} (i32.const 1)))
      (br $fields)))
    ${l('flagged')})
)
`;
}
