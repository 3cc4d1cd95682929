import * as tf from '@tensorflow/tfjs-core';
import '../tf-gradients.ts';
import { UserError } from '../util/errors.ts';

import { BACKEND_CHOICES, type BackendChoice } from './choices.ts';
export { BACKEND_CHOICES, type BackendChoice };
type ConcreteBackend = Exclude<BackendChoice, 'auto'>;

/** The tfjs backend in use after `selectBackend`: the concrete choice, tfjs' name for it and its native accelerator, if any. */
export interface SelectedBackend {
  /** What the user asked for or what `auto` resolved to. */
  choice: ConcreteBackend;
  /** tfjs' own backend name (`tensorflow`, `wasm`, `cpu`). */
  tfName: string;
  detail: string;
  /** The native accelerator under the wasm backend, when it is in use (`wasm-onednn`). */
  accelerator?: { name: 'oneDNN'; version: string; isa: string; runtime: string; threads: number };
}

/** Order `auto` tries: the fastest engine that loads on this machine wins. */
const AUTO_ORDER: ConcreteBackend[] = ['tensorflow-gpu', 'tensorflow', 'wasm-onednn', 'wasm', 'cpu'];

// Module names are held in variables so TypeScript does not require the optional packages to exist.
const NODE_GPU_PKG = '@tensorflow/tfjs-node-gpu';
const NODE_CPU_PKG = '@tensorflow/tfjs-node';

async function load(choice: ConcreteBackend): Promise<SelectedBackend> {
  switch (choice) {
    case 'tensorflow-gpu':
    case 'tensorflow': {
      const pkg = choice === 'tensorflow-gpu' ? NODE_GPU_PKG : NODE_CPU_PKG;
      await import(pkg);
      if (!(await tf.setBackend('tensorflow'))) throw new Error(`${pkg} loaded but the tensorflow backend did not initialise`);
      return { choice, tfName: 'tensorflow', detail: `${pkg} (libtensorflow)` };
    }
    case 'wasm-onednn': {
      // The accelerator first: if it cannot load, nothing of the wasm backend has been set up for it.
      const { loadOnednn, setOnednnActive, onednnThreadsFromEnv } = await import('./wasm/onednn.ts');
      const acc = await loadOnednn();
      if ('reason' in acc) throw new Error(`oneDNN accelerator unavailable: ${acc.reason}`);
      const wasm = await load('wasm');
      // Thread policy: oneDNN takes as many threads as the wasm pool (FEWSHOT_WASM_THREADS, else 2 on a multi-core
      // machine), so a single run uses both cores in oneDNN's kernels too, and the runs `reproduce` puts side by side
      // (FEWSHOT_WASM_THREADS=1 in each) keep to one core each. Measured on the quiet 2-core development machine
      // (docs/native.md, Threads): one oneDNN thread beside a 2-thread wasm pool gave no wall-time gain over plain
      // wasm (ProtoNet+SLA 32 px step 258 vs 251 ms), two gave 1.58x (188 vs 297 ms), and the 84 px 30-way step of
      // the paper protocol went from 2.7-3.1 s to 1.6 s (plain wasm 2.7 s). Under heavy load from other processes
      // one thread was better: more threads than free cores only contend.
      const { wasmThreadsFromEnv } = await import('./wasm/threads.ts');
      acc.addon.setThreads(onednnThreadsFromEnv() ?? wasmThreadsFromEnv());
      setOnednnActive(acc.addon);
      const { version, isa, runtime, threads } = acc.addon.info();
      return {
        choice,
        tfName: 'wasm',
        detail: `wasm+onednn: oneDNN ${version} (${isa}, ${runtime} ${threads} thread${threads === 1 ? '' : 's'}) for convolutions, batch norm + ReLU + max pool, add + leaky ReLU + max pool, leaky ReLU, matMul and Adam; ${wasm.detail}`,
        accelerator: { name: 'oneDNN', version, isa, runtime, threads },
      };
    }
    case 'wasm': {
      const { setOnednnActive } = await import('./wasm/onednn.ts');
      setOnednnActive(null);
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const { registerWasmTrainingKernels, wasmThreadsInUse } = await import('./wasm/register.ts');
      const { helperThreadInUse } = await import('./wasm/native.ts');
      const { guardWasmHeap } = await import('./wasm/heap.ts');
      registerWasmTrainingKernels();
      if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not initialise');
      guardWasmHeap(tf.backend() as unknown as Parameters<typeof guardWasmHeap>[0]);
      const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
      const threads = wasmThreadsInUse();
      const helper = helperThreadInUse(tf.backend() as unknown as Parameters<typeof helperThreadInUse>[0]);
      const threading = `${threads} XNNPACK thread${threads === 1 ? '' : 's'}${helper ? ' + helper thread' : ''}`;
      return {
        choice,
        tfName: 'wasm',
        detail: `@tensorflow/tfjs-backend-wasm ${wasm.version_wasm} (XNNPACK, SIMD ${simd ? 'on' : 'off'}, ${threading}, training kernels registered)`,
      };
    }
    case 'cpu': {
      await import('@tensorflow/tfjs-backend-cpu');
      if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend did not initialise');
      return { choice, tfName: 'cpu', detail: '@tensorflow/tfjs-backend-cpu (pure JavaScript, slow)' };
    }
  }
}

