/**
 * Registers the kernels the stock wasm backend (tfjs-backend-wasm 4.22) lacks or runs slowly in a convnet
 * training step, so Conv-4 / ResNet-12 can train on it:
 * - Conv2DBackpropFilter (missing): chunked im2col^T @ dy on XNNPACK's fully-connected path (im2col by the
 *   SIMD helpers of native/kernels.c, loaded onto the backend's heap by native.ts).
 * - Conv2DBackpropInput (stock is a naive loop): XNNPACK Conv2D with the flipped filter for stride 1,
 *   XNNPACK matmul + col2im otherwise.
 * - MaxPoolGrad (stock is a naive loop): SIMD 2x2/stride-2 path, general windows in a JS heap loop.
 * - Sum, Mean (stock transposes NHWC to reduce over N,H,W), Tile (stock is per-element index math): the
 *   batch-norm forward (tf.moments) and its gradient are built from these and dominated the step.
 * - Identity, same-dtype Cast: share the buffer instead of copying it.
 * - A fused training-mode batch norm (+ReLU/leaky ReLU) op with its own gradient, `batchNormTraining`
 *   (batch_norm.ts), for callers that can switch to it: it halves a Conv-4 step against tf.moments +
 *   tf.batchNorm. Registered for wasm and cpu; other backends fall back to the composition.
 * - Conv2D and both gradients of stride-1 3x3 convs with >= 16 channels: Winograd F(4x4, 3x3) transforms
 *   (native/kernels.c) around XNNPACK matrix products, a quarter of the direct convolution's multiplications.
 * - FusedBatchNorm (inference batch norm; stock is a scalar loop recomputing 1/sqrt per element).
 * - BatchMatMul with transposed operands (stock runs those in a scalar loop): transpose, then XNNPACK.
 * - A fused Adam update over all variables in one call, `FewshotAdamUpdate` (adam.ts), used by src/train/optimizer.ts.
 * - With the oneDNN accelerator active (onednn.ts, `--backend wasm-onednn` or `auto`), Conv2D, its gradients,
 *   BatchMatMul and the fused batch norm + ReLU + max pool call the native addon instead (onednn_kernels.ts), and
 *   so do LeakyRelu, Adam and ResNet-12's fused residual add + leaky ReLU + max pool (add_act_pool.ts).
 * With the threaded build, the helper kernels split their work with a second thread (helper_thread.ts).
 * Every SIMD path has a JS fallback (used if the helper module cannot load, or FEWSHOT_WASM_NATIVE=0).
 * ReLU/Step, LeakyRelu (Select/Greater), AvgPoolGrad, elementwise binary ops and MaxPool are fast in stock form.
 *
 * On machines with 2+ logical CPUs the backend uses the threaded XNNPACK build with 2 threads (threads.ts),
 * and the helper kernels a helper thread; FEWSHOT_WASM_THREADS=N (set before the wasm backend is first
 * created) picks N, and 1 the stock single-threaded build.
 */
import * as tf from '@tensorflow/tfjs-core';
// Loaded first so the stock wasm kernels are registered before we replace some of them (a later import would
// silently overwrite ours).
import '@tensorflow/tfjs-backend-wasm';
import { registerAdamUpdate } from './adam.ts';
import { registerBatchNormTraining } from './batch_norm.ts';
import { fusedBatchNorm } from './batch_norm_inference.ts';
import { saveStockKernel } from './heap.ts';
import { cast, identity } from './identity.ts';
import { maxPoolGrad } from './max_pool_grad.ts';
import { onednnBatchMatMul, onednnConv2D, onednnConv2DBackpropFilter, onednnConv2DBackpropInput, onednnLeakyRelu } from './onednn_kernels.ts';
import { mean, sum } from './reduce.ts';
import { tile } from './tile.ts';
import { useWasmThreads, wasmThreadsFromEnv } from './threads.ts';

export { batchNormTraining, type BatchNormActivation, type BatchNormTrainingResult } from './batch_norm.ts';
export { useWasmThreads, wasmThreadsFromEnv, wasmThreadsInUse } from './threads.ts';

const BACKEND = 'wasm';

/** The kernels this module installs on backend 'wasm', by tfjs kernel name (each takes tfjs' kernel arguments). */
const KERNELS_BY_NAME: Record<string, unknown> = {
  [tf.Conv2D]: onednnConv2D,
  [tf.FusedBatchNorm]: fusedBatchNorm,
  [tf.Conv2DBackpropFilter]: onednnConv2DBackpropFilter,
  [tf.Conv2DBackpropInput]: onednnConv2DBackpropInput,
  [tf.MaxPoolGrad]: maxPoolGrad,
  [tf.Sum]: sum,
  [tf.Mean]: mean,
  [tf.Tile]: tile,
  [tf.Identity]: identity,
  [tf.Cast]: cast,
  [tf.BatchMatMul]: onednnBatchMatMul,
  [tf.LeakyRelu]: onednnLeakyRelu,
};

/** The kernels this module installs on backend 'wasm', by tfjs kernel name. */
export const WASM_TRAINING_KERNELS: ReadonlyArray<{ kernelName: string; kernelFunc: tf.KernelFunc }> = Object.entries(KERNELS_BY_NAME).map(
  ([kernelName, kernelFunc]) => ({ kernelName, kernelFunc: kernelFunc as tf.KernelFunc }),
);

/**
 * Installs the training kernels for backend 'wasm'. Idempotent; may be called before or after the wasm backend
 * is initialised (the kernels need no setup step). The stock implementations stay reachable for fallbacks.
 */
export function registerWasmTrainingKernels(): void {
  for (const { kernelName, kernelFunc } of WASM_TRAINING_KERNELS) {
    const current = tf.getKernel(kernelName, BACKEND);
    if (current?.kernelFunc === kernelFunc) continue;
    if (current != null) {
      saveStockKernel(current);
      tf.unregisterKernel(kernelName, BACKEND);
    }
    tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc });
  }
  registerBatchNormTraining();
  registerAdamUpdate();
  const threads = wasmThreadsFromEnv();
  if (threads > 1) useWasmThreads(threads);
}
