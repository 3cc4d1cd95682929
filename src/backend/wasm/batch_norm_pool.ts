/**
 * Training-mode batch norm + activation + 2x2/stride-2 max pool ('valid') as one op with its own gradient:
 * Conv-4's block tail. Fused, the full-size activation is never stored (the op keeps x, which the
 * convolution's output is anyway, and the pooled output), and the gradient goes from the pooled gradient
 * straight to dx, recomputing each window's activations and winner from x, instead of materialising the
 * full-size max-pool gradient. At 84 px with 400 images per step (SLA, 5-shot) that is 1.4 GB less at the
 * peak, which is what lets the step fit the 4 GiB wasm heap; it is also two fewer passes over the largest
 * tensors. The pooling window's winner is its first maximum, as in tf.maxPool's gradient.
 *
 * Kernels for wasm (SIMD helpers, split between threads; JS loops if the helpers are missing or C % 4 != 0;
 * oneDNN's batch norm with fused ReLU and max pool when the accelerator is active, onednn.ts, for linear and
 * ReLU) and cpu (JS loops); elsewhere `batchNormActPool` composes batchNormTraining and tf.maxPool.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../util/errors.ts';
import {
  accumulators,
  ACTIVATION_CODE,
  addSums,
  backwardCoefficients,
  batchNormTraining,
  channelsOf,
  channelSums,
  registerBatchNormTraining,
  type BatchNormActivation,
  type BatchNormTrainingResult,
  type BnAttrs,
  type CpuBackend,
} from './batch_norm.ts';
import { splitCalls } from './helper_thread.ts';
import { allocF32, f32View, heapF32, offsetOf, type BackendWasm, type KernelArgs } from './heap.ts';
import { nativeKernels, runNativeSplit, scratch } from './native.ts';
import { activeOnednn, floatOffset, heapView } from './onednn.ts';

export const BN_ACT_POOL = 'FewshotBatchNormActPool';
export const BN_ACT_POOL_GRAD = 'FewshotBatchNormActPoolGrad';
export const BN_ACT_POOL_INFERENCE = 'FewshotBatchNormActPoolInference';

interface Dims {
  N: number;
  H: number;
  W: number;
  C: number;
  OH: number;
  OW: number;
}

function dimsOf(x: tf.TensorInfo, gamma: tf.TensorInfo): Dims {
  if (x.shape.length !== 4) throw new UserError(`batch norm + max pool needs NHWC activations, got shape [${x.shape}]`, 'pass a rank-4 [N, H, W, C] tensor');
  const C = channelsOf(x, gamma);
  const [N, H, W] = x.shape;
  return { N, H, W, C, OH: Math.floor(H / 2), OW: Math.floor(W / 2) };
}

/**
 * Mean, biased variance (rounded to float32, as returned) and y = x * scale + shift coefficients. Forward and
 * gradient both derive scale/shift from the float32 mean/variance, so they recompute identical activations.
 */
function coefficients(
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
    mean[c] = m;
    variance[c] = Math.max(0, s2[c] / P - m * m);
  }
  scaleShift(gamma, beta, mean, variance, eps, scale, shift);
}

function scaleShift(
  gamma: Float32Array,
  beta: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  eps: number,
  scale: Float32Array,
  shift: Float32Array,
): void {
  for (let c = 0; c < gamma.length; c++) {
    scale[c] = gamma[c] / Math.sqrt(variance[c] + eps);
    shift[c] = beta[c] - mean[c] * scale[c];
  }
}

// ---- JS loops (cpu backend, and wasm without the helpers).

function act(v: number, code: number, alpha: number): number {
  return code === 0 || v > 0 ? v : code === 1 ? 0 : v * alpha;
}
function actGrad(g: number, y: number, code: number, alpha: number): number {
  return code === 0 || y > 0 ? g : code === 1 ? 0 : g * alpha;
}

/** The winner (0..3, first maximum) of window (n, oh, ow) in channel c, and its activation. */
function winner(
  x: Float32Array,
  d: Dims,
  n: number,
  oh: number,
  ow: number,
  c: number,
  scale: Float32Array,
  shift: Float32Array,
  code: number,
  alpha: number,
): [number, number] {
  let best = -Infinity;
  let at = -1;
  for (let q = 0; q < 4; q++) {
    const i = ((n * d.H + 2 * oh + (q >> 1)) * d.W + 2 * ow + (q & 1)) * d.C + c;
    const y = Math.fround(act(Math.fround(Math.fround(x[i] * scale[c]) + shift[c]), code, alpha));
    if (y > best) {
      best = y;
      at = q;
    }
  }
  return [at, best];
}

