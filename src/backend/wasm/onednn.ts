/**
 * The optional native accelerator under the wasm backend: `fewshot-onednn` (native/onednn, an N-API addon over
 * the system's oneDNN) computes the hot ops of a training step in place on the wasm heap. tfjs, its tape, its
 * memory and every other kernel stay the wasm backend's; only the kernels below call out, with a Float32Array
 * view of the heap and the tensors' offsets (no copies). 128-bit wasm SIMD tops out near 53 GFLOP/s per core
 * here; oneDNN uses the CPU's AVX2 / AVX-512 (docs/native.md).
 *
 * Native kernels: Conv2D and both gradients (direct on NHWC or Winograd, per layer: onednn_kernels.ts), the
 * fused batch norm + ReLU + 2x2 max pool op and its gradient (batch_norm_pool.ts; linear and ReLU, not leaky
 * ReLU), BatchMatMul, ResNet-12's residual add + leaky ReLU + max pool and its gradient (add_act_pool.ts), the
 * Adam update (adam.ts), LeakyRelu (onednn_kernels.ts). Everything they do not take (dilations, int tensors, leaky ReLU, batch shapes that neither
 * match nor broadcast from 1) falls through to the wasm kernels.
 *
 * Loading never throws: `loadOnednn` returns why it could not (FEWSHOT_ONEDNN=0, addon not built, libdnnl.so.2
 * missing), and the backend selection falls back to plain wasm with that reason. The kernels call out only
 * while the accelerator is active (`setOnednnActive`, set by selectBackend), so `--backend wasm` in the same
 * process runs the wasm kernels.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../util/errors.ts';
import { heapF32, offsetOf, type BackendWasm } from './heap.ts';
import { imageDims, type ConvGeometry } from './conv_geometry.ts';

/** The addon's exports (native/onednn/src/addon.cc). Offsets are in floats from the start of `heap`. */
export interface OnednnAddon {
  info(): OnednnInfo;
  setThreads(threads: number): number;
  conv(heap: Float32Array, kind: 0 | 1 | 2, a: number, b: number, c: number, geometry: number[]): void;
  /** Whether oneDNN has a Winograd kernel for this geometry (its last entry ignored) on this CPU. */
  winogradAvailable(geometry: number[]): boolean;
  bnPoolForward(heap: Float32Array, x: number, gamma: number, beta: number, p: number, mean: number, variance: number, dims: number[], eps: number): void;
  bnPoolBackward(
    heap: Float32Array,
    dp: number,
    x: number,
    gamma: number,
    beta: number,
    mean: number,
    variance: number,
    dmean: number,
    dvar: number,
    dx: number,
    dgamma: number,
    dbeta: number,
    dims: number[],
    eps: number,
  ): void;
  matMul(heap: Float32Array, a: number, b: number, c: number, dims: number[]): void;
  /** p = maxpool2x2(act(a + b)), act ReLU (alpha 0) or leaky ReLU; dims N, H, W, C (add_act_pool.ts). */
  addActPoolForward(heap: Float32Array, a: number, b: number, p: number, dims: number[], alpha: number): void;
  /** d = the gradient of a (and b) from dp, recomputing act(a + b). */
  addActPoolBackward(heap: Float32Array, dp: number, a: number, b: number, d: number, dims: number[], alpha: number): void;
  /** y = x > 0 ? x : alpha * x over n floats (y may be x). */
  leakyRelu(heap: Float32Array, x: number, y: number, n: number, alpha: number): void;
  /** One variable's Adam update (adam.ts), n floats; k: beta1, beta2, 1-beta1, 1-beta2, bias correction 2, step size, eps, weight decay. */
  adam(heap: Float32Array, p: number, g: number, m: number, v: number, pOut: number, mOut: number, vOut: number, n: number, k: number[]): void;
}

