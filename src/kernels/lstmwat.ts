// The LSTM inference kernel in WebAssembly text (SIMD, 4 float32 lanes), generated here and compiled
// to dist/src/kernels/lstm.wasm by `npm run build` (src/kernels/build.ts, with wabt). Generated rather
// than hand-written so that the unrolled parts (8 accumulators, the inlined exp) have one source each.
//
// Exported: lstm(B, T, P, H, x, w, bias, u, out, scratch) -> writes h_T [B][H] at out. Pointers are
// byte offsets into the module's memory, all 16-byte aligned; H must be a multiple of 8.
//   x [B][T][P]: P inputs per step (the seed model: P = 1, one feature value per step)
//   w [P][4H], bias [4H]: the input kernel; u [H][4H]: the recurrent kernel; gate order i, f, g, o
//   as tf.layers.lstm. scratch: h [H], c [H], pre [4H]
// Each row runs on its own. Per step: pre = bias + x_t·W + h·U, 32 gate columns at a time held in 8
// v128 accumulators over the P + H products; then 4 units at a time: i, f, o = sigmoid, g = tanh,
// c = f·c + i·g, h = o·tanh(c).
//
// exp(y) = 2^(y·log2 e) = 2^k · 2^f, k = round(y·log2 e) put into the float's exponent bits, 2^f for
// f in [-0.5, 0.5] from its degree-6 Taylor polynomial (relative error < 2e-7, as the JavaScript
// path's fexp); y·log2 e is clamped to [-126, 126] so 2^k stays a normal float. sigmoid(x) =
// 1 / (1 + exp(-x)), tanh(x) = 2 / (1 + exp(-2x)) - 1. f32x4.pmin/pmax map to one instruction each.

const LOG2E = 1.4426950408889634;
/** (ln 2)^n / n!, n = 0..6 */
const POLY = [1, 0.6931471805599453, 0.2402265069591007, 0.05550410866482158, 0.009618129107628477, 0.0013333558146428443, 0.00015403530393381609];
/** Gate columns per pass over h: 8 accumulators of 4 lanes. */
const ACC = 8;

const splat = (v: number) => `(v128.const f32x4 ${v} ${v} ${v} ${v})`;
const get = (name: string) => `(local.get $${name})`;
/** byte offset of float index `i` (an expression) from base local `base` */
const at = (base: string, i: string) => `(i32.add ${get(base)} (i32.shl ${i} (i32.const 2)))`;

/** Statements that leave exp(y) in local dst (y: an expression; uses locals et, ek, ef). */
function exp(y: string, dst: string): string {
  let poly = splat(POLY[6]);
  for (let i = 5; i >= 0; i--) poly = `(f32x4.add ${splat(POLY[i])} (f32x4.mul ${get('ef')} ${poly}))`;
  const pow2k = `(i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s ${get('ek')}) (v128.const i32x4 127 127 127 127)) (i32.const 23))`;
  return `
    (local.set $et (f32x4.pmin (f32x4.pmax (f32x4.mul ${y} ${splat(LOG2E)}) ${splat(-126)}) ${splat(126)}))
    (local.set $ek (f32x4.nearest ${get('et')}))
    (local.set $ef (f32x4.sub ${get('et')} ${get('ek')}))
    (local.set $${dst} (f32x4.mul ${poly} ${pow2k}))`;
}
const sigmoid = (x: string, dst: string) => `${exp(`(f32x4.neg ${x})`, dst)}
    (local.set $${dst} (f32x4.div ${splat(1)} (f32x4.add ${splat(1)} ${get(dst)})))`;
const tanh = (x: string, dst: string) => `${exp(`(f32x4.mul ${x} ${splat(-2)})`, dst)}
    (local.set $${dst} (f32x4.sub (f32x4.div ${splat(2)} (f32x4.add ${splat(1)} ${get(dst)})) ${splat(1)}))`;

const each = (f: (m: number) => string) => Array.from({ length: ACC }, (_, m) => f(m)).join('\n          ');