function why(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0];
}

/**
 * Activate a tfjs backend. `auto` takes the first of tensorflow-gpu, tensorflow, wasm, cpu that loads.
 * Naming a backend that cannot load is a UserError that says how to get it.
 */
export async function selectBackend(choice: string): Promise<SelectedBackend> {
  if (!(BACKEND_CHOICES as readonly string[]).includes(choice)) {
    throw new UserError(`unknown backend "${choice}"`, `use one of: ${BACKEND_CHOICES.join(', ')}`);
  }
  if (choice === 'wasm' || choice === 'wasm-onednn' || choice === 'auto') {
    // A bad FEWSHOT_WASM_THREADS is the user's to fix, not a reason to fall back to another backend.
    const { wasmThreadsFromEnv } = await import('./wasm/threads.ts');
    wasmThreadsFromEnv();
    const { onednnThreadsFromEnv } = await import('./wasm/onednn.ts');
    onednnThreadsFromEnv();
  }
  if (choice !== 'auto') {
    try {
      const sel = await load(choice as ConcreteBackend);
      await tf.ready();
      return sel;
    } catch (err) {
      const fix =
        choice === 'tensorflow-gpu' || choice === 'tensorflow'
          ? `install it with its libtensorflow download allowed: \`npm install-scripts approve ${choice === 'tensorflow-gpu' ? NODE_GPU_PKG : NODE_CPU_PKG} && npm rebuild ${choice === 'tensorflow-gpu' ? NODE_GPU_PKG : NODE_CPU_PKG}\` (needs internet; GPU needs CUDA 11.2 + cuDNN 8.1), or use --backend wasm`
          : choice === 'wasm-onednn'
            ? 'install oneDNN (Debian/Ubuntu: `apt-get install libdnnl-dev`), then `npm ci` builds the addon (see docs/native.md); or use --backend wasm'
            : 'reinstall dependencies with `npm ci`, or pick another --backend';
      throw new UserError(`backend "${choice}" cannot load: ${why(err)}`, fix);
    }
  }
  const failures: string[] = [];
  for (const candidate of AUTO_ORDER) {
    try {
      const sel = await load(candidate);
      await tf.ready();
      // The detail is recorded in results: no path of this machine in it (Node's "imported from /abs/path").
      const skipped = failures.map((f) => f.replace(/ imported from \S+?(?=\)|$)/g, ''));
      return { ...sel, detail: `${sel.detail}; auto skipped: ${skipped.join('; ') || 'nothing'}` };
    } catch (err) {
      failures.push(`${candidate} (${why(err)})`);
    }
  }
  throw new UserError(`no tfjs backend could load: ${failures.join('; ')}`, 'reinstall dependencies with `npm ci`');
}
