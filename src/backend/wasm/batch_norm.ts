/**
 * Training-mode batch normalisation (+ optional ReLU / leaky ReLU) as one fused op with its own gradient.
 *
 * tfjs composes training-mode batch norm from tf.moments + tf.batchNorm, and its gradient from ~25 full-size
 * elementwise ops, reductions and a tile per layer; on the wasm backend that was half of a Conv-4 training step.
 * Here the forward is two passes over x (per-channel sums, then y = x*a[c] + b[c] with the activation) and the
 * backward two passes (sum(dy'), sum(dy'*xhat), then dx); sums end in float64.
 *
 * Kernels are registered for 'wasm' (SIMD helpers on the heap, JS loops as fallback) and 'cpu' (JS loops); on
 * any other backend `batchNormTraining` falls back to the standard composition, so callers can use it
 * unconditionally.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../util/errors.ts';
import { allocF32, f32View, heapF32, offsetOf, type BackendWasm, type KernelArgs } from './heap.ts';
import { splitCalls } from './helper_thread.ts';
import { nativeKernels, runNativeSplit, scratch, type NativeKernels } from './native.ts';

export const BATCH_NORM_TRAIN = 'FewshotBatchNormTrain';
export const BATCH_NORM_TRAIN_GRAD = 'FewshotBatchNormTrainGrad';

export type BatchNormActivation = 'linear' | 'relu' | 'leakyRelu';

export const ACTIVATION_CODE: Record<BatchNormActivation, number> = { linear: 0, relu: 1, leakyRelu: 2 };

export interface BnAttrs {
  varianceEpsilon: number;
  /** 0 linear, 1 relu, 2 leaky relu. */
  activation: number;
  alpha: number;
}

/** Reused float64 per-channel accumulators (zeroed), for the JS loops. */
let sums = new Float64Array(0);
let sumsB = new Float64Array(0);
export function accumulators(c: number): [Float64Array, Float64Array] {
  if (sums.length < c) {
    sums = new Float64Array(c);
    sumsB = new Float64Array(c);
  }
  sums.fill(0, 0, c);
  sumsB.fill(0, 0, c);
  return [sums, sumsB];
}

/** Forward over x viewed as [P, C]: batch mean/biased variance per channel, y = act((x-mean)*rstd*gamma + beta). */
function forward(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  C: number,
  attrs: BnAttrs,
  y: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
): void {
  const P = x.length / C;
  const [s1, s2] = accumulators(C);
  for (let base = 0; base < x.length; base += C) {
    for (let c = 0; c < C; c++) {
      const v = x[base + c];
      s1[c] += v;
      s2[c] += v * v;
    }
  }
  const scale = new Float32Array(C);
  const shift = new Float32Array(C);
  forwardCoefficients(s1, s2, P, gamma, beta, attrs.varianceEpsilon, mean, variance, scale, shift);
  const { activation, alpha } = attrs;
  for (let base = 0; base < x.length; base += C) {
    if (activation === 0) {
      for (let c = 0; c < C; c++) y[base + c] = x[base + c] * scale[c] + shift[c];
    } else if (activation === 1) {
      for (let c = 0; c < C; c++) {
        const v = x[base + c] * scale[c] + shift[c];
        y[base + c] = v > 0 ? v : 0;
      }
    } else {
      for (let c = 0; c < C; c++) {
        const v = x[base + c] * scale[c] + shift[c];
        y[base + c] = v > 0 ? v : v * alpha;
      }
    }
  }
}

/**
 * Backward. dpre = dy * act'(pre) (read off y: pre > 0 iff y > 0 for relu/leaky with alpha > 0).
 * dx = gamma*rstd*(dpre - mean(dpre) - xhat*mean(dpre*xhat)) + dmean/P + dvar*2(x-mean)/P,
 * dgamma = sum(dpre*xhat), dbeta = sum(dpre).
 */
