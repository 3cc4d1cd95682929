/**
 * Multithreaded XNNPACK for the wasm backend under Node.
 *
 * tfjs-backend-wasm ships a pthreads build (tfjs-backend-wasm-threaded-simd.*) but never uses it under Node:
 * its WASM_HAS_MULTITHREAD_SUPPORT flag is hard-wired to false there, and its loader hands emscripten the
 * worker script as a Blob URL, which Node's worker_threads cannot load. This module builds the threaded module
 * itself and re-registers the 'wasm' backend factory before it is first initialised:
 * - the worker script (exported by the package as a string) runs from memory (worker_threads' `eval`), never from a
 *   file: a script under the shared temp folder could be planted by another local user and would then run as this
 *   one (issue 26 #1), and a private copy would still need its content checked at every start;
 * - the C++ side sizes its thread pool as min(requested, logical cores / 2), i.e. 1 on a 2-vCPU machine, so the
 *   core count emscripten reads (os.cpus()) is presented as 2 x requested during module start-up only;
 * - pthread workers are started without the parent's --import hooks (tsx), which they do not need.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as wasmPackage from '@tensorflow/tfjs-backend-wasm';
import { UserError } from '../../util/errors.ts';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Worker as NodeWorker, type WorkerOptions } from 'node:worker_threads';

const require = createRequire(import.meta.url);

interface ThreadedModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  tfjs?: unknown;
  PThread?: { unusedWorkers: NodeWorker[]; runningWorkers: NodeWorker[] };
}
type ThreadedFactory = (config: Record<string, unknown>) => Promise<ThreadedModule>;

/**
 * The name emscripten is given for the pthread worker script (via locateFile): not a file. The Worker class
 * installed below recognises it and starts the worker from the package's own source string instead.
 */
const IN_MEMORY_WORKER = 'fewshot:tfjs-backend-wasm-threaded-simd.worker.js';

async function createThreadedModule(threads: number): Promise<ThreadedModule> {
  const mainScript = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const dir = path.dirname(mainScript);
  const factory = require(mainScript) as ThreadedFactory;
  // The package exports the worker source as a template-literal string; like tfjs' own Blob path, escape its
  // newlines back to "\n" (they sit inside string literals of the generated code).
  const { wasmWorkerContents } = require(path.join(dir, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
  const workerSource = wasmWorkerContents.replace(/\n/g, '\\n');

  const osModule = require('node:os') as typeof os;
  const realCpus = osModule.cpus;
  const cpuList = realCpus.call(osModule);
  const fakeCpus = Array.from({ length: 2 * threads }, (_, i) => cpuList[i % Math.max(1, cpuList.length)]);
  osModule.cpus = () => fakeCpus;
  // Emscripten takes its Worker class from require('worker_threads') while the factory runs, and spawns the pool
  // then (synchronously); the class in its place for that moment starts the worker from memory.
  const workerThreads = require('node:worker_threads') as { Worker: typeof NodeWorker };
  const g = globalThis as unknown as { Worker?: unknown };
  const previousWorker = g.Worker;
  workerThreads.Worker = class extends NodeWorker {
    constructor(filename: string | URL, options: WorkerOptions = {}) {
      // The script runs as CommonJS with `require` (as from a .cjs file); its `__filename` is "[worker eval]",
      // used only as `location.href`, and it loads the main script from `mainScriptUrlOrBlob` (the package's).
      if (filename === IN_MEMORY_WORKER) super(workerSource, { ...options, eval: true, execArgv: [] });
      else super(filename, { ...options, execArgv: [] });
    }
  };
  try {
    const pending = factory({
      locateFile: (file: string, prefix: string) =>
        file.endsWith('.worker.js') ? IN_MEMORY_WORKER : file.endsWith('.wasm') ? path.join(dir, 'tfjs-backend-wasm-threaded-simd.wasm') : prefix + file,
      mainScriptUrlOrBlob: mainScript,
    });
    const mod = await pending;
    mod.tfjs = {
      init: mod.cwrap('init', null, []),
      initWithThreadsCount: mod.cwrap('init_with_threads_count', null, ['number']),
      getThreadsCount: mod.cwrap('get_threads_count', 'number', []),
      registerTensor: mod.cwrap('register_tensor', null, ['number', 'number', 'number']),
      disposeData: mod.cwrap('dispose_data', null, ['number']),
      dispose: mod.cwrap('dispose', null, []),
    };
    return mod;
  } finally {
    osModule.cpus = realCpus;
    workerThreads.Worker = NodeWorker;
    g.Worker = previousWorker;
  }
}

let configuredThreads = 0;

/** Whether the 'wasm' backend was already created (tf.findBackend would start creating it, so look directly). */
function wasmBackendCreated(): boolean {
  const engine = tf.engine() as unknown as { registry: Record<string, unknown>; pendingBackendInitId?: number; pendingBackendInit?: unknown };
  return engine.registry.wasm != null || engine.pendingBackendInit != null;
}

/**
 * Makes the next initialisation of the 'wasm' backend use the threaded XNNPACK build with `threads` threads
 * (>= 2; 1 keeps the stock single-threaded build). Must run before the backend is first used; returns false
 * (and changes nothing) if it already is. Idempotent for the same count.
 */
export function useWasmThreads(threads: number): boolean {
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`wasm thread count must be a positive integer, got ${threads}`);
  if (threads === configuredThreads) return true;
  if (wasmBackendCreated()) return false;
  if (threads === 1) {
    configuredThreads = 1;
    return true;
  }
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      // The stock loader evaluates this flag before creating the backend; callers read it synchronously.
      if (!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))) throw new Error('the threaded wasm build needs WebAssembly SIMD');
      const mod = await createThreadedModule(threads);
      wasmPackage.setThreadsCount(threads);
      const backend = new wasmPackage.BackendWasm(mod as unknown as ConstructorParameters<typeof wasmPackage.BackendWasm>[0]);
      // XNNPACK's pool threads live as long as the backend and emscripten keeps their workers ref'd, which would
      // stop Node from exiting when the program is done. They only serve synchronous calls from this thread.
      for (const worker of [...(mod.PThread?.runningWorkers ?? []), ...(mod.PThread?.unusedWorkers ?? [])]) worker.unref();
      return backend;
    },
    2,
  );
  configuredThreads = threads;
  return true;
}

/** Threads XNNPACK actually runs with on the initialised wasm backend (1 for the stock build). */
export function wasmThreadsInUse(): number {
  return wasmBackendCreated() ? Math.max(1, wasmPackage.getThreadsCount()) : 0;
}

/**
 * The thread count for the wasm backend: FEWSHOT_WASM_THREADS if set (1 = the stock single-threaded build),
 * else 2 on machines with at least 2 logical CPUs. Two, not all cores: the helper kernels use the main thread
 * plus one helper thread, and on this toolkit's workloads (Conv-4 / ResNet-12 episodes) XNNPACK's own products
 * are a minority of a step.
 */
export function wasmThreadsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.FEWSHOT_WASM_THREADS;
  if (raw == null || raw.trim() === '') return Math.min(2, Math.max(1, os.availableParallelism()));
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new UserError(
      `FEWSHOT_WASM_THREADS="${raw}" is not a thread count`,
      'set it to a whole number from 1 (single-threaded) to 64, or unset it for the default (2 on multi-core machines)',
    );
  }
  return n;
}
