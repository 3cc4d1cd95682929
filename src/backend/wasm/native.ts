/**
 * Loads the SIMD helper module (native/kernels.c, compiled by native/build.sh) onto the wasm backend's own
 * linear memory, so its loops read and write tensors in place. JS scalar loops run at ~2-3 ns per element;
 * these run several times faster, which matters for the memory-bound parts of a training step (batch norm,
 * max-pool gradient, reductions). Returns null if the module cannot be instantiated (callers keep JS paths).
 */
import { PLAIN_MEMORY_WASM, SHARED_MEMORY_WASM } from './native/kernels_wasm.ts';
import type { BackendWasm } from './heap.ts';
import { HelperThread, type NativeCall } from './helper_thread.ts';
import type { NativeKernels } from './native/signatures.ts';

export type { NativeKernels, WindowArgs } from './native/signatures.ts';

interface EmscriptenModule {
  asm?: { memory?: WebAssembly.Memory };
  wasmMemory?: WebAssembly.Memory;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}

const compiled = new Map<string, WebAssembly.Module>();
const instances = new WeakMap<object, NativeKernels | null>();
let disabled = process.env.FEWSHOT_WASM_NATIVE === '0';

function moduleFor(shared: boolean): WebAssembly.Module {
  const key = shared ? 'shared' : 'plain';
  let m = compiled.get(key);
  if (m == null) {
    m = new WebAssembly.Module(Buffer.from(shared ? SHARED_MEMORY_WASM : PLAIN_MEMORY_WASM, 'base64'));
    compiled.set(key, m);
  }
  return m;
}

/** The helper kernels bound to `backend`'s heap, or null when unavailable (or disabled for A/B timing). */
export function nativeKernels(backend: BackendWasm): NativeKernels | null {
  if (disabled) return null;
  const mod = backend.wasm as unknown as EmscriptenModule;
  if (instances.has(mod)) return instances.get(mod) ?? null;
  let kernels: NativeKernels | null = null;
  try {
    const memory = mod.wasmMemory ?? mod.asm?.memory;
    if (memory != null) {
      const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
      const instance = new WebAssembly.Instance(moduleFor(shared), { env: { memory } });
      kernels = instance.exports as unknown as NativeKernels;
    }
  } catch {
    kernels = null;
  }
  instances.set(mod, kernels);
  return kernels;
}

const helpers = new WeakMap<object, HelperThread | null>();
let helperDisabled = process.env.FEWSHOT_WASM_HELPER_THREAD === '0';

/** The helper thread for `backend` (threaded build only: it needs the shared heap), or null. */
function helperThread(backend: BackendWasm, kernels: NativeKernels): HelperThread | null {
  if (helperDisabled) return null;
  const mod = backend.wasm as unknown as EmscriptenModule;
  if (helpers.has(mod)) return helpers.get(mod) ?? null;
  let helper: HelperThread | null = null;
  const memory = mod.wasmMemory ?? mod.asm?.memory;
  if (memory != null && typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer) {
    try {
      helper = new HelperThread(moduleFor(true), memory, kernels);
    } catch {
      helper = null;
    }
  }
  helpers.set(mod, helper);
  return helper;
}

/**
 * Runs two independent lists of helper-kernel calls (disjoint output ranges): concurrently on the main and the
 * helper thread when there is one, else one after the other here.
 */
export function runNativeSplit(backend: BackendWasm, kernels: NativeKernels, [mine, theirs]: [NativeCall[], NativeCall[]]): void {
  const helper = helperThread(backend, kernels);
  if (helper != null) {
    helper.run(mine, theirs);
    return;
  }
  for (const [name, ...a] of [...mine, ...theirs]) (kernels[name] as (...x: number[]) => void)(...a);
}

/** Whether `backend`'s helper kernels split their work with a helper thread (starting it if it can). */
export function helperThreadInUse(backend: BackendWasm): boolean {
  const kernels = nativeKernels(backend);
  return kernels != null && helperThread(backend, kernels) != null;
}

/** Turns the helper thread off/on (benchmarks and tests compare both). Affects backends created afterwards too. */
export function setHelperThreadEnabled(enabled: boolean): void {
  helperDisabled = !enabled;
}

/** Turns the SIMD helpers off/on (benchmarks compare against the JS loops). */
export function setNativeKernelsEnabled(enabled: boolean): void {
  disabled = !enabled;
}

const scratchByModule = new WeakMap<object, { ptr: number; bytes: number }>();

/**
 * A per-backend scratch area of at least `bytes` on the heap (reused across calls, 16-byte aligned).
 * May grow the heap: take typed-array views only after calling this.
 */
export function scratch(backend: BackendWasm, bytes: number): number {
  const mod = backend.wasm as unknown as EmscriptenModule;
  let s = scratchByModule.get(mod);
  if (s == null || s.bytes < bytes) {
    if (s != null) mod._free(s.ptr);
    const size = Math.max(bytes, 4096);
    s = { ptr: mod._malloc(size) >>> 0, bytes: size };
    scratchByModule.set(mod, s);
  }
  return s.ptr;
}