function backward(
  dy: Float32Array,
  x: Float32Array,
  y: Float32Array,
  gamma: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  dmean: Float32Array,
  dvar: Float32Array,
  C: number,
  attrs: BnAttrs,
  dx: Float32Array,
  dgamma: Float32Array,
  dbeta: Float32Array,
): void {
  const P = x.length / C;
  const { activation, alpha } = attrs;
  const [sdy, sdyx] = accumulators(C);
  for (let base = 0; base < x.length; base += C) {
    for (let c = 0; c < C; c++) {
      const i = base + c;
      let g = dy[i];
      if (activation !== 0 && !(y[i] > 0)) g = activation === 1 ? 0 : g * alpha;
      sdy[c] += g;
      sdyx[c] += g * (x[i] - mean[c]);
    }
  }
  // dx = k1*dpre + k2*x + k3 per channel.
  const k1 = new Float32Array(C);
  const k2 = new Float32Array(C);
  const k3 = new Float32Array(C);
  backwardCoefficients(sdy, sdyx, P, gamma, mean, variance, dmean, dvar, attrs.varianceEpsilon, k1, k2, k3, dgamma, dbeta);
  for (let base = 0; base < x.length; base += C) {
    if (activation === 0) {
      for (let c = 0; c < C; c++) dx[base + c] = k1[c] * dy[base + c] + k2[c] * x[base + c] + k3[c];
    } else {
      for (let c = 0; c < C; c++) {
        const i = base + c;
        let g = dy[i];
        if (!(y[i] > 0)) g = activation === 1 ? 0 : g * alpha;
        dx[i] = k1[c] * g + k2[c] * x[i] + k3[c];
      }
    }
  }
}

export function channelsOf(x: tf.TensorInfo, gamma: tf.TensorInfo): number {
  const C = x.shape[x.shape.length - 1];
  if (gamma.shape.length !== 1 || gamma.shape[0] !== C) {
    throw new UserError(`batch-norm scale has shape [${gamma.shape}] but x has ${C} channels`, 'pass per-channel gamma/beta of shape [C]');
  }
  return C;
}

// ---- wasm kernels: SIMD helpers on the heap (native/kernels.c), JS loops over heap views as a fallback.

/** Per-channel scale/shift for the forward apply pass, from the float64 sums. */
function forwardCoefficients(
  s1: Float64Array,
  s2: Float64Array,
  P: number,
  gamma: Float32Array,
  beta: Float32Array,
  eps: number,
  mean: Float32Array,
  variance: Float32Array,
  scale: Float32Array,
  shift: Float32Array,
): void {
  for (let c = 0; c < gamma.length; c++) {
    const m = s1[c] / P;
    const v = Math.max(0, s2[c] / P - m * m);
    mean[c] = m;
    variance[c] = v;
    const a = gamma[c] / Math.sqrt(v + eps);
    scale[c] = a;
    shift[c] = beta[c] - m * a;
  }
}

/** Per-channel dx = k1*dpre + k2*x + k3 coefficients and dgamma/dbeta, from the float64 gradient sums. */
export function backwardCoefficients(
  sdy: Float64Array,
  sdyx: Float64Array,
  P: number,
  gamma: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  dmean: Float32Array,
  dvar: Float32Array,
  eps: number,
  k1: Float32Array,
  k2: Float32Array,
  k3: Float32Array,
  dgamma: Float32Array,
  dbeta: Float32Array,
): void {
  for (let c = 0; c < gamma.length; c++) {
    const r = 1 / Math.sqrt(variance[c] + eps);
    const sumXhat = sdyx[c] * r;
    dgamma[c] = sumXhat;
    dbeta[c] = sdy[c];
    const a = gamma[c] * r;
    const slope = (-a * r * sumXhat) / P + (2 * dvar[c]) / P;
    k1[c] = a;
    k2[c] = slope;
    k3[c] = (-a * sdy[c]) / P - slope * mean[c] + dmean[c] / P;
  }
}

/** Rows (pixels) below which a pass is not split between the main and the helper thread. */
export const ROWS_PER_THREAD = 256;

/** Adds the second half's per-channel float64 sums (byte offset `theirs`) into the first half's (`ours`). */
export function addSums(buf: ArrayBufferLike, ours: number, theirs: number, C: number): void {
  const a = new Float64Array(buf, ours, C);
  const b = new Float64Array(buf, theirs, C);
  for (let c = 0; c < C; c++) a[c] += b[c];
}

