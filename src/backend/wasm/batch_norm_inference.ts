/**
 * FusedBatchNorm (tf.batchNorm: inference-mode batch norm with given mean and variance) for the wasm backend.
 * The stock kernel is a scalar C++ loop that recomputes 1/sqrt(variance + eps) per element: 30 of the 65 ms of
 * an 80-image Conv-4 evaluation forward at 32 px. Here the per-channel scale and shift are computed once and
 * y = x * scale[c] + shift[c] runs in the SIMD helper (bn_apply), split between the main and helper threads.
 * Parameters must be per-channel (size C = last dimension) or scalars; other broadcasts use the stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ROWS_PER_THREAD } from './batch_norm.ts';
import { splitCalls } from './helper_thread.ts';
import { allocF32, f32View, heapF32, offsetOf, runStock, stockKernel, type BackendWasm, type KernelArgs } from './heap.ts';
import { nativeKernels, runNativeSplit, scratch } from './native.ts';

export function fusedBatchNorm(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, mean, variance, offset, scale } = args.inputs as unknown as Record<'x' | 'mean' | 'variance', tf.TensorInfo> &
    Partial<Record<'offset' | 'scale', tf.TensorInfo>>;
  const { varianceEpsilon } = args.attrs as unknown as tf.FusedBatchNormAttrs;
  const C = x.shape[x.shape.length - 1] ?? 1;
  const size = tf.util.sizeFromShape(x.shape);
  const perChannel = (t: tf.TensorInfo | undefined) => t == null || tf.util.sizeFromShape(t.shape) === C || tf.util.sizeFromShape(t.shape) === 1;
  const nk = nativeKernels(backend);
  if (nk == null || x.dtype !== 'float32' || C === 0 || size === 0 || ![mean, variance, offset, scale].every(perChannel)) {
    return runStock(stockKernel(tf.FusedBatchNorm), backend, args.inputs, args.attrs);
  }
  const y = allocF32(backend, x.shape);
  const s = scratch(backend, 8 * C);
  const heap = heapF32(backend);
  const k = new Float32Array(heap.buffer, s, C);
  const b = new Float32Array(heap.buffer, s + 4 * C, C);
  const at = (t: tf.TensorInfo | undefined, fallback: number) => {
    if (t == null) return () => fallback;
    const v = f32View(backend, t);
    return v.length === 1 ? () => v[0] : (c: number) => v[c];
  };
  const [m, v, o, g] = [at(mean, 0), at(variance, 1), at(offset, 0), at(scale, 1)];
  for (let c = 0; c < C; c++) {
    k[c] = g(c) / Math.sqrt(v(c) + varianceEpsilon);
    b[c] = o(c) - m(c) * k[c];
  }
  const xo = offsetOf(backend, x);
  const yo = offsetOf(backend, y);
  runNativeSplit(
    backend,
    nk,
    splitCalls(size / C, (lo, hi) => [['bn_apply', xo + 4 * lo * C, yo + 4 * lo * C, hi - lo, C, s, s + 4 * C, 0, 0]], ROWS_PER_THREAD),
  );
  return y;
}