/** acc_m += splat(v[n]) · M[n][j + 4m] for n < count: one matrix-vector pass over 32 gate columns. */
function products(name: string, count: string, vec: string, mat: string): string {
  const madd = each((m) => `(local.set $acc${m} (f32x4.add ${get(`acc${m}`)} (f32x4.mul ${get('vn')} (v128.load offset=${m * 16} ${get('mp')}))))`);
  return `
          (local.set $mp ${at(mat, get('j'))})
          (local.set $n (i32.const 0))
          (block $${name}_done (loop $${name}
            (br_if $${name}_done (i32.ge_u ${get('n')} ${count}))
            (local.set $vn (v128.load32_splat ${at(vec, get('n'))}))
          ${madd}
            (local.set $mp (i32.add ${get('mp')} (i32.shl ${get('G')} (i32.const 2))))
            (local.set $n (i32.add ${get('n')} (i32.const 1)))
            (br $${name})))`;
}

export function lstmWat(): string {
  const accLocals = each((m) => `(local $acc${m} v128)`);
  const init = each((m) => `(local.set $acc${m} (v128.load offset=${m * 16} ${get('bp')}))`);
  const store = each((m) => `(v128.store offset=${m * 16} ${get('pp')} ${get(`acc${m}`)})`);
  const gate = (k: number) => `(v128.load offset=0 ${k === 0 ? get('pp') : `(i32.add ${get('pp')} (i32.mul ${get('H')} (i32.const ${4 * k})))`})`;
  return `(module
  (memory (export "memory") 1)
  (func (export "lstm") (param $B i32) (param $T i32) (param $P i32) (param $H i32) (param $x i32) (param $w i32) (param $bias i32) (param $u i32) (param $out i32) (param $scr i32)
    (local $b i32) (local $t i32) (local $j i32) (local $n i32) (local $q i32) (local $G i32)
    (local $hp i32) (local $cs i32) (local $prep i32) (local $xt i32) (local $bp i32) (local $mp i32) (local $pp i32)
    (local $vn v128)
    ${accLocals}
    (local $et v128) (local $ek v128) (local $ef v128)
    (local $i v128) (local $f v128) (local $g v128) (local $o v128) (local $c v128) (local $tc v128)
    (local.set $G (i32.shl ${get('H')} (i32.const 2)))
    (local.set $hp ${get('scr')})
    (local.set $cs ${at('scr', get('H'))})
    (local.set $prep ${at('scr', `(i32.shl ${get('H')} (i32.const 1))`)})
    (local.set $xt ${get('x')})
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u ${get('b')} ${get('B')}))
      (memory.fill ${get('scr')} (i32.const 0) (i32.shl ${get('H')} (i32.const 3))) ;; h = c = 0
      (local.set $t (i32.const 0))
      (block $steps_done (loop $steps
        (br_if $steps_done (i32.ge_u ${get('t')} ${get('T')}))
        ;; pre = bias + x_t·W + h·U, ${ACC * 4} gate columns per pass
        (local.set $j (i32.const 0))
        (block $cols_done (loop $cols
          (br_if $cols_done (i32.ge_u ${get('j')} ${get('G')}))
          (local.set $bp ${at('bias', get('j'))})
          ${init}${products('inputs', get('P'), 'xt', 'w')}${products('recurrent', get('H'), 'hp', 'u')}
          (local.set $pp ${at('prep', get('j'))})
          ${store}
          (local.set $j (i32.add ${get('j')} (i32.const ${ACC * 4})))
          (br $cols)))
        ;; gates, 4 units at a time
        (local.set $q (i32.const 0))
        (block $units_done (loop $units
          (br_if $units_done (i32.ge_u ${get('q')} ${get('H')}))
          (local.set $pp ${at('prep', get('q'))})
          ${sigmoid(gate(0), 'i')}
          ${sigmoid(gate(1), 'f')}
          ${tanh(gate(2), 'g')}
          ${sigmoid(gate(3), 'o')}
          (local.set $c (f32x4.add (f32x4.mul ${get('f')} (v128.load ${at('cs', get('q'))})) (f32x4.mul ${get('i')} ${get('g')})))
          (v128.store ${at('cs', get('q'))} ${get('c')})
          ${tanh(get('c'), 'tc')}
          (v128.store ${at('hp', get('q'))} (f32x4.mul ${get('o')} ${get('tc')}))
          (local.set $q (i32.add ${get('q')} (i32.const 4)))
          (br $units)))
        (local.set $xt ${at('xt', get('P'))})
        (local.set $t (i32.add ${get('t')} (i32.const 1)))
        (br $steps)))
      (memory.copy ${at('out', `(i32.mul ${get('b')} ${get('H')})`)} ${get('hp')} (i32.shl ${get('H')} (i32.const 2)))
      (local.set $b (i32.add ${get('b')} (i32.const 1)))
      (br $rows)))
  )
)
`;
}