/**
 * sum x and sum x^2 per channel of x ([P, C] at byte offset xo) as float64 at s and s + 8C, in the forward
 * scratch layout (56 * C bytes: s1, s2, scale, shift, block accumulators, then the helper thread's s1, s2 and
 * block accumulators); rows are split between the threads and the halves' sums added here.
 */
export function channelSums(backend: BackendWasm, nk: NativeKernels, xo: number, P: number, C: number, s: number): void {
  const sums = splitCalls(
    P,
    (a, b) => [a === 0 ? ['bn_sums', xo, b, C, s, s + 8 * C, s + 24 * C] : ['bn_sums', xo + 4 * a * C, b - a, C, s + 32 * C, s + 40 * C, s + 48 * C]],
    ROWS_PER_THREAD,
  );
  runNativeSplit(backend, nk, sums);
  if (sums[1].length > 0) {
    const buf = heapF32(backend).buffer;
    addSums(buf, s, s + 32 * C, C);
    addSums(buf, s + 8 * C, s + 40 * C, C);
  }
}

function forwardWasm(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { x, gamma, beta } = args.inputs as unknown as { x: tf.TensorInfo; gamma: tf.TensorInfo; beta: tf.TensorInfo };
  const attrs = args.attrs as unknown as BnAttrs;
  const C = channelsOf(x, gamma);
  const y = allocF32(backend, x.shape);
  const mean = allocF32(backend, [C]);
  const variance = allocF32(backend, [C]);
  const v = (t: tf.TensorInfo) => f32View(backend, t);
  const nk = nativeKernels(backend);
  const P = tf.util.sizeFromShape(x.shape) / C;
  if (nk == null || P === 0) {
    forward(v(x), v(gamma), v(beta), C, attrs, v(y), v(mean), v(variance));
    return [y, mean, variance];
  }
  // Scratch: s1, s2 (float64 x C), scale, shift (float32 x C), 2 x C float32 block accumulators, then the
  // helper thread's own s1, s2 and block accumulators (rows are split between the threads, sums added here).
  const s = scratch(backend, 56 * C);
  const xo = offsetOf(backend, x);
  const yo = offsetOf(backend, y);
  channelSums(backend, nk, xo, P, C, s);
  const buf = heapF32(backend).buffer;
  forwardCoefficients(
    new Float64Array(buf, s, C),
    new Float64Array(buf, s + 8 * C, C),
    P,
    v(gamma),
    v(beta),
    attrs.varianceEpsilon,
    v(mean),
    v(variance),
    new Float32Array(buf, s + 16 * C, C),
    new Float32Array(buf, s + 20 * C, C),
  );
  runNativeSplit(
    backend,
    nk,
    splitCalls(P, (a, b) => [['bn_apply', xo + 4 * a * C, yo + 4 * a * C, b - a, C, s + 16 * C, s + 20 * C, attrs.activation, attrs.alpha]], ROWS_PER_THREAD),
  );
  return [y, mean, variance];
}

