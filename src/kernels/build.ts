// Build step (`npm run build`, after tsc): compile the generated LSTM kernel text to
// dist/src/kernels/lstm.wasm with wabt (a dev dependency; the .wasm ships in the package).
import { fileURLToPath } from 'node:url';
import wabt from 'wabt';
import { lstmWat } from './lstmwat.js';
import { writeFileAtomic } from '../atomic.js';

const out = fileURLToPath(new URL('./lstm.wasm', import.meta.url));
const w = await wabt();
const mod = w.parseWat('lstm.wat', lstmWat(), { simd: true, bulk_memory: true });
try {
  mod.validate();
  writeFileAtomic(out, [mod.toBinary({}).buffer], false);
} finally {
  mod.destroy();
}
