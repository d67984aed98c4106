// Build step (`npm run build`, after tsc): compile the generated LSTM kernel text to
// dist/src/kernels/lstm.wasm (strict: a multiply then an add) and lstm-fma.wasm (fused multiply-add,
// relaxed SIMD), the CSV delimiter scan to csv.wasm and the scaler to scale.wasm, with wabt (a dev dependency; the .wasm files ship in the package).
import { fileURLToPath } from 'node:url';
import wabt from 'wabt';
import { lstmWat } from './lstmwat.js';
import { csvWat } from './csvwat.js';
import { scaleWat } from './scalewat.js';
import { writeFileAtomic } from '../atomic.js';

const w = await wabt();
for (const [name, fma, text] of [['lstm.wasm', false, lstmWat(false)], ['lstm-fma.wasm', true, lstmWat(true)], ['csv.wasm', false, csvWat()], ['scale.wasm', false, scaleWat()]] as const) {
  const out = fileURLToPath(new URL(`./${name}`, import.meta.url));
  const mod = w.parseWat(name.replace('.wasm', '.wat'), text, { simd: true, bulk_memory: true, relaxed_simd: fma });
  try {
    mod.validate();
    writeFileAtomic(out, [mod.toBinary({}).buffer], false);
  } finally {
    mod.destroy();
  }
}
