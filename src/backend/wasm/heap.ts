/**
 * Direct access to the wasm backend's heap, so gradient kernels can run tight JS loops over tensor memory
 * (no readSync copies) and hand buffers to the backend's own XNNPACK kernels.
 *
 * Every tensor of the wasm backend lives in one linear memory; `dataIdMap.get(dataId).memoryOffset` is its
 * byte offset. Views must be taken fresh after any allocation: a malloc may grow the memory and replace the
 * buffer behind `HEAPF32`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { UserError } from '../../util/errors.ts';

export type { BackendWasm };

/** A float32 view of one tensor's memory. Invalidated by the next allocation on the backend. */
export function f32View(backend: BackendWasm, info: tf.TensorInfo): Float32Array {
  const { memoryOffset } = backend.dataIdMap.get(info.dataId);
  const size = tf.util.sizeFromShape(info.shape);
  return new Float32Array(heapF32(backend).buffer, memoryOffset, size);
}

/** The byte offset of a tensor in the wasm heap. */
export function offsetOf(backend: BackendWasm, info: tf.TensorInfo): number {
  return backend.dataIdMap.get(info.dataId).memoryOffset;
}

/** The whole heap as float32 (index = byteOffset / 4). Invalidated by the next allocation. */
export function heapF32(backend: BackendWasm): Float32Array {
  const mod = backend.wasm as unknown as { HEAPF32: Float32Array; wasmMemory?: WebAssembly.Memory };
  // Threaded build: the memory is shared and a pool thread could grow it, leaving emscripten's main-thread
  // views short until its next own allocation. The Memory object always knows the current size.
  const memory = mod.wasmMemory;
  if (memory != null && memory.buffer.byteLength !== mod.HEAPF32.buffer.byteLength) return new Float32Array(memory.buffer);
  return mod.HEAPF32;
}

/** Allocates an uninitialised float32 tensor on the wasm heap (registered with the backend's C++ side). */
export function allocF32(backend: BackendWasm, shape: number[]): tf.TensorInfo {
  return backend.makeOutput(shape, 'float32');
}

/** Frees an intermediate that was never handed to the engine. */
export function release(backend: BackendWasm, ...infos: tf.TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/** Same storage under another shape, for passing a tensor to a kernel that wants a different rank. */
export function reshaped(info: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

/** What tfjs passes to a kernel function. */
export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs: tf.NamedAttrMap;
}

type AnyKernelFunc = (params: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: BackendWasm }) => tf.TensorInfo | tf.TensorInfo[];

/** The stock configs of kernels we replaced, kept so our kernels can fall back to them. */
const replacedStock = new Map<string, tf.KernelConfig>();
/** Backends on which a saved stock kernel's setupFunc has run (the engine only sets up registered kernels). */
const stockSetupDone = new Map<string, WeakSet<object>>();

/** Remembers the stock implementation of a kernel before it is unregistered (first call wins). */
export function saveStockKernel(config: tf.KernelConfig): void {
  if (!replacedStock.has(config.kernelName)) replacedStock.set(config.kernelName, config);
}

/**
 * The wasm backend's own implementation of a kernel (the original even if we replaced it), so our kernels
 * can call XNNPACK Conv2D / BatchMatMul directly without going through the engine (no tape, no tidy) and
 * fall back to stock code for cases they do not specialise.
 */
export function stockKernel(kernelName: string): AnyKernelFunc {
  const saved = replacedStock.get(kernelName);
  if (saved == null) {
    const config = tf.getKernel(kernelName, 'wasm');
    if (config == null) throw new Error(`wasm backend has no ${kernelName} kernel to build on`);
    return config.kernelFunc as unknown as AnyKernelFunc;
  }
  const kernelFunc = saved.kernelFunc as unknown as AnyKernelFunc;
  const setup = saved.setupFunc;
  if (setup == null) return kernelFunc;
  return (params) => {
    // Unregistered before the backend initialised, its setup (cwrap of the C++ entry point) never ran.
    let done = stockSetupDone.get(kernelName);
    if (done == null) stockSetupDone.set(kernelName, (done = new WeakSet()));
    if (!done.has(params.backend)) {
      setup(params.backend);
      done.add(params.backend);
    }
    return kernelFunc(params);
  };
}

/** Runs a stock kernel that returns one tensor. */
export function runStock(kernel: AnyKernelFunc | string, backend: BackendWasm, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap): tf.TensorInfo {
  const fn = typeof kernel === 'string' ? stockKernel(kernel) : kernel;
  const out = fn({ inputs, attrs, backend });
  if (Array.isArray(out)) throw new Error('expected a single-output kernel');
  return out;
}

/** The wasm heap could not grow for an allocation (wasm32 addresses at most 4 GiB). */
export class WasmHeapExhaustedError extends UserError {
  constructor(bytes: number, heapBytes: number) {
    super(
      `the wasm backend's heap is full: allocating ${(bytes / 2 ** 20).toFixed(0)} MiB failed with ${(heapBytes / 2 ** 30).toFixed(2)} GiB already in use (wasm can address at most 4 GiB, and ${WASM_HEAP_RESERVE / 2 ** 20} MiB are kept for the backend's own allocations)`,
      'use fewer images per episode (--way / --shot / --query, or fewer SLA transformations), a smaller --image-size, or --backend tensorflow',
    );
  }
}

const guarded = new WeakSet<object>();

/** wasm32's address space, and what is kept free of tensors for the C++ side's own allocations. */
const WASM_HEAP_MAX = 2 ** 32;
export const WASM_HEAP_RESERVE = 512 * 2 ** 20;

/**
 * Makes tensor allocations fail with a clear error while the heap still has room for the backend's internal
 * ones. tfjs-backend-wasm does not check `_malloc`'s result, and its C++ side (tensor registry, XNNPACK
 * operators and their indirection buffers, up to ~100 MB for an 84 px batch of 400) allocates unchecked too:
 * when the heap ran out, a null pointer was written through, which corrupted the module's own data and ended in
 * "memory access out of bounds" (single-threaded) or a hang (threaded build). So an allocation from JS that
 * would reach into the top WASM_HEAP_RESERVE bytes is refused.
 */
export function guardWasmHeap(backend: BackendWasm): void {
  const mod = backend.wasm as unknown as {
    _malloc(bytes: number): number;
    _free(ptr: number): void;
    asm?: { malloc?: (bytes: number) => number };
    wasmMemory?: WebAssembly.Memory;
    HEAPU8: Uint8Array;
  };
  if (guarded.has(mod)) return;
  guarded.add(mod);
  // The raw export: emscripten's lazy `_malloc` wrapper replaces Module._malloc with it on first call, which
  // would drop this guard.
  const malloc = mod.asm?.malloc ?? mod._malloc.bind(mod);
  mod._malloc = (bytes: number) => {
    const ptr = malloc(bytes);
    const end = (ptr >>> 0) + bytes;
    if ((ptr === 0 && bytes > 0) || end > WASM_HEAP_MAX - WASM_HEAP_RESERVE) {
      if (ptr !== 0) mod._free(ptr);
      throw new WasmHeapExhaustedError(bytes, (mod.wasmMemory?.buffer ?? mod.HEAPU8.buffer).byteLength);
    }
    return ptr;
  };
}