function backwardWasm(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const i = args.inputs as unknown as Record<'dy' | 'x' | 'y' | 'gamma' | 'mean' | 'variance' | 'dmean' | 'dvar', tf.TensorInfo>;
  const attrs = args.attrs as unknown as BnAttrs;
  const C = channelsOf(i.x, i.gamma);
  const dx = allocF32(backend, i.x.shape);
  const dgamma = allocF32(backend, [C]);
  const dbeta = allocF32(backend, [C]);
  const v = (t: tf.TensorInfo) => f32View(backend, t);
  const nk = nativeKernels(backend);
  const P = tf.util.sizeFromShape(i.x.shape) / C;
  if (nk == null || P === 0) {
    backward(v(i.dy), v(i.x), v(i.y), v(i.gamma), v(i.mean), v(i.variance), v(i.dmean), v(i.dvar), C, attrs, v(dx), v(dgamma), v(dbeta));
    return [dx, dgamma, dbeta];
  }
  // Scratch: sdy, sdyx (float64 x C), k1, k2, k3 (float32 x C), 2 x C float32 block accumulators, then the
  // helper thread's sdy, sdyx and block accumulators.
  const s = scratch(backend, 60 * C);
  const off = (t: tf.TensorInfo) => offsetOf(backend, t);
  const [dyo, xo, yo, dxo] = [off(i.dy), off(i.x), off(i.y), off(dx)];
  const sums = splitCalls(
    P,
    (a, b) => [
      a === 0
        ? ['bn_grad_sums', dyo, xo, yo, b, C, off(i.mean), attrs.activation, attrs.alpha, s, s + 8 * C, s + 28 * C]
        : [
            'bn_grad_sums',
            dyo + 4 * a * C,
            xo + 4 * a * C,
            yo + 4 * a * C,
            b - a,
            C,
            off(i.mean),
            attrs.activation,
            attrs.alpha,
            s + 36 * C,
            s + 44 * C,
            s + 52 * C,
          ],
    ],
    ROWS_PER_THREAD,
  );
  runNativeSplit(backend, nk, sums);
  const buf = heapF32(backend).buffer;
  if (sums[1].length > 0) {
    addSums(buf, s, s + 36 * C, C);
    addSums(buf, s + 8 * C, s + 44 * C, C);
  }
  backwardCoefficients(
    new Float64Array(buf, s, C),
    new Float64Array(buf, s + 8 * C, C),
    P,
    v(i.gamma),
    v(i.mean),
    v(i.variance),
    v(i.dmean),
    v(i.dvar),
    attrs.varianceEpsilon,
    new Float32Array(buf, s + 16 * C, C),
    new Float32Array(buf, s + 20 * C, C),
    new Float32Array(buf, s + 24 * C, C),
    v(dgamma),
    v(dbeta),
  );
  runNativeSplit(
    backend,
    nk,
    splitCalls(
      P,
      (a, b) => [
        [
          'bn_grad_apply',
          dyo + 4 * a * C,
          xo + 4 * a * C,
          yo + 4 * a * C,
          dxo + 4 * a * C,
          b - a,
          C,
          s + 16 * C,
          s + 20 * C,
          s + 24 * C,
          attrs.activation,
          attrs.alpha,
        ],
      ],
      ROWS_PER_THREAD,
    ),
  );
  return [dx, dgamma, dbeta];
}

// ---- cpu kernels: the same loops over the cpu backend's typed arrays.