function forwardJs(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  d: Dims,
  attrs: BnAttrs,
  p: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
): void {
  const [s1, s2] = accumulators(d.C);
  for (let base = 0; base < x.length; base += d.C) {
    for (let c = 0; c < d.C; c++) {
      s1[c] += x[base + c];
      s2[c] += x[base + c] * x[base + c];
    }
  }
  const scale = new Float32Array(d.C);
  const shift = new Float32Array(d.C);
  coefficients(s1, s2, x.length / d.C, gamma, beta, attrs.varianceEpsilon, mean, variance, scale, shift);
  let o = 0;
  for (let n = 0; n < d.N; n++)
    for (let oh = 0; oh < d.OH; oh++)
      for (let ow = 0; ow < d.OW; ow++) for (let c = 0; c < d.C; c++) p[o++] = winner(x, d, n, oh, ow, c, scale, shift, attrs.activation, attrs.alpha)[1];
}

function backwardJs(
  dp: Float32Array,
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  dmean: Float32Array,
  dvar: Float32Array,
  d: Dims,
  attrs: BnAttrs,
  dx: Float32Array,
  dgamma: Float32Array,
  dbeta: Float32Array,
): void {
  const { C } = d;
  const scale = new Float32Array(C);
  const shift = new Float32Array(C);
  scaleShift(gamma, beta, mean, variance, attrs.varianceEpsilon, scale, shift);
  // dpre lives only on window winners: dpre[i] for a full-size index i.
  const dpre = new Map<number, number>();
  const [sdy, sdyx] = accumulators(C);
  let o = 0;
  for (let n = 0; n < d.N; n++)
    for (let oh = 0; oh < d.OH; oh++)
      for (let ow = 0; ow < d.OW; ow++)
        for (let c = 0; c < C; c++, o++) {
          const [q, y] = winner(x, d, n, oh, ow, c, scale, shift, attrs.activation, attrs.alpha);
          if (q < 0) continue;
          const i = ((n * d.H + 2 * oh + (q >> 1)) * d.W + 2 * ow + (q & 1)) * C + c;
          const g = actGrad(dp[o], y, attrs.activation, attrs.alpha);
          dpre.set(i, g);
          sdy[c] += g;
          sdyx[c] += g * (x[i] - mean[c]);
        }
  const k1 = new Float32Array(C);
  const k2 = new Float32Array(C);
  const k3 = new Float32Array(C);
  backwardCoefficients(sdy, sdyx, x.length / C, gamma, mean, variance, dmean, dvar, attrs.varianceEpsilon, k1, k2, k3, dgamma, dbeta);
  for (let i = 0; i < x.length; i++) {
    const c = i % C;
    dx[i] = k1[c] * (dpre.get(i) ?? 0) + k2[c] * x[i] + k3[c];
  }
}

// ---- kernels.

/**
 * What runs a pass: the oneDNN accelerator where it takes the call (active, not LeakyRelu, nothing empty), else
 * the helper module (nk) or the JS loops; with heap views `v`, float offsets `o` and the pixel count P.
 */
function passEngines(backend: BackendWasm, attrs: BnAttrs, d: Dims) {
  const nk = nativeKernels(backend);
  const P = d.N * d.H * d.W;
  const active = activeOnednn();
  return {
    v: (t: tf.TensorInfo) => f32View(backend, t),
    o: (t: tf.TensorInfo) => floatOffset(backend, t),
    nk,
    P,
    acc: active != null && attrs.activation !== ACTIVATION_CODE.leakyRelu && P > 0 ? active : null,
  };
}

type PoolInputs = Record<'dy' | 'x' | 'gamma' | 'beta' | 'mean' | 'variance' | 'dmean' | 'dvar', tf.TensorInfo>;