/** What results record about the accelerator. */
export interface OnednnInfo {
  /** oneDNN's version, from dnnl_version(). */
  version: string;
  hash: string;
  /** dnnl_get_effective_cpu_isa(): the instruction set its kernels use on this CPU. */
  isa: string;
  /** oneDNN's threading runtime (Debian's build: OpenMP). */
  runtime: string;
  threads: number;
}

export const ONEDNN_PACKAGE = 'fewshot-onednn';

let loaded: Promise<{ addon: OnednnAddon; info: OnednnInfo } | { reason: string }> | undefined;
let active: OnednnAddon | null = null;

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}

/**
 * Loads the addon once. Resolves to the addon and its info, or to the reason it is unavailable (one line).
 * A dynamic import, not require: ESM loader hooks see it, which is how the tests hide the addon.
 */
export function loadOnednn(): Promise<{ addon: OnednnAddon; info: OnednnInfo } | { reason: string }> {
  loaded ??= (async () => {
    if (process.env.FEWSHOT_ONEDNN === '0') return { reason: 'turned off by FEWSHOT_ONEDNN=0' };
    try {
      // libgomp reads this when the addon loads it: idle OpenMP workers sleep instead of spinning on the cores
      // the wasm backend's threads need (measured: spinning cost 2-thread oneDNN ~45% more CPU per step).
      process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
      const mod = (await import(ONEDNN_PACKAGE)) as { default?: OnednnAddon } & OnednnAddon;
      const addon = mod.default ?? mod;
      // One thread until the backend selection applies the thread policy (select.ts); direct users (tests, benches)
      // keep one unless FEWSHOT_ONEDNN_THREADS says otherwise. (No import of threads.ts here: this module is in the
      // browser bundle, threads.ts is Node-only.)
      addon.setThreads(onednnThreadsFromEnv() ?? 1);
      return { addon, info: addon.info() };
    } catch (err) {
      const code = (err as { code?: string }).code;
      const why = code === 'ERR_MODULE_NOT_FOUND' ? `${ONEDNN_PACKAGE} is not installed or was not built` : firstLine(err);
      return { reason: why };
    }
  })();
  return loaded;
}

/** FEWSHOT_ONEDNN_THREADS=N: oneDNN's OpenMP thread count (default: see the thread policy in select.ts). */
export function onednnThreadsFromEnv(): number | null {
  const raw = process.env.FEWSHOT_ONEDNN_THREADS;
  if (raw == null || raw === '') return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new UserError(`FEWSHOT_ONEDNN_THREADS must be a positive integer, got "${raw}"`, 'set it to a thread count such as 1 or 2, or unset it');
  return n;
}

/** Routes the wasm kernels below to oneDNN (addon) or not (null). */
export function setOnednnActive(addon: OnednnAddon | null): void {
  active = addon;
}

/** The addon while the accelerator is active, else null. */
export function activeOnednn(): OnednnAddon | null {
  return active;
}

/** A tensor's offset on the heap, in floats. */
export function floatOffset(backend: BackendWasm, info: tf.TensorInfo): number {
  return offsetOf(backend, info) / 4;
}

/** The heap view to pass (take it after the call's allocations: growing the heap replaces the buffer). */
export function heapView(backend: BackendWasm): Float32Array {
  return heapF32(backend);
}

/** Convolution algorithms of the addon: direct on NHWC, or Winograd F(4x4, 3x3) in oneDNN's blocked layout. */
export type ConvAlgorithm = 'direct' | 'winograd';

/** The addon's convolution geometry: N, H, W, CI, OH, OW, CO, KH, KW, sh, sw, pt, pl, pb, pr, algorithm. */
export function convDims(g: ConvGeometry, algorithm: ConvAlgorithm = 'direct'): number[] {
  const pads = [g.padTop, g.padLeft, g.padBottom, g.padRight];
  return [...imageDims(g), g.outChannels, g.filterHeight, g.filterWidth, g.strideHeight, g.strideWidth, ...pads, algorithm === 'winograd' ? 1 : 0];
}