export interface CpuBackend {
  data: { get(dataId: tf.DataId): { values: Float32Array } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

function forwardCpu(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as CpuBackend;
  const { x, gamma, beta } = args.inputs as unknown as { x: tf.TensorInfo; gamma: tf.TensorInfo; beta: tf.TensorInfo };
  const C = channelsOf(x, gamma);
  const v = (t: tf.TensorInfo) => backend.data.get(t.dataId).values;
  const y = new Float32Array(tf.util.sizeFromShape(x.shape));
  const mean = new Float32Array(C);
  const variance = new Float32Array(C);
  forward(v(x), v(gamma), v(beta), C, args.attrs as unknown as BnAttrs, y, mean, variance);
  return [backend.makeTensorInfo(x.shape, 'float32', y), backend.makeTensorInfo([C], 'float32', mean), backend.makeTensorInfo([C], 'float32', variance)];
}

function backwardCpu(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as CpuBackend;
  const i = args.inputs as unknown as Record<'dy' | 'x' | 'y' | 'gamma' | 'mean' | 'variance' | 'dmean' | 'dvar', tf.TensorInfo>;
  const C = channelsOf(i.x, i.gamma);
  const v = (t: tf.TensorInfo) => backend.data.get(t.dataId).values;
  const dx = new Float32Array(tf.util.sizeFromShape(i.x.shape));
  const dgamma = new Float32Array(C);
  const dbeta = new Float32Array(C);
  backward(v(i.dy), v(i.x), v(i.y), v(i.gamma), v(i.mean), v(i.variance), v(i.dmean), v(i.dvar), C, args.attrs as unknown as BnAttrs, dx, dgamma, dbeta);
  return [backend.makeTensorInfo(i.x.shape, 'float32', dx), backend.makeTensorInfo([C], 'float32', dgamma), backend.makeTensorInfo([C], 'float32', dbeta)];
}

/** Kernel configs of the fused op, for the registrar. */
export const BATCH_NORM_KERNELS: ReadonlyArray<tf.KernelConfig> = [
  { kernelName: BATCH_NORM_TRAIN, backendName: 'wasm', kernelFunc: forwardWasm as unknown as tf.KernelFunc },
  { kernelName: BATCH_NORM_TRAIN_GRAD, backendName: 'wasm', kernelFunc: backwardWasm as unknown as tf.KernelFunc },
  { kernelName: BATCH_NORM_TRAIN, backendName: 'cpu', kernelFunc: forwardCpu as unknown as tf.KernelFunc },
  { kernelName: BATCH_NORM_TRAIN_GRAD, backendName: 'cpu', kernelFunc: backwardCpu as unknown as tf.KernelFunc },
];

export const BATCH_NORM_GRAD_CONFIG: tf.GradConfig = {
  kernelName: BATCH_NORM_TRAIN,
  inputsToSave: ['x', 'gamma'],
  outputsToSave: [true, true, true],
  gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const [dy, dmean, dvar] = dys as tf.Tensor[];
    const [x, gamma, y, mean, variance] = saved;
    const [dx, dgamma, dbeta] = tf
      .engine()
      .runKernel(BATCH_NORM_TRAIN_GRAD, { dy, x, y, gamma, mean, variance, dmean, dvar } as unknown as tf.NamedTensorMap, attrs) as tf.Tensor[];
    return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
  },
};

/** Registers the fused op's kernels (wasm, cpu) and gradient. Idempotent. */
export function registerBatchNormTraining(): void {
  for (const config of BATCH_NORM_KERNELS) {
    if (tf.getKernel(config.kernelName, config.backendName) == null) tf.registerKernel(config);
  }
  if (tf.getGradient(BATCH_NORM_TRAIN) == null) tf.registerGradient(BATCH_NORM_GRAD_CONFIG);
}

export interface BatchNormTrainingResult<R extends tf.Rank> {
  /** act(gamma * (x - mean) / sqrt(variance + eps) + beta). */
  y: tf.Tensor<R>;
  /** Batch mean per channel (over all axes but the last). */
  mean: tf.Tensor1D;
  /** Biased batch variance per channel (divide by count; multiply by n/(n-1) for PyTorch's running_var). */
  variance: tf.Tensor1D;
}

/**
 * Training-mode batch norm over all axes but the last (NHWC: over N, H, W), optionally followed by ReLU or
 * leaky ReLU, differentiable w.r.t. x, gamma and beta. Same values as tf.moments + tf.batchNorm (+ activation).
 */
export function batchNormTraining<R extends tf.Rank>(
  x: tf.Tensor<R>,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  opts: { varianceEpsilon?: number; activation?: BatchNormActivation; alpha?: number } = {},
): BatchNormTrainingResult<R> {
  const varianceEpsilon = opts.varianceEpsilon ?? 1e-3;
  const activation = opts.activation ?? 'linear';
  const alpha = opts.alpha ?? 0.2;
  if (activation === 'leakyRelu' && !(alpha > 0)) {
    throw new UserError(`leaky ReLU slope ${alpha} after batch norm`, 'use a positive alpha');
  }
  if (x.rank < 2) throw new UserError(`batch norm needs a channel axis, got rank ${x.rank}`, 'pass [N, ..., C] activations');
  registerBatchNormTraining();
  if (tf.getKernel(BATCH_NORM_TRAIN, tf.getBackend()) == null) {
    return tf.tidy(() => {
      const axes = [...Array(x.rank - 1).keys()];
      const { mean, variance } = tf.moments(x, axes);
      const pre = tf.batchNorm(x, mean, variance, beta, gamma, varianceEpsilon);
      const y = activation === 'relu' ? tf.relu(pre) : activation === 'leakyRelu' ? tf.leakyRelu(pre, alpha) : pre;
      return { y: y as tf.Tensor<R>, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
    });
  }
  const [y, mean, variance] = tf
    .engine()
    .runKernel(
      BATCH_NORM_TRAIN,
      { x, gamma, beta } as unknown as tf.NamedTensorMap,
      { varianceEpsilon, activation: ACTIVATION_CODE[activation], alpha } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor[];
  return { y: y as tf.Tensor<R>, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}
