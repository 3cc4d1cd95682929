/**
 * Sum and Mean over a contiguous block of axes, as one pass over the heap with float64 accumulators.
 *
 * The stock wasm kernels only reduce innermost axes, so reducing NHWC activations over [0, 1, 2] (batch-norm
 * moments and its gradient, every bias/scale gradient) first transposes the whole tensor to put the channels
 * first. Viewing x as [outer, R, inner] instead needs no transpose: out[o, i] = sum_r x[o, r, i].
 * Non-float32 tensors and non-contiguous axis sets go to the stock kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { allocF32, f32View, offsetOf, runStock, type BackendWasm, type KernelArgs } from './heap.ts';
import { nativeKernels, scratch } from './native.ts';

let accumulator = new Float64Array(0);

/** [outer, reduced, inner] sizes if `axes` (sorted) are contiguous, else null. */
function blockView(shape: number[], axes: number[]): [number, number, number] | null {
  for (let i = 1; i < axes.length; i++) if (axes[i] !== axes[i - 1] + 1) return null;
  const first = axes[0];
  const last = axes[axes.length - 1];
  let outer = 1;
  let reduced = 1;
  let inner = 1;
  shape.forEach((d, i) => {
    if (i < first) outer *= d;
    else if (i <= last) reduced *= d;
    else inner *= d;
  });
  return [outer, reduced, inner];
}

function reduceBlock(x: Float32Array, out: Float32Array, outer: number, reduced: number, inner: number, scale: number): void {
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      let s = 0;
      const base = o * reduced;
      for (let r = 0; r < reduced; r++) s += x[base + r];
      out[o] = s * scale;
    }
    return;
  }
  if (accumulator.length < inner) accumulator = new Float64Array(inner);
  const acc = accumulator;
  for (let o = 0; o < outer; o++) {
    acc.fill(0, 0, inner);
    let base = o * reduced * inner;
    for (let r = 0; r < reduced; r++) {
      for (let i = 0; i < inner; i++) acc[i] += x[base + i];
      base += inner;
    }
    const outBase = o * inner;
    for (let i = 0; i < inner; i++) out[outBase + i] = acc[i] * scale;
  }
}

function makeReduce(kernelName: string, isMean: boolean) {
  return (args: KernelArgs): tf.TensorInfo => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as unknown as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const view = x.dtype === 'float32' && axes.length > 0 ? blockView(x.shape, axes) : null;
    if (view == null || tf.util.sizeFromShape(x.shape) === 0) return runStock(kernelName, backend, args.inputs, args.attrs);
    const [outer, reduced, inner] = view;
    const outShape = x.shape.filter((_, i) => !axes.includes(i));
    const out = allocF32(backend, outShape);
    const nk = nativeKernels(backend);
    const scale = isMean ? 1 / reduced : 1;
    if (nk != null) {
      const acc = scratch(backend, 8 * inner);
      nk.reduce_middle(offsetOf(backend, x), offsetOf(backend, out), outer, reduced, inner, scale, acc);
    } else {
      reduceBlock(f32View(backend, x), f32View(backend, out), outer, reduced, inner, scale);
    }
    if (keepDims) out.shape = tf.backend_util.expandShapeToKeepDim(outShape, axes);
    return out;
  };
}

export const sum = makeReduce(tf.Sum, false);
export const mean = makeReduce(tf.Mean, true);
