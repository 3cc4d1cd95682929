/**
 * A fused Adam update over all variables in one kernel call, `FewshotAdamUpdate` (wasm and cpu backends).
 *
 * Composed from tf ops, Adam is ~13 kernels per variable (Conv-4: 12 variables, ~160 kernel calls a step, each
 * with its own dispatch, allocation and tape bookkeeping) for only ~113k parameters: on the 32 px ProtoNet step
 * the update cost about a tenth of the step, nearly all of it dispatch. Here one call reads every (p, g, m, v) and
 * writes new p, m, v in a single loop per variable.
 *
 * Inputs: `p0..p{n-1}`, `g0..`, `m0..`, `v0..` (float32, same shape per index). Attrs: lr, beta1, beta2, eps,
 * weightDecay, step (1-based, for the bias corrections). Outputs: the n new p, then n new m, then n new v.
 * The arithmetic is that of src/train/optimizer.ts's composed Adam (PyTorch's torch.optim.Adam):
 *   g += wd·p;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p −= (lr/bc1) · m / (sqrt(v/bc2) + eps)
 * with every intermediate rounded to float32 as the composed tf ops round it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { allocF32, f32View, type BackendWasm } from './heap.ts';
import { activeOnednn, floatOffset, heapView } from './onednn.ts';

export const ADAM_UPDATE = 'FewshotAdamUpdate';

export interface AdamUpdateAttrs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
}

const f = Math.fround;

/** The loop's float32 constants: beta1, beta2, 1 - beta1, 1 - beta2, bias correction 2, step size, eps, weight decay. */
export function adamConstants(a: AdamUpdateAttrs): number[] {
  return [f(a.beta1), f(a.beta2), f(1 - a.beta1), f(1 - a.beta2), f(1 - a.beta2 ** a.step), f(a.lr / (1 - a.beta1 ** a.step)), f(a.eps), f(a.weightDecay)];
}

/** The update loop on float32 views (shared by both backends; the oneDNN addon's loop is the same arithmetic). */
export function adamLoop(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  po: Float32Array,
  mo: Float32Array,
  vo: Float32Array,
  a: AdamUpdateAttrs,
): void {
  const [b1, b2, c1, c2, bc2, stepSize, eps, wd] = adamConstants(a);
  for (let i = 0; i < p.length; i++) {
    const gi = wd !== 0 ? f(g[i] + f(p[i] * wd)) : g[i];
    const mi = f(f(m[i] * b1) + f(gi * c1));
    const vi = f(f(v[i] * b2) + f(f(gi * gi) * c2));
    mo[i] = mi;
    vo[i] = vi;
    const denom = f(f(Math.sqrt(f(vi / bc2))) + eps);
    po[i] = f(p[i] - f(f(mi / denom) * stepSize));
  }
}

/** The kernel's inputs by name (checked by countOf). */
type Inputs = Record<string, tf.TensorInfo>;

function countOf(inputs: Inputs): number {
  let n = 0;
  while (inputs[`p${n}`] != null) n++;
  for (let i = 0; i < n; i++) {
    for (const k of ['g', 'm', 'v']) {
      const t = inputs[`${k}${i}`];
      if (t == null || t.dtype !== 'float32' || tf.util.sizeFromShape(t.shape) !== tf.util.sizeFromShape(inputs[`p${i}`].shape)) {
        throw new Error(`${ADAM_UPDATE}: ${k}${i} missing or not a float32 of p${i}'s size`);
      }
    }
  }
  return n;
}

