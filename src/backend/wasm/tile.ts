/**
 * Tile as nested block copies on the heap (memmove via copyWithin), replacing the stock per-element index
 * arithmetic. Batch-norm's gradient tiles a [1,1,1,C] vector to the full activation shape on every layer.
 */
import * as tf from '@tensorflow/tfjs-core';
import { runStock, type BackendWasm, type KernelArgs } from './heap.ts';

export function tile(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as unknown as { x: tf.TensorInfo };
  const { reps } = args.attrs as unknown as tf.TileAttrs;
  if (x.dtype === 'string' || x.shape.length === 0) return runStock(tf.Tile, backend, args.inputs, args.attrs);
  const rank = x.shape.length;
  const outShape = x.shape.map((d, i) => d * reps[i]);
  const out = backend.makeOutput(outShape, x.dtype);
  if (tf.util.sizeFromShape(outShape) === 0) return out;
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  // Elements per step of dimension d in x and in the output.
  const xBlock = new Array<number>(rank);
  const outBlock = new Array<number>(rank);
  xBlock[rank - 1] = 1;
  outBlock[rank - 1] = 1;
  for (let d = rank - 2; d >= 0; d--) {
    xBlock[d] = xBlock[d + 1] * x.shape[d + 1];
    outBlock[d] = outBlock[d + 1] * outShape[d + 1];
  }
  const fill = (d: number, xOff: number, outOff: number): void => {
    const n = x.shape[d];
    if (d === rank - 1) {
      dst.set(src.subarray(xOff, xOff + n), outOff);
    } else {
      for (let i = 0; i < n; i++) fill(d + 1, xOff + i * xBlock[d], outOff + i * outBlock[d]);
    }
    // The first repetition along d is in place; copy it reps[d]-1 times.
    const len = n * outBlock[d];
    for (let k = 1; k < reps[d]; k++) dst.copyWithin(outOff + k * len, outOff, outOff + len);
  };
  fill(0, 0, 0);
  return out;
}
