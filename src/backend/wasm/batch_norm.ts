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
import { splitCalls, type NativeCall } from './helper_thread.ts';
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

/** Float32 arrays by tensor name: what a JS loop reads and the outputs it fills. */
export type Arrays<K extends string> = Record<K, Float32Array>;

function arraysOf<K extends string>(tensors: Record<K, tf.TensorInfo>, view: (t: tf.TensorInfo) => Float32Array): Arrays<K> {
  const arrays = {} as Arrays<K>;
  for (const name of Object.keys(tensors) as K[]) arrays[name] = view(tensors[name]);
  return arrays;
}

/** The heap views of `tensors` under the same names (take them after the last allocation: it may grow the heap). */
export function heapArrays<K extends string>(backend: BackendWasm, tensors: Record<K, tf.TensorInfo>): Arrays<K> {
  return arraysOf(tensors, (t) => f32View(backend, t));
}

/** A layer's per-channel statistics and learned affine, and the y = x * scale + shift coefficients derived from them. */
export type NormArrays = Arrays<'gamma' | 'beta' | 'mean' | 'variance' | 'scale' | 'shift'>;

/** Per-channel float64 sums: of x and x^2 (forward), of dpre and dpre * (x - mean) (backward). */
export type ChannelSums = [Float64Array, Float64Array];

/**
 * How the forward turns x's sums over P rows into mean, variance (stored as float32) and scale, shift. Here
 * (forwardCoefficients) from the float64 statistics; the pooled op derives them from the float32-rounded ones.
 */
export type CoefficientRule = (sums: ChannelSums, P: number, a: NormArrays, eps: number) => void;

/** Reused float64 per-channel accumulators (zeroed), for the JS loops. */
let sums = new Float64Array(0);
let sumsB = new Float64Array(0);
export function accumulators(c: number): ChannelSums {
  if (sums.length < c) {
    sums = new Float64Array(c);
    sumsB = new Float64Array(c);
  }
  sums.fill(0, 0, c);
  sumsB.fill(0, 0, c);
  return [sums, sumsB];
}

/** Batch mean and biased variance of channel c from its float64 sums over P rows (float64; stored as float32). */
export function moments([s1, s2]: ChannelSums, P: number, c: number): [number, number] {
  const m = s1[c] / P;
  return [m, Math.max(0, s2[c] / P - m * m)];
}

/**
 * The forward's statistics in JS: sums of x (viewed as [P, C]) and x^2 per channel in float64, then mean and
 * variance into `a` and the scale and shift of the apply pass, by `rule`.
 */
export function statisticsJs(
  a: Arrays<'x' | 'gamma' | 'beta' | 'mean' | 'variance'>,
  C: number,
  eps: number,
  rule: CoefficientRule,
): Arrays<'scale' | 'shift'> {
  const { x } = a;
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
  rule([s1, s2], x.length / C, { ...a, scale, shift }, eps);
  return { scale, shift };
}