function adamWasm(args: { inputs: Inputs; backend: unknown; attrs: tf.NamedAttrMap }): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const a = args.attrs as unknown as AdamUpdateAttrs;
  const n = countOf(args.inputs);
  const outs: tf.TensorInfo[] = [];
  for (let i = 0; i < 3 * n; i++) outs.push(allocF32(backend, [...args.inputs[`p${i % n}`].shape]));
  const addon = activeOnednn();
  if (addon != null) {
    // Native loop (ResNet-12: 12M parameters, about 6x faster than this JS loop), bit-identical to adamLoop.
    const heap = heapView(backend);
    const o = (t: tf.TensorInfo) => floatOffset(backend, t);
    const k = adamConstants(a);
    for (let i = 0; i < n; i++) {
      const inp = (name: string) => o(args.inputs[`${name}${i}`]);
      addon.adam(heap, inp('p'), inp('g'), inp('m'), inp('v'), o(outs[i]), o(outs[n + i]), o(outs[2 * n + i]), tf.util.sizeFromShape(outs[i].shape), k);
    }
    return outs;
  }
  // Views after every allocation (an allocation may grow the heap and replace its buffer).
  for (let i = 0; i < n; i++) {
    const view = (t: tf.TensorInfo) => f32View(backend, t);
    adamLoop(
      view(args.inputs[`p${i}`]),
      view(args.inputs[`g${i}`]),
      view(args.inputs[`m${i}`]),
      view(args.inputs[`v${i}`]),
      view(outs[i]),
      view(outs[n + i]),
      view(outs[2 * n + i]),
      a,
    );
  }
  return outs;
}

interface CpuBackendLike {
  readSync(dataId: object): Float32Array;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}

function adamCpu(args: { inputs: Inputs; backend: unknown; attrs: tf.NamedAttrMap }): tf.TensorInfo[] {
  const backend = args.backend as CpuBackendLike;
  const a = args.attrs as unknown as AdamUpdateAttrs;
  const n = countOf(args.inputs);
  const read = (k: string) => backend.readSync(args.inputs[k].dataId);
  const ps: tf.TensorInfo[] = [];
  const ms: tf.TensorInfo[] = [];
  const vs: tf.TensorInfo[] = [];
  for (let i = 0; i < n; i++) {
    const shape = [...args.inputs[`p${i}`].shape];
    const p = read(`p${i}`);
    const [po, mo, vo] = [new Float32Array(p.length), new Float32Array(p.length), new Float32Array(p.length)];
    adamLoop(p, read(`g${i}`), read(`m${i}`), read(`v${i}`), po, mo, vo, a);
    ps.push(backend.makeTensorInfo(shape, 'float32', po));
    ms.push(backend.makeTensorInfo(shape, 'float32', mo));
    vs.push(backend.makeTensorInfo(shape, 'float32', vo));
  }
  return [...ps, ...ms, ...vs];
}

export const ADAM_KERNELS: ReadonlyArray<tf.KernelConfig> = [
  { kernelName: ADAM_UPDATE, backendName: 'wasm', kernelFunc: adamWasm as unknown as tf.KernelFunc },
  { kernelName: ADAM_UPDATE, backendName: 'cpu', kernelFunc: adamCpu as unknown as tf.KernelFunc },
];

/** Registers the fused Adam kernel for wasm and cpu. Idempotent. */
export function registerAdamUpdate(): void {
  for (const config of ADAM_KERNELS) if (tf.getKernel(config.kernelName, config.backendName) == null) tf.registerKernel(config);
}

/**
 * New (p, m, v) for every variable, from one kernel call; undefined when the active backend has no such kernel
 * (the caller then composes the update from tf ops). Not differentiable (an optimizer update never is).
 */
export function adamUpdate(
  p: tf.Tensor[],
  g: tf.Tensor[],
  m: tf.Tensor[],
  v: tf.Tensor[],
  attrs: AdamUpdateAttrs,
): { p: tf.Tensor[]; m: tf.Tensor[]; v: tf.Tensor[] } | undefined {
  if (tf.getKernel(ADAM_UPDATE, tf.getBackend()) == null) return undefined;
  const inputs: Record<string, tf.Tensor> = {};
  p.forEach((t, i) => {
    inputs[`p${i}`] = t;
    inputs[`g${i}`] = g[i];
    inputs[`m${i}`] = m[i];
    inputs[`v${i}`] = v[i];
  });
  const out = tf.engine().runKernel(ADAM_UPDATE, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  const n = p.length;
  return { p: out.slice(0, n), m: out.slice(n, 2 * n), v: out.slice(2 * n) };
}
