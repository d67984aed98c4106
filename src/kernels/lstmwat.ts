// The LSTM kernels in WebAssembly text (SIMD, 4 float32 lanes), generated here and compiled to
// dist/src/kernels/lstm.wasm by `npm run build` (src/kernels/build.ts, with wabt). Generated rather
// than hand-written so that the unrolled parts (8 accumulators, the inlined exp) have one source each.
// Three functions: lstm (inference, below), lstm_train and lstm_train_bwd (training's two passes,
// described at lstmFunction and backwardFunction).
//
// Exported: lstm(mode, B, T, P, H, x, w, bias, u, out, scratch) -> writes h_T [B][H] at out. Pointers
// are byte offsets into the module's memory, all 16-byte aligned; H must be a multiple of 8.
//   mode 0: x [B][T][P]: P inputs per step, projected in the loop (the seed model: P = 1, one feature
//   value per step); mode 1: x = gx [B][T][4H], the inputs already projected (the window model: gx =
//   x·W + bias by gemm_nn, the same sums in the same order)
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

/**
 * Whether the module being generated uses fused multiply-add (relaxed SIMD's f32x4.relaxed_madd, one
 * rounding) for the products and the exp polynomial; the strict module computes a·b then adds (two).
 */
let FMA = false;
/** a·b + c: `(f32x4.add c (f32x4.mul a b))`, or fused in the FMA module. */
const madd = (a: string, b: string, c: string) => (FMA ? `(f32x4.relaxed_madd ${a} ${b} ${c})` : `(f32x4.add ${c} (f32x4.mul ${a} ${b}))`);

const splat = (v: number) => `(v128.const f32x4 ${v} ${v} ${v} ${v})`;
const get = (name: string) => `(local.get $${name})`;
/** byte offset of float index `i` (an expression) from base local `base` */
const at = (base: string, i: string) => `(i32.add ${get(base)} (i32.shl ${i} (i32.const 2)))`;