function forwardWasm(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { x, gamma, beta } = args.inputs as unknown as Record<'x' | 'gamma' | 'beta', tf.TensorInfo>;
  const attrs = args.attrs as unknown as BnAttrs;
  const d = dimsOf(x, gamma);
  const p = allocF32(backend, [d.N, d.OH, d.OW, d.C]);
  const mean = allocF32(backend, [d.C]);
  const variance = allocF32(backend, [d.C]);
  const { v, o, nk, P, acc } = passEngines(backend, attrs, d);
  if (acc != null) {
    acc.bnPoolForward(heapView(backend), o(x), o(gamma), o(beta), o(p), o(mean), o(variance), [d.N, d.H, d.W, d.C, attrs.activation], attrs.varianceEpsilon);
    return [p, mean, variance];
  }
  if (nk == null || d.C % 4 !== 0 || P === 0) {
    forwardJs(v(x), v(gamma), v(beta), d, attrs, v(p), v(mean), v(variance));
    return [p, mean, variance];
  }
  // Scratch: channelSums' layout (batch_norm.ts); scale and shift at s + 16C, s + 20C.
  const { C } = d;
  const s = scratch(backend, 56 * C);
  const [xo, po] = [offsetOf(backend, x), offsetOf(backend, p)];
  channelSums(backend, nk, xo, P, C, s);
  const buf = heapF32(backend).buffer;
  const f64 = (at: number) => new Float64Array(buf, at, C);
  const f32 = (at: number) => new Float32Array(buf, at, C);
  coefficients(f64(s), f64(s + 8 * C), P, v(gamma), v(beta), attrs.varianceEpsilon, v(mean), v(variance), f32(s + 16 * C), f32(s + 20 * C));
  const img = d.H * d.W * C;
  const pooled = d.OH * d.OW * C;
  runNativeSplit(
    backend,
    nk,
    splitCalls(d.N, (a, b) => [
      ['bn_act_pool_apply', xo + 4 * a * img, po + 4 * a * pooled, b - a, d.H, d.W, C, s + 16 * C, s + 20 * C, attrs.activation, attrs.alpha],
    ]),
  );
  return [p, mean, variance];
}

function backwardWasm(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const i = args.inputs as unknown as PoolInputs;
  const attrs = args.attrs as unknown as BnAttrs;
  const d = dimsOf(i.x, i.gamma);
  const { C } = d;
  const dx = allocF32(backend, i.x.shape);
  const dgamma = allocF32(backend, [C]);
  const dbeta = allocF32(backend, [C]);
  const { v, o, nk, P, acc } = passEngines(backend, attrs, d);
  if (acc != null) {
    acc.bnPoolBackward(
      heapView(backend),
      o(i.dy),
      o(i.x),
      o(i.gamma),
      o(i.beta),
      o(i.mean),
      o(i.variance),
      o(i.dmean),
      o(i.dvar),
      o(dx),
      o(dgamma),
      o(dbeta),
      [d.N, d.H, d.W, C, attrs.activation],
      attrs.varianceEpsilon,
    );
    return [dx, dgamma, dbeta];
  }
  if (nk == null || C % 4 !== 0 || P === 0) {
    backwardJs(v(i.dy), v(i.x), v(i.gamma), v(i.beta), v(i.mean), v(i.variance), v(i.dmean), v(i.dvar), d, attrs, v(dx), v(dgamma), v(dbeta));
    return [dx, dgamma, dbeta];
  }
  // Scratch: sdy, sdyx (float64 x C), scale, shift, k1, k2, k3 (float32 x C), block, then the helper's sdy, sdyx, block.
  const s = scratch(backend, 68 * C);
  const buf0 = heapF32(backend).buffer;
  scaleShift(
    v(i.gamma),
    v(i.beta),
    v(i.mean),
    v(i.variance),
    attrs.varianceEpsilon,
    new Float32Array(buf0, s + 16 * C, C),
    new Float32Array(buf0, s + 20 * C, C),
  );
  const [dpo, xo, dxo, mo] = [i.dy, i.x, dx, i.mean].map((t) => offsetOf(backend, t));
  const img = d.H * d.W * C;
  const pooled = d.OH * d.OW * C;
  const sums = splitCalls(d.N, (a, b) => [
    a === 0
      ? ['bn_act_pool_grad_sums', dpo, xo, b, d.H, d.W, C, s + 16 * C, s + 20 * C, mo, attrs.activation, attrs.alpha, s, s + 8 * C, s + 36 * C]
      : [
          'bn_act_pool_grad_sums',
          dpo + 4 * a * pooled,
          xo + 4 * a * img,
          b - a,
          d.H,
          d.W,
          C,
          s + 16 * C,
          s + 20 * C,
          mo,
          attrs.activation,
          attrs.alpha,
          s + 44 * C,
          s + 52 * C,
          s + 60 * C,
        ],
  ]);
  runNativeSplit(backend, nk, sums);
  const buf = heapF32(backend).buffer;
  const f64 = (at: number) => new Float64Array(buf, at, C);
  const f32 = (at: number) => new Float32Array(buf, at, C);
  if (sums[1].length > 0) {
    addSums(buf, s, s + 44 * C, C);
    addSums(buf, s + 8 * C, s + 52 * C, C);
  }
  backwardCoefficients(
    f64(s),
    f64(s + 8 * C),
    P,
    v(i.gamma),
    v(i.mean),
    v(i.variance),
    v(i.dmean),
    v(i.dvar),
    attrs.varianceEpsilon,
    f32(s + 24 * C),
    f32(s + 28 * C),
    f32(s + 32 * C),
    v(dgamma),
    v(dbeta),
  );
  runNativeSplit(
    backend,
    nk,
    splitCalls(d.N, (a, b) => [
      [
        'bn_act_pool_grad_apply',
        dpo + 4 * a * pooled,
        xo + 4 * a * img,
        dxo + 4 * a * img,
        b - a,
        d.H,
        d.W,
        C,
        s + 16 * C,
        s + 20 * C,
        s + 24 * C,
        s + 28 * C,
        s + 32 * C,
        attrs.activation,
        attrs.alpha,
      ],
    ]),
  );
  return [dx, dgamma, dbeta];
}

