/**
 * Identity and same-dtype Cast share the input's buffer (reference-counted) instead of copying it, as the cpu
 * backend does. The stock wasm kernels copy the whole tensor; tfjs calls them dozens of times per training step
 * (tf.moments casts its input, gradients clone dy). The wasm backend never writes into an existing buffer, so
 * sharing is safe.
 */
import * as tf from '@tensorflow/tfjs-core';
import { runStock, type BackendWasm, type KernelArgs } from './heap.ts';

function share(backend: BackendWasm, x: tf.TensorInfo): tf.TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export function identity(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as unknown as { x: tf.TensorInfo };
  if (x.dtype === 'string') return runStock(tf.Identity, backend, args.inputs, args.attrs);
  return share(backend, x);
}

export function cast(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as unknown as { x: tf.TensorInfo };
  const { dtype } = args.attrs as unknown as tf.CastAttrs;
  if (dtype === x.dtype && dtype !== 'string') return share(backend, x);
  return runStock(tf.Cast, backend, args.inputs, args.attrs);
}
