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
  activate,
  batchNormTraining,
  channelsOf,
  channelViews,
  cpuArrays,
  gradCoefficientsJs,
  gradCoefficientsWasm,
  heapArrays,
  kernelAttrs,
  moments,
  registerBatchNormTraining,
  registerFusedOp,
  runFused,
  statisticsJs,
  statisticsWasm,
  withDefaults,
  type Arrays,
  type BatchNormOptions,
  type BatchNormTrainingResult,
  type BnAttrs,
  type ChannelSums,
  type CpuBackend,
  type GradArrays,
  type NormArrays,
} from './batch_norm.ts';
import { splitCalls } from './helper_thread.ts';
import { allocF32, offsetOf, type BackendWasm, type KernelArgs } from './heap.ts';
import { nativeKernels, runNativeSplit, scratch, type NativeKernels } from './native.ts';
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
function coefficients(sums: ChannelSums, P: number, ch: NormArrays, eps: number): void {
  for (let c = 0; c < ch.gamma.length; c++) [ch.mean[c], ch.variance[c]] = moments(sums, P, c);
  scaleShift(ch, eps);
}

function scaleShift(ch: NormArrays, eps: number): void {
  const { gamma, beta, mean, variance, scale, shift } = ch;
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

function forwardJs(a: Arrays<'x' | 'gamma' | 'beta' | 'p' | 'mean' | 'variance'>, d: Dims, attrs: BnAttrs): void {
  const { x, p } = a;
  const { scale, shift } = statisticsJs(a, d.C, attrs.varianceEpsilon, coefficients);
  let o = 0;
  for (let n = 0; n < d.N; n++)
    for (let oh = 0; oh < d.OH; oh++)
      for (let ow = 0; ow < d.OW; ow++) for (let c = 0; c < d.C; c++) p[o++] = winner(x, d, n, oh, ow, c, scale, shift, attrs.activation, attrs.alpha)[1];
}

function backwardJs(a: GradArrays & Arrays<'dy' | 'x' | 'beta' | 'dx'>, d: Dims, attrs: BnAttrs): void {
  const { dy: dp, x, mean, dx } = a;
  const { C } = d;
  const scale = new Float32Array(C);
  const shift = new Float32Array(C);
  scaleShift({ ...a, scale, shift }, attrs.varianceEpsilon);
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
  const { k1, k2, k3 } = gradCoefficientsJs([sdy, sdyx], x.length / C, a, attrs.varianceEpsilon);
  for (let i = 0; i < x.length; i++) {
    const c = i % C;
    dx[i] = k1[c] * (dpre.get(i) ?? 0) + k2[c] * x[i] + k3[c];
  }
}

// ---- kernels.

/**
 * What runs a pass: the oneDNN accelerator where it takes the call (active, not LeakyRelu, nothing empty), else
 * the helper module (nk) or the JS loops; with float offsets `o` and the pixel count P.
 */
function passEngines(backend: BackendWasm, attrs: BnAttrs, d: Dims) {
  const nk = nativeKernels(backend);
  const P = d.N * d.H * d.W;
  const active = activeOnednn();
  return {
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
  const { o, nk, P, acc } = passEngines(backend, attrs, d);
  if (acc != null) {
    acc.bnPoolForward(heapView(backend), o(x), o(gamma), o(beta), o(p), o(mean), o(variance), [d.N, d.H, d.W, d.C, attrs.activation], attrs.varianceEpsilon);
    return [p, mean, variance];
  }
  if (nk == null || d.C % 4 !== 0 || P === 0) {
    forwardJs(heapArrays(backend, { x, gamma, beta, p, mean, variance }), d, attrs);
    return [p, mean, variance];
  }
  // Scratch: statisticsWasm's layout (batch_norm.ts); scale and shift at s + 16C, s + 20C.
  const s = statisticsWasm(backend, nk, { x, gamma, beta, mean, variance }, attrs.varianceEpsilon, coefficients);
  applyPool(backend, nk, x, p, d, s + 16 * d.C, attrs);
  return [p, mean, variance];
}

/** p = maxPool(act(x * scale + shift)) on the helper module, images split between the threads; scale at byte offset k, shift at k + 4C. */
function applyPool(backend: BackendWasm, nk: NativeKernels, x: tf.TensorInfo, p: tf.TensorInfo, d: Dims, k: number, attrs: BnAttrs): void {
  const { H, W, C } = d;
  const [xo, po] = [offsetOf(backend, x), offsetOf(backend, p)];
  runNativeSplit(
    backend,
    nk,
    splitCalls(d.N, (a, b) => [
      ['bn_act_pool_apply', xo + 4 * a * H * W * C, po + 4 * a * d.OH * d.OW * C, b - a, H, W, C, k, k + 4 * C, attrs.activation, attrs.alpha],
    ]),
  );
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
  const { o, nk, P, acc } = passEngines(backend, attrs, d);
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
    backwardJs(heapArrays(backend, { ...i, dx, dgamma, dbeta }), d, attrs);
    return [dx, dgamma, dbeta];
  }
  // Scratch: sdy, sdyx (float64 x C), scale, shift, k1, k2, k3 (float32 x C), block, then the helper's sdy, sdyx, block.
  const s = scratch(backend, 68 * C);
  const { f32 } = channelViews(backend, C);
  scaleShift(
    { ...heapArrays(backend, { gamma: i.gamma, beta: i.beta, mean: i.mean, variance: i.variance }), scale: f32(s + 16 * C), shift: f32(s + 20 * C) },
    attrs.varianceEpsilon,
  );
  const [dpo, xo, dxo, mo] = [i.dy, i.x, dx, i.mean].map((t) => offsetOf(backend, t));
  const img = d.H * d.W * C;
  const pooled = d.OH * d.OW * C;
  // What both passes take alike: the images' size, the forward's scale and shift, the activation.
  const dims = [d.H, d.W, C];
  const coefficients = [s + 16 * C, s + 20 * C];
  const act = [attrs.activation, attrs.alpha];
  const calls = splitCalls(d.N, (a, b) => {
    const [sdy, sdyx, blk] = a === 0 ? [s, s + 8 * C, s + 36 * C] : [s + 44 * C, s + 52 * C, s + 60 * C];
    return [['bn_act_pool_grad_sums', dpo + 4 * a * pooled, xo + 4 * a * img, b - a, ...dims, ...coefficients, mo, ...act, sdy, sdyx, blk]];
  });
  gradCoefficientsWasm(backend, nk, { calls, ours: s, theirs: s + 44 * C }, { ...i, dgamma, dbeta }, P, s + 24 * C, attrs.varianceEpsilon);
  const k = [s + 24 * C, s + 28 * C, s + 32 * C];
  runNativeSplit(
    backend,
    nk,
    splitCalls(d.N, (a, b) => [
      ['bn_act_pool_grad_apply', dpo + 4 * a * pooled, xo + 4 * a * img, dxo + 4 * a * img, b - a, ...dims, ...coefficients, ...k, ...act],
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
  const { f32 } = channelViews(backend, C);
  scaleShift(
    { ...heapArrays(backend, { gamma: i.gamma, beta: i.beta, mean: i.mean, variance: i.variance }), scale: f32(s), shift: f32(s + 4 * C) },
    attrs.varianceEpsilon,
  );
  applyPool(backend, nk, i.x, p, d, s, attrs);
  return p;
}

function forwardCpu(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as CpuBackend;
  const { x, gamma, beta } = args.inputs as unknown as Record<'x' | 'gamma' | 'beta', tf.TensorInfo>;
  const d = dimsOf(x, gamma);
  const p = new Float32Array(d.N * d.OH * d.OW * d.C);
  const mean = new Float32Array(d.C);
  const variance = new Float32Array(d.C);
  forwardJs({ ...cpuArrays(backend, { x, gamma, beta }), p, mean, variance }, d, args.attrs as unknown as BnAttrs);
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
  const dx = new Float32Array(tf.util.sizeFromShape(i.x.shape));
  const dgamma = new Float32Array(d.C);
  const dbeta = new Float32Array(d.C);
  backwardJs({ ...cpuArrays(backend, i), dx, dgamma, dbeta }, d, args.attrs as unknown as BnAttrs);
  return [backend.makeTensorInfo(i.x.shape, 'float32', dx), backend.makeTensorInfo([d.C], 'float32', dgamma), backend.makeTensorInfo([d.C], 'float32', dbeta)];
}

function register(): void {
  registerBatchNormTraining();
  registerFusedOp({
    name: BN_ACT_POOL,
    gradName: BN_ACT_POOL_GRAD,
    kernels: { wasm: [forwardWasm, backwardWasm], cpu: [forwardCpu, backwardCpu] },
    inputsToSave: ['x', 'gamma', 'beta'],
    outputsToSave: [false, true, true],
    saved: ['x', 'gamma', 'beta', 'mean', 'variance'],
  });
  if (tf.getKernel(BN_ACT_POOL_INFERENCE, 'wasm') == null)
    tf.registerKernel({ kernelName: BN_ACT_POOL_INFERENCE, backendName: 'wasm', kernelFunc: inferenceWasm as unknown as tf.KernelFunc });
}

/**
 * maxPool(act(batchNormTraining(x)), 2, 2, 'valid') for NHWC x, with batch mean and biased variance, as one
 * differentiable op where a kernel exists (wasm, cpu), else as that composition. Same values either way.
 */
export function batchNormActPool(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, opts: BatchNormOptions = {}): BatchNormTrainingResult<tf.Rank.R4> {
  const o = withDefaults(opts);
  register();
  if (tf.getKernel(BN_ACT_POOL, tf.getBackend()) == null) {
    return tf.tidy(() => {
      const { y, mean, variance } = batchNormTraining(x, gamma, beta, opts);
      return { y: tf.maxPool(y, 2, 2, 'valid'), mean, variance };
    });
  }
  return runFused(BN_ACT_POOL, x, gamma, beta, o);
}

/**
 * Inference-mode counterpart: maxPool(act(batchNorm(x, mean, variance, beta, gamma)), 2, 2, 'valid') in one
 * pass on wasm (no full-size intermediate; the SLA evaluation forward runs 4x the images), else composed.
 */
export function batchNormActPoolInference(
  x: tf.Tensor4D,
  stats: { mean: tf.Tensor1D; variance: tf.Tensor1D; gamma: tf.Tensor1D; beta: tf.Tensor1D },
  opts: Required<BatchNormOptions>,
): tf.Tensor4D {
  register();
  const C = x.shape[3];
  const fast = tf.getBackend() === 'wasm' && C % 4 === 0 && nativeKernels(tf.backend() as unknown as BackendWasm) != null && x.size > 0;
  if (!fast) {
    return tf.tidy(() => {
      const y = tf.batchNorm4d(x, stats.mean, stats.variance, stats.beta, stats.gamma, opts.varianceEpsilon);
      return tf.maxPool(activate(y, opts.activation, opts.alpha), 2, 2, 'valid');
    });
  }
  return tf.engine().runKernel(BN_ACT_POOL_INFERENCE, { x, ...stats } as unknown as tf.NamedTensorMap, kernelAttrs(opts)) as tf.Tensor4D;
}