/** Inference: maxPool(act(x * scale + shift)) with scale/shift from given (running) statistics; no gradient. */
function inferenceWasm(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const i = args.inputs as unknown as Record<'x' | 'gamma' | 'beta' | 'mean' | 'variance', tf.TensorInfo>;
  const attrs = args.attrs as unknown as BnAttrs;
  const d = dimsOf(i.x, i.gamma);
  const { C } = d;
  const p = allocF32(backend, [d.N, d.OH, d.OW, C]);
  const nk = nativeKernels(backend) as NonNullable<ReturnType<typeof nativeKernels>>;
  const s = scratch(backend, 8 * C);
  const buf = heapF32(backend).buffer;
  const v = (t: tf.TensorInfo) => f32View(backend, t);
  scaleShift(v(i.gamma), v(i.beta), v(i.mean), v(i.variance), attrs.varianceEpsilon, new Float32Array(buf, s, C), new Float32Array(buf, s + 4 * C, C));
  const [xo, po] = [offsetOf(backend, i.x), offsetOf(backend, p)];
  runNativeSplit(
    backend,
    nk,
    splitCalls(d.N, (a, b) => [
      ['bn_act_pool_apply', xo + 4 * a * d.H * d.W * C, po + 4 * a * d.OH * d.OW * C, b - a, d.H, d.W, C, s, s + 4 * C, attrs.activation, attrs.alpha],
    ]),
  );
  return p;
}

function forwardCpu(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as CpuBackend;
  const { x, gamma, beta } = args.inputs as unknown as Record<'x' | 'gamma' | 'beta', tf.TensorInfo>;
  const d = dimsOf(x, gamma);
  const v = (t: tf.TensorInfo) => backend.data.get(t.dataId).values;
  const p = new Float32Array(d.N * d.OH * d.OW * d.C);
  const mean = new Float32Array(d.C);
  const variance = new Float32Array(d.C);
  forwardJs(v(x), v(gamma), v(beta), d, args.attrs as unknown as BnAttrs, p, mean, variance);
  return [
    backend.makeTensorInfo([d.N, d.OH, d.OW, d.C], 'float32', p),
    backend.makeTensorInfo([d.C], 'float32', mean),
    backend.makeTensorInfo([d.C], 'float32', variance),
  ];
}

function backwardCpu(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as CpuBackend;
  const i = args.inputs as unknown as PoolInputs;
  const d = dimsOf(i.x, i.gamma);
  const v = (t: tf.TensorInfo) => backend.data.get(t.dataId).values;
  const dx = new Float32Array(tf.util.sizeFromShape(i.x.shape));
  const dgamma = new Float32Array(d.C);
  const dbeta = new Float32Array(d.C);
  backwardJs(v(i.dy), v(i.x), v(i.gamma), v(i.beta), v(i.mean), v(i.variance), v(i.dmean), v(i.dvar), d, args.attrs as unknown as BnAttrs, dx, dgamma, dbeta);
  return [backend.makeTensorInfo(i.x.shape, 'float32', dx), backend.makeTensorInfo([d.C], 'float32', dgamma), backend.makeTensorInfo([d.C], 'float32', dbeta)];
}