/** Statements that leave exp(y) in local dst (y: an expression; uses locals et, ek, ef). */
function exp(y: string, dst: string): string {
  let poly = splat(POLY[6]);
  for (let i = 5; i >= 0; i--) poly = madd(get('ef'), poly, splat(POLY[i]));
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

const each = (f: (m: number) => string, n = ACC) => Array.from({ length: n }, (_, m) => f(m)).join('\n          ');

/**
 * acc_m += splat(v[n]) · M[n][j + 4m] for n < count, m < acc: one matrix-vector pass over 4·acc
 * columns of M, whose rows are `stride` floats apart (an expression).
 */
function products(name: string, count: string, vec: string, mat: string, stride = get('G'), acc = ACC): string {
  const sums = each((m) => `(local.set $acc${m} ${madd(get('vn'), `(v128.load offset=${m * 16} ${get('mp')})`, get(`acc${m}`))})`, acc);
  return `
          (local.set $mp ${at(mat, get('j'))})
          (local.set $n (i32.const 0))
          (block $${name}_done (loop $${name}
            (br_if $${name}_done (i32.ge_u ${get('n')} ${count}))
            (local.set $vn (v128.load32_splat ${at(vec, get('n'))}))
          ${sums}
            (local.set $mp (i32.add ${get('mp')} (i32.shl ${stride} (i32.const 2))))
            (local.set $n (i32.add ${get('n')} (i32.const 1)))
            (br $${name})))`;
}

const I32 = (names: string[]) => names.map((n) => `(local $${n} i32)`).join(' ');
const V128 = (names: string[]) => names.map((n) => `(local $${n} v128)`).join(' ');
/** byte offset of gate k (i, f, g, o = 0..3) of units q.. in a row of 4H floats at base local `base` */
const gateAt = (base: string, k: number) => `(i32.add ${at(base, get('q'))} (i32.mul ${get('H')} (i32.const ${4 * k})))`;
/** byte offset of row b's vector of `width` floats at step `step` in an array [steps][B][width] */
const stepRow = (base: string, step: string, width: string) => `(i32.add ${get(base)} (i32.shl (i32.mul (i32.add (i32.mul ${step} ${get('B')}) ${get('b')}) ${width}) (i32.const 2)))`;

/**
 * One exported function. Inference (train false): lstm(B, T, P, H, x, w, bias, u, out, scratch) as
 * described at the top; h and c live in scratch. Training (train true): lstm_train(mode, B, T, P, H,
 * x, w, bias, u, act, c, tc, h, scratch) keeps what the backward pass needs, in the layouts of
 * src/fusedlstm.ts: act [T][B][4H] (i, f, g, o), c, tc = tanh(c) and h [T+1][B][H] (the caller zeroes
 * step 0). mode 0: inputs projected in the kernel as in inference; mode 1: x = gx [B][T][4H], the
 * projected inputs given (the window model, whose input gradient tfjs computes from dgx).
 */
function lstmFunction(train: boolean): string {
  const init = each((m) => `(local.set $acc${m} (v128.load offset=${m * 16} ${get('bp')}))`);
  const initGiven = each((m) => `(local.set $acc${m} (v128.load offset=${m * 16} ${get('gp')}))`);
  const store = each((m) => `(v128.store offset=${m * 16} ${get('pp')} ${get(`acc${m}`)})`);
  const gate = (k: number) => `(v128.load ${gateAt('prep', k)})`;
  const params = train
    ? '(param $mode i32) (param $B i32) (param $T i32) (param $P i32) (param $H i32) (param $x i32) (param $w i32) (param $bias i32) (param $u i32) (param $act i32) (param $cc i32) (param $tcs i32) (param $hh i32) (param $scr i32)'
    : '(param $mode i32) (param $B i32) (param $T i32) (param $P i32) (param $H i32) (param $x i32) (param $w i32) (param $bias i32) (param $u i32) (param $out i32) (param $scr i32)';
  const projected = `${init}${products('inputs', get('P'), 'xt', 'w')}`;
  // per step: where h_t and c_t are read (hp, cp) and h_t+1, c_t+1, tanh(c_t+1), the gates written
  const stepPointers = train
    ? `(local.set $hp ${stepRow('hh', get('t'), get('H'))})
        (local.set $hn ${stepRow('hh', `(i32.add ${get('t')} (i32.const 1))`, get('H'))})
        (local.set $cp ${stepRow('cc', get('t'), get('H'))})
        (local.set $cn ${stepRow('cc', `(i32.add ${get('t')} (i32.const 1))`, get('H'))})
        (local.set $tn ${stepRow('tcs', `(i32.add ${get('t')} (i32.const 1))`, get('H'))})
        (local.set $ap ${stepRow('act', get('t'), get('G'))})
        (local.set $xt ${at('x', `(i32.mul (i32.add (i32.mul ${get('b')} ${get('T')}) ${get('t')}) ${get('P')})`)})`
    : '';
  return `
  (func (export "${train ? 'lstm_train' : 'lstm'}") ${params}
    ${I32(['b', 't', 'j', 'n', 'q', 'G', 'hp', 'hn', 'cp', 'cn', 'tn', 'ap', 'prep', 'xt', 'bp', 'gp', 'mp', 'pp'])}
    ${V128(['vn', ...Array.from({ length: ACC }, (_, m) => `acc${m}`), 'et', 'ek', 'ef', 'i', 'f', 'g', 'o', 'c', 'tc'])}
    (local.set $G (i32.shl ${get('H')} (i32.const 2)))
    (local.set $prep ${at('scr', `(i32.shl ${get('H')} (i32.const 1))`)})
    ${train ? '' : `(local.set $hp ${get('scr')}) (local.set $hn ${get('scr')})
    (local.set $cp ${at('scr', get('H'))}) (local.set $cn ${get('cp')})
    (local.set $xt ${get('x')})`}
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u ${get('b')} ${get('B')}))
      ${train ? '' : `(memory.fill ${get('scr')} (i32.const 0) (i32.shl ${get('H')} (i32.const 3))) ;; h = c = 0`}
      (local.set $t (i32.const 0))
      (block $steps_done (loop $steps
        (br_if $steps_done (i32.ge_u ${get('t')} ${get('T')}))
        ${stepPointers}
        ;; pre = step input + h·U, ${ACC * 4} gate columns per pass
        (local.set $j (i32.const 0))
        (block $cols_done (loop $cols
          (br_if $cols_done (i32.ge_u ${get('j')} ${get('G')}))
          (local.set $bp ${at('bias', get('j'))})
          (if (i32.eqz ${get('mode')})
            (then ${projected})
            (else
          (local.set $gp ${at('x', `(i32.add (i32.mul (i32.add (i32.mul ${get('b')} ${get('T')}) ${get('t')}) ${get('G')}) ${get('j')})`)})
          ${initGiven}))${products('recurrent', get('H'), 'hp', 'u')}
          (local.set $pp ${at('prep', get('j'))})
          ${store}
          (local.set $j (i32.add ${get('j')} (i32.const ${ACC * 4})))
          (br $cols)))
        ;; gates, 4 units at a time
        (local.set $q (i32.const 0))
        (block $units_done (loop $units
          (br_if $units_done (i32.ge_u ${get('q')} ${get('H')}))
          ${sigmoid(gate(0), 'i')}
          ${sigmoid(gate(1), 'f')}
          ${tanh(gate(2), 'g')}
          ${sigmoid(gate(3), 'o')}
          (local.set $c (f32x4.add (f32x4.mul ${get('f')} (v128.load ${at('cp', get('q'))})) (f32x4.mul ${get('i')} ${get('g')})))
          (v128.store ${at('cn', get('q'))} ${get('c')})
          ${tanh(get('c'), 'tc')}
          (v128.store ${at('hn', get('q'))} (f32x4.mul ${get('o')} ${get('tc')}))
          ${
            train
              ? `(v128.store ${at('tn', get('q'))} ${get('tc')})
          (v128.store ${gateAt('ap', 0)} ${get('i')})
          (v128.store ${gateAt('ap', 1)} ${get('f')})
          (v128.store ${gateAt('ap', 2)} ${get('g')})
          (v128.store ${gateAt('ap', 3)} ${get('o')})`
              : ''
          }
          (local.set $q (i32.add ${get('q')} (i32.const 4)))
          (br $units)))
        ${train ? '' : `(local.set $xt ${at('xt', get('P'))})`}
        (local.set $t (i32.add ${get('t')} (i32.const 1)))
        (br $steps)))
      ${train ? '' : `(memory.copy ${at('out', `(i32.mul ${get('b')} ${get('H')})`)} ${get('hp')} (i32.shl ${get('H')} (i32.const 2)))`}
      (local.set $b (i32.add ${get('b')} (i32.const 1)))
      (br $rows)))
  )`;
}

/**
 * lstm_train_bwd(mode, B, T, H, x, act, c, tc, h, ut, dy, du, dgx, da, dc0, scratch, defer): the backward
 * pass through the recurrence, from the state lstm_train kept. dy [B][H]: the gradient of h_T. Adds
 * the recurrent kernel's gradient Σ h_prevᵀ·dz to du [H][4H], and the input side: mode 0 (inputs
 * projected in the kernel, P = 1, x [B][T]) adds Σ x·dz to da [4H] and Σ dz to dc0 [4H]; mode 1 writes
 * dgx [B][T][4H]. ut: the recurrent kernel transposed, [4H][H]. scratch: dh [H], dc [H], dz [4H].
 * Per row, from the last step: dc' = dc + dh·o·(1 − tanh²c), dz = (dc'·g·i(1−i), dc'·c_prev·f(1−f),
 * dc'·i(1−g²), dh·tanh c·o(1−o)), dc = dc'·f, du += h_prevᵀ·dz (32 columns at a time, dz held in
 * registers), dh = dz·Uᵀ (8 columns of dh at a time over the 4H products).
 * defer = 1 (the training engine, src/trainengine.ts): dz of every step is written to dgx in both modes
 * and du is left alone: the engine computes it afterwards as one blocked product (gemm_tn), which
 * keeps du's tile in registers instead of loading and storing all of du at every row and step.
 */
function backwardFunction(): string {
  const BACC = 2;
  const init = each((m) => `(local.set $acc${m} (v128.const i32x4 0 0 0 0))`, BACC);
  const store = each((m) => `(v128.store offset=${m * 16} ${at('dh', get('j'))} ${get(`acc${m}`)})`, BACC);
  const one = splat(1);
  return `
  (func (export "lstm_train_bwd") (param $mode i32) (param $B i32) (param $T i32) (param $H i32) (param $x i32) (param $act i32) (param $cc i32) (param $tcs i32) (param $hh i32) (param $ut i32) (param $dy i32) (param $du i32) (param $dgx i32) (param $da i32) (param $dc0 i32) (param $scr i32) (param $defer i32)
    ${I32(['b', 't', 'j', 'n', 'k', 'q', 'G', 'dh', 'dc', 'ap', 'cp', 'tp', 'hp', 'zp', 'mp', 'up'])}
    ${V128(['vn', ...Array.from({ length: ACC }, (_, m) => `acc${m}`), 'i', 'f', 'g', 'o', 'tc', 'dhv', 'dcq', 'xv'])}
    (local.set $G (i32.shl ${get('H')} (i32.const 2)))
    (local.set $dh ${get('scr')})
    (local.set $dc ${at('scr', get('H'))})
    (local.set $zp ${at('scr', `(i32.shl ${get('H')} (i32.const 1))`)})
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u ${get('b')} ${get('B')}))
      (memory.copy ${get('dh')} ${at('dy', `(i32.mul ${get('b')} ${get('H')})`)} (i32.shl ${get('H')} (i32.const 2)))
      (memory.fill ${get('dc')} (i32.const 0) (i32.shl ${get('H')} (i32.const 2)))
      (local.set $t ${get('T')})
      (block $steps_done (loop $steps
        (br_if $steps_done (i32.eqz ${get('t')}))
        (local.set $t (i32.sub ${get('t')} (i32.const 1)))
        (local.set $ap ${stepRow('act', get('t'), get('G'))})
        (local.set $hp ${stepRow('hh', get('t'), get('H'))})
        (local.set $cp ${stepRow('cc', get('t'), get('H'))})
        (local.set $tp ${stepRow('tcs', `(i32.add ${get('t')} (i32.const 1))`, get('H'))})
        ;; dz of this step, 4 units at a time; dc carried to the step before
        (local.set $q (i32.const 0))
        (block $units_done (loop $units
          (br_if $units_done (i32.ge_u ${get('q')} ${get('H')}))
          (local.set $i (v128.load ${gateAt('ap', 0)}))
          (local.set $f (v128.load ${gateAt('ap', 1)}))
          (local.set $g (v128.load ${gateAt('ap', 2)}))
          (local.set $o (v128.load ${gateAt('ap', 3)}))
          (local.set $tc (v128.load ${at('tp', get('q'))}))
          (local.set $dhv (v128.load ${at('dh', get('q'))}))
          (local.set $dcq (f32x4.add (v128.load ${at('dc', get('q'))}) (f32x4.mul (f32x4.mul ${get('dhv')} ${get('o')}) (f32x4.sub ${one} (f32x4.mul ${get('tc')} ${get('tc')})))))
          (v128.store ${gateAt('zp', 0)} (f32x4.mul (f32x4.mul ${get('dcq')} ${get('g')}) (f32x4.mul ${get('i')} (f32x4.sub ${one} ${get('i')}))))
          (v128.store ${gateAt('zp', 1)} (f32x4.mul (f32x4.mul ${get('dcq')} (v128.load ${at('cp', get('q'))})) (f32x4.mul ${get('f')} (f32x4.sub ${one} ${get('f')}))))
          (v128.store ${gateAt('zp', 2)} (f32x4.mul (f32x4.mul ${get('dcq')} ${get('i')}) (f32x4.sub ${one} (f32x4.mul ${get('g')} ${get('g')}))))
          (v128.store ${gateAt('zp', 3)} (f32x4.mul (f32x4.mul ${get('dhv')} ${get('tc')}) (f32x4.mul ${get('o')} (f32x4.sub ${one} ${get('o')}))))
          (v128.store ${at('dc', get('q'))} (f32x4.mul ${get('dcq')} ${get('f')}))
          (local.set $q (i32.add ${get('q')} (i32.const 4)))
          (br $units)))
        ;; the input side
        (if (i32.eqz ${get('mode')})
          (then
            (local.set $xv (v128.load32_splat ${at('x', `(i32.add (i32.mul ${get('b')} ${get('T')}) ${get('t')})`)}))
            (local.set $j (i32.const 0))
            (block $in_done (loop $in
              (br_if $in_done (i32.ge_u ${get('j')} ${get('G')}))
              (local.set $vn (v128.load ${at('zp', get('j'))}))
              (v128.store ${at('da', get('j'))} ${madd(get('xv'), get('vn'), `(v128.load ${at('da', get('j'))})`)})
              (v128.store ${at('dc0', get('j'))} (f32x4.add (v128.load ${at('dc0', get('j'))}) ${get('vn')}))
              (local.set $j (i32.add ${get('j')} (i32.const 4)))
              (br $in)))))
        (if (i32.or ${get('mode')} ${get('defer')})
          (then
            (memory.copy ${at('dgx', `(i32.mul (i32.add (i32.mul ${get('b')} ${get('T')}) ${get('t')}) ${get('G')})`)} ${get('zp')} (i32.shl ${get('G')} (i32.const 2)))))
        ;; du += h_prevᵀ·dz, 32 columns at a time: dz's columns in registers, one row of du per h_prev[k]
        (if (i32.and (i32.gt_u ${get('t')} (i32.const 0)) (i32.eqz ${get('defer')}))
          (then
            (local.set $j (i32.const 0))
            (block $du_done (loop $du_cols
              (br_if $du_done (i32.ge_u ${get('j')} ${get('G')}))
              ${each((m) => `(local.set $acc${m} (v128.load offset=${m * 16} ${at('zp', get('j'))}))`)}
              (local.set $up ${at('du', get('j'))})
              (local.set $k (i32.const 0))
              (block $du_rows_done (loop $du_rows
                (br_if $du_rows_done (i32.ge_u ${get('k')} ${get('H')}))
                (local.set $vn (v128.load32_splat ${at('hp', get('k'))}))
                ${each((m) => `(v128.store offset=${m * 16} ${get('up')} ${madd(get('vn'), get(`acc${m}`), `(v128.load offset=${m * 16} ${get('up')})`)})`)}
                (local.set $up (i32.add ${get('up')} (i32.shl ${get('G')} (i32.const 2))))
                (local.set $k (i32.add ${get('k')} (i32.const 1)))
                (br $du_rows)))
              (local.set $j (i32.add ${get('j')} (i32.const ${ACC * 4})))
              (br $du_cols)))))
        ;; dh of the step before: dz·Uᵀ
        (if (i32.gt_u ${get('t')} (i32.const 0))
          (then
            (local.set $j (i32.const 0))
            (block $cols_done (loop $cols
              (br_if $cols_done (i32.ge_u ${get('j')} ${get('H')}))
              ${init}${products('dhsum', get('G'), 'zp', 'ut', get('H'), BACC)}
              ${store}
              (local.set $j (i32.add ${get('j')} (i32.const ${BACC * 4})))
              (br $cols)))))
        (br $steps)))
      (local.set $b (i32.add ${get('b')} (i32.const 1)))
      (br $rows)))
  )`;
}

/** Statements: acc_{r}{v} (+)= s_r · load(bp + 16v) for r < 2, v < 4 (one k of a 2 × 16 register tile). */
function tileMadd(): string {
  const lines: string[] = [];
  for (let v = 0; v < 4; v++) {
    lines.push(`(local.set $bv (v128.load offset=${v * 16} ${get('bp')}))`);
    for (let r = 0; r < 2; r++) lines.push(`(local.set $acc${r}${v} ${madd(get(`s${r}`), get('bv'), get(`acc${r}${v}`))})`);
  }
  return lines.join('\n            ');
}
const tileLocals = () => V128(['s0', 's1', 'bv', ...[0, 1].flatMap((r) => [0, 1, 2, 3].map((v) => `acc${r}${v}`))]);
/** Statements: load (or store) the 2 × 16 tile rows at byte offsets in locals p0 and p1. */
const tileLoad = (p0: string, p1: string) => [0, 1, 2, 3].map((v) => `(local.set $acc0${v} (v128.load offset=${v * 16} ${get(p0)})) (local.set $acc1${v} (v128.load offset=${v * 16} ${get(p1)}))`).join('\n          ');
const tileStore = (p0: string, p1: string) => [0, 1, 2, 3].map((v) => `(v128.store offset=${v * 16} ${get(p1)} ${get(`acc1${v}`)}) (v128.store offset=${v * 16} ${get(p0)} ${get(`acc0${v}`)})`).join('\n          ');

/**
 * gemm_nn(M, K, N, a, b, bias, c): c [M][N] = a [M][K] · b [K][N] + bias [N] (the window model's input
 * projection, gx = x·W + b, for all rows and steps at once). N a multiple of 16. Blocked: a register
 * tile of 2 rows × 16 columns (8 accumulators) over the whole of K, so each b vector loaded serves two
 * rows and c is written once. An odd last row is computed as a pair with itself (same values, stored twice).
 */
function gemmNN(): string {
  return `
  (func (export "gemm_nn") (param $M i32) (param $K i32) (param $N i32) (param $a i32) (param $b i32) (param $bias i32) (param $c i32)
    ${I32(['m', 'j', 'k', 'ap0', 'ap1', 'bp', 'cp0', 'cp1', 'kb', 'nb'])}
    ${tileLocals()}
    (local.set $kb (i32.shl ${get('K')} (i32.const 2)))
    (local.set $nb (i32.shl ${get('N')} (i32.const 2)))
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u ${get('m')} ${get('M')}))
      (local.set $j (i32.const 0))
      (block $cols_done (loop $cols
        (br_if $cols_done (i32.ge_u ${get('j')} ${get('N')}))
        (local.set $ap0 (i32.add ${get('a')} (i32.mul ${get('m')} ${get('kb')})))
        (local.set $ap1 (select (i32.add ${get('ap0')} ${get('kb')}) ${get('ap0')} (i32.lt_u (i32.add ${get('m')} (i32.const 1)) ${get('M')})))
        (local.set $cp0 (i32.add ${get('c')} (i32.add (i32.mul ${get('m')} ${get('nb')}) (i32.shl ${get('j')} (i32.const 2)))))
        (local.set $cp1 (select (i32.add ${get('cp0')} ${get('nb')}) ${get('cp0')} (i32.lt_u (i32.add ${get('m')} (i32.const 1)) ${get('M')})))
        (local.set $bp ${at('bias', get('j'))})
        ${tileLoad('bp', 'bp')}
        (local.set $bp ${at('b', get('j'))})
        (local.set $k (i32.const 0))
        (block $k_done (loop $ks
          (br_if $k_done (i32.ge_u ${get('k')} ${get('K')}))
          (local.set $s0 (v128.load32_splat ${get('ap0')}))
          (local.set $s1 (v128.load32_splat ${get('ap1')}))
            ${tileMadd()}
          (local.set $ap0 (i32.add ${get('ap0')} (i32.const 4)))
          (local.set $ap1 (i32.add ${get('ap1')} (i32.const 4)))
          (local.set $bp (i32.add ${get('bp')} ${get('nb')}))
          (local.set $k (i32.add ${get('k')} (i32.const 1)))
          (br $ks)))
        ${tileStore('cp0', 'cp1')}
        (local.set $j (i32.add ${get('j')} (i32.const 16)))
        (br $cols)))
      (local.set $m (i32.add ${get('m')} (i32.const 2)))
      (br $rows)))
  )`;
}

/** Rows of a per chunk in gemm_tn: the chunk's slices of a and b stay in the first-level cache across tiles. */
const TN_CHUNK = 64;

/**
 * gemm_tn(M, K, N, a, b, c): c [K][N] += a [M][K]ᵀ · b [M][N] (the weight gradients: Σ over rows and
 * steps of xᵀ·dz and h_prevᵀ·dz). N a multiple of 16. Rows in chunks of ${TN_CHUNK}; per chunk a register
 * tile of 2 rows of c × 16 columns accumulates over the chunk's rows, c loaded and stored once per chunk.
 * An odd last row of c is computed as a pair with itself. The order of the sums is fixed by M, K, N.
 */
function gemmTN(): string {
  return `
  (func (export "gemm_tn") (param $M i32) (param $K i32) (param $N i32) (param $a i32) (param $b i32) (param $c i32)
    ${I32(['m', 'm0', 'mend', 'j', 'k', 'k1', 'ap0', 'ap1', 'bp', 'cp0', 'cp1', 'kb', 'nb'])}
    ${tileLocals()}
    (local.set $kb (i32.shl ${get('K')} (i32.const 2)))
    (local.set $nb (i32.shl ${get('N')} (i32.const 2)))
    (block $chunks_done (loop $chunks
      (br_if $chunks_done (i32.ge_u ${get('m0')} ${get('M')}))
      (local.set $mend (select ${get('M')} (i32.add ${get('m0')} (i32.const ${TN_CHUNK})) (i32.lt_u ${get('M')} (i32.add ${get('m0')} (i32.const ${TN_CHUNK})))))
      (local.set $j (i32.const 0))
      (block $cols_done (loop $cols
        (br_if $cols_done (i32.ge_u ${get('j')} ${get('N')}))
        (local.set $k (i32.const 0))
        (block $krows_done (loop $krows
          (br_if $krows_done (i32.ge_u ${get('k')} ${get('K')}))
          (local.set $k1 (select (i32.add ${get('k')} (i32.const 1)) ${get('k')} (i32.lt_u (i32.add ${get('k')} (i32.const 1)) ${get('K')})))
          (local.set $cp0 (i32.add ${get('c')} (i32.shl (i32.add (i32.mul ${get('k')} ${get('N')}) ${get('j')}) (i32.const 2))))
          (local.set $cp1 (i32.add ${get('c')} (i32.shl (i32.add (i32.mul ${get('k1')} ${get('N')}) ${get('j')}) (i32.const 2))))
          ${tileLoad('cp0', 'cp1')}
          (local.set $ap0 (i32.add ${get('a')} (i32.shl (i32.add (i32.mul ${get('m0')} ${get('K')}) ${get('k')}) (i32.const 2))))
          (local.set $ap1 (i32.add ${get('ap0')} (i32.shl (i32.sub ${get('k1')} ${get('k')}) (i32.const 2))))
          (local.set $bp (i32.add ${get('b')} (i32.shl (i32.add (i32.mul ${get('m0')} ${get('N')}) ${get('j')}) (i32.const 2))))
          (local.set $m ${get('m0')})
          (block $m_done (loop $ms
            (br_if $m_done (i32.ge_u ${get('m')} ${get('mend')}))
            (local.set $s0 (v128.load32_splat ${get('ap0')}))
            (local.set $s1 (v128.load32_splat ${get('ap1')}))
            ${tileMadd()}
            (local.set $ap0 (i32.add ${get('ap0')} ${get('kb')}))
            (local.set $ap1 (i32.add ${get('ap1')} ${get('kb')}))
            (local.set $bp (i32.add ${get('bp')} ${get('nb')}))
            (local.set $m (i32.add ${get('m')} (i32.const 1)))
            (br $ms)))
          ${tileStore('cp0', 'cp1')}
          (local.set $k (i32.add ${get('k')} (i32.const 2)))
          (br $krows)))
        (local.set $j (i32.add ${get('j')} (i32.const 16)))
        (br $cols)))
      (local.set $m0 ${get('mend')})
      (br $chunks)))
  )`;
}

/** colsum(M, N, a, out): out [N] += Σ_m a [m][N] (the bias gradient from dz). N a multiple of 16. */
function colsum(): string {
  return `
  (func (export "colsum") (param $M i32) (param $N i32) (param $a i32) (param $out i32)
    ${I32(['m', 'j', 'p', 'op', 'nb'])}
    ${V128(['acc0', 'acc1', 'acc2', 'acc3'])}
    (local.set $nb (i32.shl ${get('N')} (i32.const 2)))
    (block $cols_done (loop $cols
      (br_if $cols_done (i32.ge_u ${get('j')} ${get('N')}))
      (local.set $op ${at('out', get('j'))})
      ${[0, 1, 2, 3].map((v) => `(local.set $acc${v} (v128.load offset=${v * 16} ${get('op')}))`).join(' ')}
      (local.set $p ${at('a', get('j'))})
      (local.set $m (i32.const 0))
      (block $m_done (loop $ms
        (br_if $m_done (i32.ge_u ${get('m')} ${get('M')}))
        ${[0, 1, 2, 3].map((v) => `(local.set $acc${v} (f32x4.add ${get(`acc${v}`)} (v128.load offset=${v * 16} ${get('p')})))`).join(' ')}
        (local.set $p (i32.add ${get('p')} ${get('nb')}))
        (local.set $m (i32.add ${get('m')} (i32.const 1)))
        (br $ms)))
      ${[0, 1, 2, 3].map((v) => `(v128.store offset=${v * 16} ${get('op')} ${get(`acc${v}`)})`).join(' ')}
      (local.set $j (i32.add ${get('j')} (i32.const 16)))
      (br $cols)))
  )`;
}

/** steps_to_rows(B, T, H, h, out): out [B][T][H] = h [t][b] for t < T of h [T+1][B][H] (each step's h_prev, row-major). */
function stepsToRows(): string {
  return `
  (func (export "steps_to_rows") (param $B i32) (param $T i32) (param $H i32) (param $h i32) (param $out i32)
    ${I32(['b', 't', 'hb', 'o'])}
    (local.set $hb (i32.shl ${get('H')} (i32.const 2)))
    (local.set $o ${get('out')})
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u ${get('b')} ${get('B')}))
      (local.set $t (i32.const 0))
      (block $steps_done (loop $steps
        (br_if $steps_done (i32.ge_u ${get('t')} ${get('T')}))
        (memory.copy ${get('o')} (i32.add ${get('h')} (i32.mul (i32.add (i32.mul ${get('t')} ${get('B')}) ${get('b')}) ${get('hb')})) ${get('hb')})
        (local.set $o (i32.add ${get('o')} ${get('hb')}))
        (local.set $t (i32.add ${get('t')} (i32.const 1)))
        (br $steps)))
      (local.set $b (i32.add ${get('b')} (i32.const 1)))
      (br $rows)))
  )`;
}

/**
 * opt_step(kind, n, parts, P, w, a, b, lr, c1, c2): the training engine's optimizer step (src/optim.ts's
 * FlatOptimizer.applyParts) on n floats (a multiple of 4): g = parts[0] + parts[1] + … + parts[P-1] (in
 * part order; the parts are n floats apart), then kind 0, RMSprop (a: mean squares, b: moments), or 1,
 * Adam (a: first, b: second moments; c1, c2 the bias corrections 1 − β^t), each float32 operation as
 * FlatOptimizer.apply rounds it. Always strict (no fused multiply-add, in either build): the update
 * must equal tfjs's.
 */
function optStep(): string {
  const c = (v: number) => splat(Math.fround(v));
  const l = (n: string) => get(n);
  const ld = (p: string) => `(v128.load ${get(p)})`;
  return `
  (func (export "opt_step") (param $kind i32) (param $n i32) (param $parts i32) (param $P i32) (param $w i32) (param $a i32) (param $b i32) (param $lr f32) (param $c1 f32) (param $c2 f32)
    ${I32(['i', 'p', 'gp', 'nb', 'wp', 'ap', 'bp'])}
    ${V128(['g', 'x', 'y', 'lrv', 'c1v', 'c2v'])}
    (local.set $nb (i32.shl ${l('n')} (i32.const 2)))
    (local.set $lrv (f32x4.splat ${l('lr')}))
    (local.set $c1v (f32x4.splat ${l('c1')}))
    (local.set $c2v (f32x4.splat ${l('c2')}))
    (local.set $wp ${l('w')}) (local.set $ap ${l('a')}) (local.set $bp ${l('b')})
    (block $done (loop $elems
      (br_if $done (i32.ge_u ${l('i')} ${l('n')}))
      ;; g: the parts summed in order
      (local.set $gp (i32.add ${l('parts')} (i32.shl ${l('i')} (i32.const 2))))
      (local.set $g (v128.load ${l('gp')}))
      (local.set $p (i32.const 1))
      (block $sum_done (loop $sum
        (br_if $sum_done (i32.ge_u ${l('p')} ${l('P')}))
        (local.set $gp (i32.add ${l('gp')} ${l('nb')}))
        (local.set $g (f32x4.add ${l('g')} (v128.load ${l('gp')})))
        (local.set $p (i32.add ${l('p')} (i32.const 1)))
        (br $sum)))
      (if (i32.eqz ${l('kind')})
        (then
          ;; RMSprop: ms' = ms·ρ + g²·(1 − ρ); mom' = mom·0 + g·lr / sqrt(ms' + ε); w' = w − mom'
          (local.set $x (f32x4.add (f32x4.mul ${ld('ap')} ${c(0.9)}) (f32x4.mul (f32x4.mul ${l('g')} ${l('g')}) ${c(1 - 0.9)})))
          (v128.store ${l('ap')} ${l('x')})
          (local.set $y (f32x4.add (f32x4.mul ${ld('bp')} ${c(0)}) (f32x4.div (f32x4.mul ${l('g')} ${l('lrv')}) (f32x4.sqrt (f32x4.add ${l('x')} ${c(1e-7)})))))
          (v128.store ${l('bp')} ${l('y')})
          (v128.store ${l('wp')} (f32x4.sub ${ld('wp')} ${l('y')})))
        (else
          ;; Adam: m' = m·β1 + g·(1 − β1); v' = v·β2 + g²·(1 − β2); w' = (m'/c1) / (sqrt(v'/c2) + ε) · (−lr) + w
          (local.set $x (f32x4.add (f32x4.mul ${ld('ap')} ${c(0.9)}) (f32x4.mul ${l('g')} ${c(1 - 0.9)})))
          (local.set $y (f32x4.add (f32x4.mul ${ld('bp')} ${c(0.999)}) (f32x4.mul (f32x4.mul ${l('g')} ${l('g')}) ${c(1 - 0.999)})))
          (v128.store ${l('ap')} ${l('x')})
          (v128.store ${l('bp')} ${l('y')})
          (v128.store ${l('wp')} (f32x4.add (f32x4.mul (f32x4.div (f32x4.div ${l('x')} ${l('c1v')}) (f32x4.add (f32x4.sqrt (f32x4.div ${l('y')} ${l('c2v')})) ${c(1e-7)})) (f32x4.neg ${l('lrv')})) ${ld('wp')}))))
      (local.set $wp (i32.add ${l('wp')} (i32.const 16)))
      (local.set $ap (i32.add ${l('ap')} (i32.const 16)))
      (local.set $bp (i32.add ${l('bp')} (i32.const 16)))
      (local.set $i (i32.add ${l('i')} (i32.const 4)))
      (br $elems)))
  )`;
}

/** The module's text; fma: fused multiply-adds (needs relaxed SIMD), else the strict module. */
export function lstmWat(fma = false): string {
  FMA = fma;
  return `(module
  (memory (export "memory") 1)${lstmFunction(false)}${lstmFunction(true)}${backwardFunction()}${gemmNN()}${gemmTN()}${colsum()}${stepsToRows()}${optStep()}
)
`;
}
