/**
 * BatchMatMul with transposed operands, for the wasm backend. The stock kernel (tfjs-backend-wasm 4.22) sends
 * only untransposed products to XNNPACK; with transposeA or transposeB it runs a scalar blocked loop, 5-10x
 * slower than transposing the operand first and taking the XNNPACK path. Every backward of a matMul has a
 * transposed product (dA = dC Bᵀ, dB = Aᵀ dC), and so do the heads' forwards (K = X Xᵀ, query-support scores):
 * measured on the MetaOptNet heads at SLA sizes ([120,100]ᵀ[120,2560]: 54 → 12 ms; [100,2560][100,2560]ᵀ:
 * 39 → 4 ms). So a transposed operand is copied once by the stock Transpose kernel (a memory pass, negligible
 * next to the product) and the product runs untransposed.
 *
 * Numerics: XNNPACK accumulates in another order than the scalar loop; values agree to float32 rounding
 * (tested against the cpu backend).
 */
import * as tf from '@tensorflow/tfjs-core';
import { release, runStock, stockKernel, type BackendWasm, type KernelArgs } from './heap.ts';

/** Mutable so tests and benchmarks can A/B the stock path. */
export const batchMatMulConfig = { transposeFirst: process.env.FEWSHOT_WASM_MATMUL_TRANSPOSE !== '0' };

function swapLastTwo(backend: BackendWasm, x: tf.TensorInfo): tf.TensorInfo {
  const rank = x.shape.length;
  const perm = [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
  return runStock('Transpose', backend, { x }, { perm });
}

export function batchMatMul(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { a, b } = args.inputs as unknown as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
  const stock = stockKernel(tf.BatchMatMul);
  if ((!transposeA && !transposeB) || !batchMatMulConfig.transposeFirst || a.dtype !== 'float32' || b.dtype !== 'float32') {
    return runStock(stock, backend, args.inputs, args.attrs);
  }
  const a2 = transposeA ? swapLastTwo(backend, a) : a;
  const b2 = transposeB ? swapLastTwo(backend, b) : b;
  try {
    return runStock(stock, backend, { a: a2, b: b2 }, { ...args.attrs, transposeA: false, transposeB: false });
  } finally {
    if (a2 !== a) release(backend, a2);
    if (b2 !== b) release(backend, b2);
  }
}
