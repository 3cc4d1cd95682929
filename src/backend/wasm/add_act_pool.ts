/**
 * ResNet-12's block tail, maxPool2x2(act(a + b)) with act ReLU or leaky ReLU ('valid' 2x2 pooling, stride 2), as
 * one op with its own gradient when the oneDNN accelerator is active (onednn.ts): the addon adds, activates and
 * pools in one call, and its gradient goes from the pooled gradient to the gradient of a and b in one call,
 * recomputing act(a + b) from a and b. Composed from tfjs ops, the same tail is five kernels forward (Add,
 * LeakyRelu, MaxPool) and five backward (MaxPoolGrad, Greater, Multiply, Select, and the Add's pass-through),
 * each a full pass over the largest activations of the block: about 0.15 s of a 1.7 s ResNet-12 step at 32 px,
 * one thread (bench/profile-step.ts). Fused, no full-size tensor outlives the call.
 *
 * Without the accelerator (plain wasm, cpu, any other backend) `addActPool` composes tf.add, the activation and
 * tf.maxPool, so callers use it unconditionally. Pooling ties go to oneDNN's choice (the first maximum of the
 * window, as tf.maxPool's gradient).
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../util/errors.ts';
import { allocF32, type BackendWasm, type KernelArgs } from './heap.ts';
import { activeOnednn, floatOffset, heapView, type OnednnAddon } from './onednn.ts';

export const ADD_ACT_POOL = 'FewshotAddActPool';
export const ADD_ACT_POOL_GRAD = 'FewshotAddActPoolGrad';

interface Attrs {
  /** Negative slope: 0 is ReLU. */
  alpha: number;
}

function addonOrThrow(kernel: string): OnednnAddon {
  const addon = activeOnednn();
  // The op runs this kernel only while the accelerator is active (addActPool); this is an internal error.
  if (addon == null) throw new Error(`${kernel} needs the oneDNN accelerator, which is not active`);
  return addon;
}

function dims(x: tf.TensorInfo): number[] {
  return [...x.shape];
}

function forwardWasm(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { a, b } = args.inputs as unknown as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { alpha } = args.attrs as unknown as Attrs;
  const addon = addonOrThrow(ADD_ACT_POOL);
  const [N, H, W, C] = a.shape;
  const p = allocF32(backend, [N, Math.floor(H / 2), Math.floor(W / 2), C]);
  const o = (t: tf.TensorInfo) => floatOffset(backend, t);
  addon.addActPoolForward(heapView(backend), o(a), o(b), o(p), dims(a), alpha);
  return p;
}

function backwardWasm(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { dp, a, b } = args.inputs as unknown as { dp: tf.TensorInfo; a: tf.TensorInfo; b: tf.TensorInfo };
  const { alpha } = args.attrs as unknown as Attrs;
  const addon = addonOrThrow(ADD_ACT_POOL_GRAD);
  const d = allocF32(backend, [...a.shape]);
  const o = (t: tf.TensorInfo) => floatOffset(backend, t);
  addon.addActPoolBackward(heapView(backend), o(dp), o(a), o(b), o(d), dims(a), alpha);
  return d;
}

export const ADD_ACT_POOL_KERNELS: ReadonlyArray<tf.KernelConfig> = [
  { kernelName: ADD_ACT_POOL, backendName: 'wasm', kernelFunc: forwardWasm as unknown as tf.KernelFunc },
  { kernelName: ADD_ACT_POOL_GRAD, backendName: 'wasm', kernelFunc: backwardWasm as unknown as tf.KernelFunc },
];

const GRAD_CONFIG: tf.GradConfig = {
  kernelName: ADD_ACT_POOL,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const [a, b] = saved;
    const d = tf.engine().runKernel(ADD_ACT_POOL_GRAD, { dp: dy as tf.Tensor, a, b } as unknown as tf.NamedTensorMap, attrs) as tf.Tensor;
    // The sum passes the same gradient to both inputs; each gets its own handle (Identity shares the buffer).
    return { a: () => d, b: () => tf.clone(d) };
  },
};

/** Registers the fused op's wasm kernels and gradient. Idempotent. */
export function registerAddActPool(): void {
  for (const config of ADD_ACT_POOL_KERNELS) {
    if (tf.getKernel(config.kernelName, config.backendName) == null) tf.registerKernel(config);
  }
  if (tf.getGradient(ADD_ACT_POOL) == null) tf.registerGradient(GRAD_CONFIG);
}

/**
 * maxPool(act(a + b), 2, 2, 'valid') for NHWC a and b of one shape, act leaky ReLU with slope `alpha` (0: ReLU).
 * Differentiable; one native kernel each way with the oneDNN accelerator, the tfjs composition otherwise.
 */
export function addActPool(a: tf.Tensor4D, b: tf.Tensor4D, alpha: number): tf.Tensor4D {
  if (!(alpha >= 0)) throw new UserError(`activation slope ${alpha} after the residual add`, 'use 0 (ReLU) or a positive leaky ReLU slope');
  const fused =
    activeOnednn() != null &&
    tf.getBackend() === 'wasm' &&
    a.dtype === 'float32' &&
    b.dtype === 'float32' &&
    tf.util.arraysEqual(a.shape, b.shape) &&
    a.shape[1] >= 2 &&
    a.shape[2] >= 2 &&
    a.size > 0;
  if (!fused) {
    return tf.tidy(() => {
      const sum = tf.add(a, b) as tf.Tensor4D;
      return tf.maxPool(alpha === 0 ? tf.relu(sum) : tf.leakyRelu(sum, alpha), 2, 2, 'valid');
    });
  }
  registerAddActPool();
  return tf.engine().runKernel(ADD_ACT_POOL, { a, b } as unknown as tf.NamedTensorMap, { alpha } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}
