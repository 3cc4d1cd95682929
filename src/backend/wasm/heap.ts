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
