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
  const heap = backend.wasm.HEAPF32;
  return new Float32Array(heap.buffer, memoryOffset, size);
}

/** The byte offset of a tensor in the wasm heap. */
export function offsetOf(backend: BackendWasm, info: tf.TensorInfo): number {
  return backend.dataIdMap.get(info.dataId).memoryOffset;
}

/** The whole heap as float32 (index = byteOffset / 4). Invalidated by the next allocation. */
export function heapF32(backend: BackendWasm): Float32Array {
  return backend.wasm.HEAPF32;
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

type AnyKernelFunc = (params: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: BackendWasm }) => tf.TensorInfo | tf.TensorInfo[];

/**
 * The wasm backend's own implementation of a kernel, captured before we replace anything, so our kernels
 * can call XNNPACK Conv2D / BatchMatMul directly without going through the engine (no tape, no tidy).
 */
export function stockKernel(kernelName: string): AnyKernelFunc {
  const config = tf.getKernel(kernelName, 'wasm');
  if (config == null) throw new Error(`wasm backend has no ${kernelName} kernel to build on`);
  return config.kernelFunc as unknown as AnyKernelFunc;
}

/** Runs a stock kernel that returns one tensor. */
export function runStock(kernel: AnyKernelFunc, backend: BackendWasm, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap): tf.TensorInfo {
  const out = kernel({ inputs, attrs, backend });
  if (Array.isArray(out)) throw new Error('expected a single-output kernel');
  return out;
}