const KERNELS: ReadonlyArray<tf.KernelConfig> = [
  { kernelName: BN_ACT_POOL, backendName: 'wasm', kernelFunc: forwardWasm as unknown as tf.KernelFunc },
  { kernelName: BN_ACT_POOL_GRAD, backendName: 'wasm', kernelFunc: backwardWasm as unknown as tf.KernelFunc },
  { kernelName: BN_ACT_POOL, backendName: 'cpu', kernelFunc: forwardCpu as unknown as tf.KernelFunc },
  { kernelName: BN_ACT_POOL_GRAD, backendName: 'cpu', kernelFunc: backwardCpu as unknown as tf.KernelFunc },
];

const GRAD: tf.GradConfig = {
  kernelName: BN_ACT_POOL,
  inputsToSave: ['x', 'gamma', 'beta'],
  outputsToSave: [false, true, true],
  gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const [dy, dmean, dvar] = dys as tf.Tensor[];
    const [x, gamma, beta, mean, variance] = saved;
    const [dx, dgamma, dbeta] = tf
      .engine()
      .runKernel(BN_ACT_POOL_GRAD, { dy, x, gamma, beta, mean, variance, dmean, dvar } as unknown as tf.NamedTensorMap, attrs) as tf.Tensor[];
    return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
  },
};

function register(): void {
  registerBatchNormTraining();
  for (const config of KERNELS) if (tf.getKernel(config.kernelName, config.backendName) == null) tf.registerKernel(config);
  if (tf.getKernel(BN_ACT_POOL_INFERENCE, 'wasm') == null)
    tf.registerKernel({ kernelName: BN_ACT_POOL_INFERENCE, backendName: 'wasm', kernelFunc: inferenceWasm as unknown as tf.KernelFunc });
  if (tf.getGradient(BN_ACT_POOL) == null) tf.registerGradient(GRAD);
}

/**
 * maxPool(act(batchNormTraining(x)), 2, 2, 'valid') for NHWC x, with batch mean and biased variance, as one
 * differentiable op where a kernel exists (wasm, cpu), else as that composition. Same values either way.
 */
export function batchNormActPool(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  opts: { varianceEpsilon?: number; activation?: BatchNormActivation; alpha?: number } = {},
): BatchNormTrainingResult<tf.Rank.R4> {
  const varianceEpsilon = opts.varianceEpsilon ?? 1e-3;
  const activation = opts.activation ?? 'linear';
  const alpha = opts.alpha ?? 0.2;
  if (activation === 'leakyRelu' && !(alpha > 0)) throw new UserError(`leaky ReLU slope ${alpha} after batch norm`, 'use a positive alpha');
  register();
  if (tf.getKernel(BN_ACT_POOL, tf.getBackend()) == null) {
    return tf.tidy(() => {
      const { y, mean, variance } = batchNormTraining(x, gamma, beta, opts);
      return { y: tf.maxPool(y, 2, 2, 'valid'), mean, variance };
    });
  }
  const [y, mean, variance] = tf
    .engine()
    .runKernel(
      BN_ACT_POOL,
      { x, gamma, beta } as unknown as tf.NamedTensorMap,
      { varianceEpsilon, activation: ACTIVATION_CODE[activation], alpha } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor[];
  return { y: y as tf.Tensor4D, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

/**
 * Inference-mode counterpart: maxPool(act(batchNorm(x, mean, variance, beta, gamma)), 2, 2, 'valid') in one
 * pass on wasm (no full-size intermediate; the SLA evaluation forward runs 4x the images), else composed.
 */
export function batchNormActPoolInference(
  x: tf.Tensor4D,
  stats: { mean: tf.Tensor1D; variance: tf.Tensor1D; gamma: tf.Tensor1D; beta: tf.Tensor1D },
  opts: { varianceEpsilon: number; activation: BatchNormActivation; alpha: number },
): tf.Tensor4D {
  register();
  const C = x.shape[3];
  const fast = tf.getBackend() === 'wasm' && C % 4 === 0 && nativeKernels(tf.backend() as unknown as BackendWasm) != null && x.size > 0;
  if (!fast) {
    return tf.tidy(() => {
      const y = tf.batchNorm4d(x, stats.mean, stats.variance, stats.beta, stats.gamma, opts.varianceEpsilon);
      const a = opts.activation === 'relu' ? tf.relu(y) : opts.activation === 'leakyRelu' ? tf.leakyRelu(y, opts.alpha) : y;
      return tf.maxPool(a, 2, 2, 'valid');
    });
  }
  return tf
    .engine()
    .runKernel(
      BN_ACT_POOL_INFERENCE,
      { x, ...stats } as unknown as tf.NamedTensorMap,
      { varianceEpsilon: opts.varianceEpsilon, activation: ACTIVATION_CODE[opts.activation], alpha: opts.alpha } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor4D;
}
