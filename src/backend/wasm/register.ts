/**
 * Registers the gradient kernels the stock wasm backend (tfjs-backend-wasm 4.22) lacks or runs slowly, so
 * convnets can train on it:
 * - Conv2DBackpropFilter (missing): chunked im2col^T @ dy on XNNPACK's fully-connected path.
 * - Conv2DBackpropInput (stock is a naive loop): XNNPACK Conv2D with the flipped filter for stride 1,
 *   XNNPACK matmul + JS col2im otherwise.
 * - MaxPoolGrad (stock is a naive loop): JS heap loop with an unrolled 2x2/stride-2 path.
 * Everything else a Conv-4 / ResNet-12 step needs (batch-norm, ReLU/Step, LeakyRelu, AvgPoolGrad, reductions)
 * is present and fast enough in the stock backend.
 */
import * as tf from '@tensorflow/tfjs-core';
// Loaded first so the stock wasm kernels are registered before we replace some of them (a later import would
// silently overwrite ours).
import '@tensorflow/tfjs-backend-wasm';
import { conv2DBackpropFilter } from './conv2d_backprop_filter.ts';
import { conv2DBackpropInput } from './conv2d_backprop_input.ts';
import { maxPoolGrad } from './max_pool_grad.ts';

const BACKEND = 'wasm';

/** The kernels this module installs, by tfjs kernel name. */
export const WASM_TRAINING_KERNELS: ReadonlyArray<{ kernelName: string; kernelFunc: tf.KernelFunc }> = [
  { kernelName: tf.Conv2DBackpropFilter, kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc },
  { kernelName: tf.Conv2DBackpropInput, kernelFunc: conv2DBackpropInput as unknown as tf.KernelFunc },
  { kernelName: tf.MaxPoolGrad, kernelFunc: maxPoolGrad as unknown as tf.KernelFunc },
];

/**
 * Installs the training kernels for backend 'wasm'. Idempotent; may be called before or after the wasm backend
 * is initialised (the kernels need no setup step).
 */
export function registerWasmTrainingKernels(): void {
  for (const { kernelName, kernelFunc } of WASM_TRAINING_KERNELS) {
    const current = tf.getKernel(kernelName, BACKEND);
    if (current?.kernelFunc === kernelFunc) continue;
    if (current != null) tf.unregisterKernel(kernelName, BACKEND);
    tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc });
  }
}
