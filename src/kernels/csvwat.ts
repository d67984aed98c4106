// The CSV delimiter index in WebAssembly text (SIMD, 16 bytes at a time), compiled to
// dist/src/kernels/csv.wasm by `npm run build` (src/kernels/build.ts). Used by src/kernels/csvscan.ts.
//
// Exported: delims(p, len, d, out) -> n: the offsets (from p) of every byte equal to d in [p, p + len),
// in order, written as i32 at out; returns how many. Pointers are byte offsets into the module's memory.
// Per 16 bytes: one compare and a bitmask, then a store per delimiter found (count trailing zeros):
// four unconditionally, more in a loop. `out` needs 16 bytes of room past the last position.

export function csvWat(): string {
  const l = (n: string) => `(local.get $${n})`;
  return `(module
  (memory (export "memory") 1)
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
)
`;
}