/** Forward over x viewed as [P, C]: batch mean/biased variance per channel, y = act((x-mean)*rstd*gamma + beta). */
function forward(a: Arrays<'x' | 'gamma' | 'beta' | 'y' | 'mean' | 'variance'>, C: number, attrs: BnAttrs): void {
  const { x, y } = a;
  const { scale, shift } = statisticsJs(a, C, attrs.varianceEpsilon, forwardCoefficients);
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

/** What the backward's coefficients are computed from and the outputs they fill besides dx. */
export type GradArrays = Arrays<'gamma' | 'mean' | 'variance' | 'dmean' | 'dvar' | 'dgamma' | 'dbeta'>;

/**
 * The backward's dx = k1*dpre + k2*x + k3 coefficients (new arrays) and dgamma, dbeta (into `a`), from the float64
 * gradient sums over P rows.
 */
export function gradCoefficientsJs(sums: ChannelSums, P: number, a: GradArrays, eps: number): Arrays<'k1' | 'k2' | 'k3'> {
  const C = a.gamma.length;
  const k = { k1: new Float32Array(C), k2: new Float32Array(C), k3: new Float32Array(C) };
  backwardCoefficients(sums, P, { ...a, ...k }, eps);
  return k;
}

/**
 * Backward. dpre = dy * act'(pre) (read off y: pre > 0 iff y > 0 for relu/leaky with alpha > 0).
 * dx = gamma*rstd*(dpre - mean(dpre) - xhat*mean(dpre*xhat)) + dmean/P + dvar*2(x-mean)/P,
 * dgamma = sum(dpre*xhat), dbeta = sum(dpre).
 */
function backward(a: GradArrays & Arrays<'dy' | 'x' | 'y' | 'dx'>, C: number, attrs: BnAttrs): void {
  const { dy, x, y, mean, dx } = a;
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
  const { k1, k2, k3 } = gradCoefficientsJs([sdy, sdyx], P, a, attrs.varianceEpsilon);
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

/** Per-channel scale/shift for the forward apply pass, from the float64 sums and statistics. */
function forwardCoefficients(sums: ChannelSums, P: number, ch: NormArrays, eps: number): void {
  const { gamma, beta, mean, variance, scale, shift } = ch;
  for (let c = 0; c < gamma.length; c++) {
    const [m, v] = moments(sums, P, c);
    mean[c] = m;
    variance[c] = v;
    const k = gamma[c] / Math.sqrt(v + eps);
    scale[c] = k;
    shift[c] = beta[c] - m * k;
  }
}

/** Per-channel dx = k1*dpre + k2*x + k3 coefficients and dgamma/dbeta, from the float64 gradient sums. */
function backwardCoefficients([sdy, sdyx]: ChannelSums, P: number, ch: GradArrays & Arrays<'k1' | 'k2' | 'k3'>, eps: number): void {
  const { gamma, mean, variance, dmean, dvar, k1, k2, k3, dgamma, dbeta } = ch;
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

/** Per-channel views of the heap at byte offsets: float64 sums, float32 coefficients (after the last allocation). */
export function channelViews(backend: BackendWasm, C: number) {
  const buf = heapF32(backend).buffer;
  return { f64: (at: number) => new Float64Array(buf, at, C), f32: (at: number) => new Float32Array(buf, at, C) };
}

/**
 * Runs a pass of per-channel sums split between the threads: the main thread's half writes its two float64 sums
 * at byte offsets `ours` and ours + 8C, the helper thread's at `theirs` and theirs + 8C, added into ours here.
 */
export function runSplitSums(backend: BackendWasm, nk: NativeKernels, calls: [NativeCall[], NativeCall[]], C: number, ours: number, theirs: number): void {
  runNativeSplit(backend, nk, calls);
  if (calls[1].length === 0) return;
  const { f64 } = channelViews(backend, C);
  for (const at of [0, 8 * C]) {
    const a = f64(ours + at);
    const b = f64(theirs + at);
    for (let c = 0; c < C; c++) a[c] += b[c];
  }
}

/**
 * The forward's statistics on the helper module: sums of x ([P, C]) and x^2 per channel, rows split between
 * the threads, then mean and variance into their tensors and the apply pass's scale and shift, by `rule`, into
 * scratch. Returns the scratch's byte offset s: scale at s + 16C, shift at s + 20C. Scratch layout (56 * C bytes):
 * s1, s2 (float64), scale, shift, 2 x C float32 block accumulators, then the helper thread's s1, s2 and block.
 */
export function statisticsWasm(
  backend: BackendWasm,
  nk: NativeKernels,
  t: Record<'x' | 'gamma' | 'beta' | 'mean' | 'variance', tf.TensorInfo>,
  eps: number,
  rule: CoefficientRule,
): number {
  const C = t.gamma.shape[0];
  const P = tf.util.sizeFromShape(t.x.shape) / C;
  const s = scratch(backend, 56 * C);
  const xo = offsetOf(backend, t.x);
  const calls = splitCalls(
    P,
    (a, b) => [a === 0 ? ['bn_sums', xo, b, C, s, s + 8 * C, s + 24 * C] : ['bn_sums', xo + 4 * a * C, b - a, C, s + 32 * C, s + 40 * C, s + 48 * C]],
    ROWS_PER_THREAD,
  );
  runSplitSums(backend, nk, calls, C, s, s + 32 * C);
  const { f64, f32 } = channelViews(backend, C);
  const { gamma, beta, mean, variance } = heapArrays(backend, t);
  rule([f64(s), f64(s + 8 * C)], P, { gamma, beta, mean, variance, scale: f32(s + 16 * C), shift: f32(s + 20 * C) }, eps);
  return s;
}

/**
 * The backward's sums pass on the helper module (`calls`: each half's sums at `ours` / `theirs`, as runSplitSums),
 * then dgamma, dbeta into their tensors and k1, k2, k3 into scratch at byte offset k (k2 at k + 4C, k3 at k + 8C).
 */
export function gradCoefficientsWasm(
  backend: BackendWasm,
  nk: NativeKernels,
  sums: { calls: [NativeCall[], NativeCall[]]; ours: number; theirs: number },
  t: Record<keyof GradArrays, tf.TensorInfo>,
  P: number,
  k: number,
  eps: number,
): void {
  const C = t.gamma.shape[0];
  runSplitSums(backend, nk, sums.calls, C, sums.ours, sums.theirs);
  const { f64, f32 } = channelViews(backend, C);
  const a = heapArrays(backend, t);
  backwardCoefficients([f64(sums.ours), f64(sums.ours + 8 * C)], P, { ...a, k1: f32(k), k2: f32(k + 4 * C), k3: f32(k + 8 * C) }, eps);
}

function forwardWasm(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { x, gamma, beta } = args.inputs as unknown as Record<'x' | 'gamma' | 'beta', tf.TensorInfo>;
  const attrs = args.attrs as unknown as BnAttrs;
  const C = channelsOf(x, gamma);
  const y = allocF32(backend, x.shape);
  const mean = allocF32(backend, [C]);
  const variance = allocF32(backend, [C]);
  const nk = nativeKernels(backend);
  const P = tf.util.sizeFromShape(x.shape) / C;
  if (nk == null || P === 0) {
    forward(heapArrays(backend, { x, gamma, beta, y, mean, variance }), C, attrs);
    return [y, mean, variance];
  }
  const s = statisticsWasm(backend, nk, { x, gamma, beta, mean, variance }, attrs.varianceEpsilon, forwardCoefficients);
  const xo = offsetOf(backend, x);
  const yo = offsetOf(backend, y);
  runNativeSplit(
    backend,
    nk,
    splitCalls(P, (a, b) => [['bn_apply', xo + 4 * a * C, yo + 4 * a * C, b - a, C, s + 16 * C, s + 20 * C, attrs.activation, attrs.alpha]], ROWS_PER_THREAD),
  );
  return [y, mean, variance];
}

type GradInputs = Record<'dy' | 'x' | 'y' | 'gamma' | 'mean' | 'variance' | 'dmean' | 'dvar', tf.TensorInfo>;

function backwardWasm(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const i = args.inputs as unknown as GradInputs;
  const attrs = args.attrs as unknown as BnAttrs;
  const C = channelsOf(i.x, i.gamma);
  const dx = allocF32(backend, i.x.shape);
  const dgamma = allocF32(backend, [C]);
  const dbeta = allocF32(backend, [C]);
  const nk = nativeKernels(backend);
  const P = tf.util.sizeFromShape(i.x.shape) / C;
  if (nk == null || P === 0) {
    backward(heapArrays(backend, { ...i, dx, dgamma, dbeta }), C, attrs);
    return [dx, dgamma, dbeta];
  }
  // Scratch: sdy, sdyx (float64 x C), k1, k2, k3 (float32 x C), 2 x C float32 block accumulators, then the
  // helper thread's sdy, sdyx and block accumulators.
  const s = scratch(backend, 60 * C);
  const [dyo, xo, yo, dxo, mo] = [i.dy, i.x, i.y, dx, i.mean].map((t) => offsetOf(backend, t));
  const calls = splitCalls(
    P,
    (a, b) => {
      const [sdy, sdyx, blk] = a === 0 ? [s, s + 8 * C, s + 28 * C] : [s + 36 * C, s + 44 * C, s + 52 * C];
      return [['bn_grad_sums', dyo + 4 * a * C, xo + 4 * a * C, yo + 4 * a * C, b - a, C, mo, attrs.activation, attrs.alpha, sdy, sdyx, blk]];
    },
    ROWS_PER_THREAD,
  );
  gradCoefficientsWasm(backend, nk, { calls, ours: s, theirs: s + 36 * C }, { ...i, dgamma, dbeta }, P, s + 16 * C, attrs.varianceEpsilon);
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

/** The cpu backend's arrays of `tensors` under the same names. */
export function cpuArrays<K extends string>(backend: CpuBackend, tensors: Record<K, tf.TensorInfo>): Arrays<K> {
  return arraysOf(tensors, (t) => backend.data.get(t.dataId).values);
}

function forwardCpu(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as CpuBackend;
  const { x, gamma, beta } = args.inputs as unknown as Record<'x' | 'gamma' | 'beta', tf.TensorInfo>;
  const C = channelsOf(x, gamma);
  const y = new Float32Array(tf.util.sizeFromShape(x.shape));
  const mean = new Float32Array(C);
  const variance = new Float32Array(C);
  forward({ ...cpuArrays(backend, { x, gamma, beta }), y, mean, variance }, C, args.attrs as unknown as BnAttrs);
  return [backend.makeTensorInfo(x.shape, 'float32', y), backend.makeTensorInfo([C], 'float32', mean), backend.makeTensorInfo([C], 'float32', variance)];
}

function backwardCpu(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as CpuBackend;
  const i = args.inputs as unknown as GradInputs;
  const C = channelsOf(i.x, i.gamma);
  const dx = new Float32Array(tf.util.sizeFromShape(i.x.shape));
  const dgamma = new Float32Array(C);
  const dbeta = new Float32Array(C);
  backward({ ...cpuArrays(backend, i), dx, dgamma, dbeta }, C, args.attrs as unknown as BnAttrs);
  return [backend.makeTensorInfo(i.x.shape, 'float32', dx), backend.makeTensorInfo([C], 'float32', dgamma), backend.makeTensorInfo([C], 'float32', dbeta)];
}

type KernelImpl = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

/**
 * Registers a fused batch-norm op, idempotently: its forward and gradient kernels on wasm and cpu, and its
 * gradient, which hands the output gradients (dy, dmean, dvar) and the saved tensors (`saved` names them: the
 * inputs to save, then the outputs) to the gradient kernel, whose outputs are dx, dgamma, dbeta.
 */
export function registerFusedOp(op: {
  name: string;
  gradName: string;
  kernels: Record<'wasm' | 'cpu', [forward: KernelImpl, backward: KernelImpl]>;
  inputsToSave: string[];
  outputsToSave: boolean[];
  saved: string[];
}): void {
  for (const [backendName, [forward, backward]] of Object.entries(op.kernels)) {
    for (const [kernelName, impl] of [
      [op.name, forward],
      [op.gradName, backward],
    ] as const) {
      if (tf.getKernel(kernelName, backendName) == null) tf.registerKernel({ kernelName, backendName, kernelFunc: impl as unknown as tf.KernelFunc });
    }
  }
  if (tf.getGradient(op.name) != null) return;
  tf.registerGradient({
    kernelName: op.name,
    inputsToSave: op.inputsToSave,
    outputsToSave: op.outputsToSave,
    gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
      const [dy, dmean, dvar] = dys as tf.Tensor[];
      const inputs: tf.NamedTensorMap = { dy, dmean, dvar };
      op.saved.forEach((name, i) => {
        inputs[name] = saved[i];
      });
      const [dx, dgamma, dbeta] = tf.engine().runKernel(op.gradName, inputs, attrs) as tf.Tensor[];
      return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
    },
  });
}

/** Registers the fused op's kernels (wasm, cpu) and gradient. Idempotent. */
export function registerBatchNormTraining(): void {
  registerFusedOp({
    name: BATCH_NORM_TRAIN,
    gradName: BATCH_NORM_TRAIN_GRAD,
    kernels: { wasm: [forwardWasm, backwardWasm], cpu: [forwardCpu, backwardCpu] },
    inputsToSave: ['x', 'gamma'],
    outputsToSave: [true, true, true],
    saved: ['x', 'gamma', 'y', 'mean', 'variance'],
  });
}

export interface BatchNormTrainingResult<R extends tf.Rank> {
  /** act(gamma * (x - mean) / sqrt(variance + eps) + beta). */
  y: tf.Tensor<R>;
  /** Batch mean per channel (over all axes but the last). */
  mean: tf.Tensor1D;
  /** Biased batch variance per channel (divide by count; multiply by n/(n-1) for PyTorch's running_var). */
  variance: tf.Tensor1D;
}

/** Options of the fused batch-norm ops. */
export interface BatchNormOptions {
  varianceEpsilon?: number;
  activation?: BatchNormActivation;
  alpha?: number;
}

/** The options with their defaults (epsilon 1e-3, linear, leaky slope 0.2); a leaky ReLU needs a positive slope. */
export function withDefaults(opts: BatchNormOptions): Required<BatchNormOptions> {
  const o = { varianceEpsilon: opts.varianceEpsilon ?? 1e-3, activation: opts.activation ?? 'linear', alpha: opts.alpha ?? 0.2 };
  if (o.activation === 'leakyRelu' && !(o.alpha > 0)) throw new UserError(`leaky ReLU slope ${o.alpha} after batch norm`, 'use a positive alpha');
  return o;
}

/** The fused kernels' attributes (BnAttrs) for the options. */
export function kernelAttrs(o: Required<BatchNormOptions>): tf.NamedAttrMap {
  return { varianceEpsilon: o.varianceEpsilon, activation: ACTIVATION_CODE[o.activation], alpha: o.alpha } as unknown as tf.NamedAttrMap;
}

/** act(t) for the composed fallbacks. */
export function activate<T extends tf.Tensor>(t: T, activation: BatchNormActivation, alpha: number): T {
  return activation === 'relu' ? tf.relu(t) : activation === 'leakyRelu' ? tf.leakyRelu(t, alpha) : t;
}

/** Runs a fused op's forward kernel on x, gamma, beta: y, the batch mean and variance. */
export function runFused<R extends tf.Rank>(
  kernelName: string,
  x: tf.Tensor,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  o: Required<BatchNormOptions>,
): BatchNormTrainingResult<R> {
  const [y, mean, variance] = tf.engine().runKernel(kernelName, { x, gamma, beta } as unknown as tf.NamedTensorMap, kernelAttrs(o)) as tf.Tensor[];
  return { y: y as tf.Tensor<R>, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

/**
 * Training-mode batch norm over all axes but the last (NHWC: over N, H, W), optionally followed by ReLU or
 * leaky ReLU, differentiable w.r.t. x, gamma and beta. Same values as tf.moments + tf.batchNorm (+ activation).
 */
export function batchNormTraining<R extends tf.Rank>(
  x: tf.Tensor<R>,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  opts: BatchNormOptions = {},
): BatchNormTrainingResult<R> {
  const o = withDefaults(opts);
  if (x.rank < 2) throw new UserError(`batch norm needs a channel axis, got rank ${x.rank}`, 'pass [N, ..., C] activations');
  registerBatchNormTraining();
  if (tf.getKernel(BATCH_NORM_TRAIN, tf.getBackend()) == null) {
    return tf.tidy(() => {
      const axes = [...Array(x.rank - 1).keys()];
      const { mean, variance } = tf.moments(x, axes);
      const y = activate(tf.batchNorm(x, mean, variance, beta, gamma, o.varianceEpsilon), o.activation, o.alpha);
      return { y: y as tf.Tensor<R>, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
    });
  }
  return runFused(BATCH_NORM_TRAIN, x, gamma, beta, o);
}
