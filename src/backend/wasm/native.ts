/**
 * Loads the SIMD helper module (native/kernels.c, compiled by native/build.sh) onto the wasm backend's own
 * linear memory, so its loops read and write tensors in place. JS scalar loops run at ~2-3 ns per element;
 * these run several times faster, which matters for the memory-bound parts of a training step (batch norm,
 * max-pool gradient, reductions). Returns null if the module cannot be instantiated (callers keep JS paths).
 */
import { PLAIN_MEMORY_WASM, SHARED_MEMORY_WASM } from './native/kernels_wasm.ts';
import type { BackendWasm } from './heap.ts';
import { HelperThread, type NativeCall } from './helper_thread.ts';

/** Pointers are byte offsets into the backend heap; `double*` scratch comes from `scratch()`. */
export interface NativeKernels {
  bn_sums(x: number, P: number, C: number, s1: number, s2: number, blk: number): void;
  bn_apply(x: number, y: number, P: number, C: number, scale: number, shift: number, act: number, alpha: number): void;
  bn_grad_sums(dy: number, x: number, y: number, P: number, C: number, mean: number, act: number, alpha: number, sdy: number, sdyx: number, blk: number): void;
  bn_grad_apply(dy: number, x: number, y: number, dx: number, P: number, C: number, k1: number, k2: number, k3: number, act: number, alpha: number): void;
  max_pool_grad_2x2(x: number, dy: number, dx: number, N: number, H: number, W: number, C: number, OH: number, OW: number, OHfull: number, OWfull: number): void;
  reduce_middle(x: number, out: number, outer: number, R: number, inner: number, scale: number, acc: number): void;
  to_channel_major(x: number, xT: number, plane: number, C: number): void;
  fill_col_t(xT: number, col: number, count: number, H: number, W: number, C: number, OH: number, OW: number, KH: number, KW: number, sh: number, sw: number, pt: number, pl: number): void;
  add_into(acc: number, part: number, n: number): void;
  im2col(x: number, col: number, count: number, H: number, W: number, C: number, OH: number, OW: number, KH: number, KW: number, sh: number, sw: number, pt: number, pl: number): void;
  filter_grad_c3(xp: number, dy: number, dW: number, count: number, OH: number, OW: number, KH: number, KW: number, CO: number): void;
  pad_images(x: number, xp: number, count: number, H: number, W: number, C: number, PH: number, PW: number, pt: number, pl: number): void;
  gemm_atb_acc(A: number, B: number, C: number, T: number, M: number, N: number, lda: number, ldb: number): void;
  gemm_ab(A: number, B: number, C: number, T: number, K: number, N: number, lda: number): void;
  bn_act_pool_apply(x: number, p: number, N: number, H: number, W: number, C: number, scale: number, shift: number, act: number, alpha: number): void;
  bn_act_pool_grad_sums(dp: number, x: number, N: number, H: number, W: number, C: number, scale: number, shift: number, mean: number, act: number, alpha: number, sdy: number, sdyx: number, blk: number): void;
  bn_act_pool_grad_apply(dp: number, x: number, dx: number, N: number, H: number, W: number, C: number, scale: number, shift: number, k1: number, k2: number, k3: number, act: number, alpha: number): void;
  wino_filter_transform(w: number, U: number, Ci: number, Co: number): void;
  wino_filter_grad_transform(dU: number, dW: number, Ci: number, Co: number): void;
  wino_input_transform(x: number, V: number, count: number, H: number, W: number, C: number, TH: number, TW: number, pt: number, pl: number, T: number): void;
  wino_output_transform(M: number, y: number, count: number, OH: number, OW: number, C: number, TH: number, TW: number, T: number): void;
  wino_output_grad_transform(dy: number, Wd: number, count: number, OH: number, OW: number, C: number, TH: number, TW: number, T: number): void;
}

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
