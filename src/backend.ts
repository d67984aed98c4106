// TensorFlow.js backend choice: tfjs-node when it loads, else wasm (SIMD, one thread), else cpu.
// `--backend` forces one. The choice and the reason are logged.
import path from 'node:path';
import { createRequire } from 'node:module';
import type * as TF from '@tensorflow/tfjs';
import type { Logger } from './log.js';
import { UserError } from './errors.js';
import { lstmKernel } from './kernels/lstm.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export type Tf = typeof TF;

export interface BackendChoice {
  tf: Tf;
  backend: BackendName;
  reason: string;
  tried: { backend: BackendName; error: string }[];
}

const require = createRequire(import.meta.url);

export interface Loaders {
  node(): Promise<Tf>;
  js(): Promise<Tf>;
  wasm(tf: Tf): Promise<void>;
}

const defaultLoaders: Loaders = {
  async node() {
    const name = '@tensorflow/tfjs-node';
    return (await import(name)) as Tf;
  },
  async js() {
    return (await import('@tensorflow/tfjs')) as unknown as Tf;
  },
  async wasm() {
    const w = await import('@tensorflow/tfjs-backend-wasm');
    w.setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')) + path.sep + 'dist' + path.sep);
  },
};

let chosen: BackendChoice | null = null;

/** Pick and initialise a backend once per process. `loaders` is replaceable for tests. */
export async function initBackend(want: BackendName | 'auto' = 'auto', log?: Logger, loaders: Loaders = defaultLoaders): Promise<BackendChoice> {
  if (chosen && (want === 'auto' || want === chosen.backend)) return chosen;
  const tried: BackendChoice['tried'] = [];
  const order: BackendName[] = want === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [want];
  for (const b of order) {
    try {
      let tf: Tf;
      if (b === 'tensorflow') tf = await loaders.node();
      else {
        tf = await loaders.js();
        if (b === 'wasm') await loaders.wasm(tf);
      }
      const ok = await tf.setBackend(b);
      if (!ok) throw new Error(`tf.setBackend('${b}') returned false`);
      await tf.ready();
      const reason =
        want !== 'auto' ? `forced by --backend ${b}` : tried.length === 0 ? 'first choice' : `fallback: ${tried.map((t) => `${t.backend} unavailable (${t.error})`).join('; ')}`;
      chosen = { tf, backend: b, reason, tried };
      // the LSTM (training, predict, evaluate) runs in flowtensor's own WebAssembly kernel when it loads
      log?.info({ backend: b, reason, lstm: lstmKernel().reason }, 'tensorflow backend');
      return chosen;
    } catch (e) {
      if (e instanceof UserError) throw e; // a setting of the user's (FLOWTENSOR_LSTM_KERNEL), not this backend's failure
      tried.push({ backend: b, error: String((e as Error).message ?? e).split('\n')[0].slice(0, 160) });
    }
  }
  throw new UserError(`no TensorFlow.js backend could start: ${tried.map((t) => `${t.backend}: ${t.error}`).join('; ')}`);
}

/** For tests: forget the cached choice. */
export function resetBackendChoice(): void {
  chosen = null;
}
