/**
 * SLA's transformed copies of a batch in one kernel: [B, H, W, C] → [B·M, H, W, C] with row b·M + j holding
 * copy j of image b, each copy a rotation by k·90° followed by a channel permutation. Built from stock ops
 * (transpose, reverse, gather, stack, then the caller's concat/split), an SLA step at 84 px spent about a fifth
 * of its time in tfjs-wasm's SplitV / Reverse / Transpose / Concat kernels moving 27 MB; here every copy is one
 * pass of pointer strides over the input (native/kernels.c `transform_copies`).
 *
 * Every copy is a permutation of the input's elements, so the values are bit-identical to the stock ops', and
 * the gradient is the sum over copies of each copy's inverse permutation (`transform_copies_grad`).
 *
 * Kernel for wasm only (SIMD helper module; JS loops on the heap if it cannot load). Other backends get null
 * from `transformCopies` and the caller keeps the stock-op composition (src/transforms/expand.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../util/errors.ts';
import { splitCalls } from './helper_thread.ts';
import { allocF32, f32View, heapF32, offsetOf, type BackendWasm, type KernelArgs } from './heap.ts';
import { nativeKernels, runNativeSplit, scratch } from './native.ts';

export const TRANSFORM_COPIES = 'FewshotTransformCopies';
export const TRANSFORM_COPIES_GRAD = 'FewshotTransformCopiesGrad';

/** One copy: k counter-clockwise quarter turns (as src/transforms/ops.ts rotate90), then out[..c] = in[..channels[c]]. */
export interface CopySpec {
  readonly quarterTurns: 0 | 1 | 2 | 3;
  readonly channels: readonly number[];
}

interface CopyAttrs {
  /** Quarter turns of each copy (length M). */
  turns: number[];
  /** Channel sources of each copy, M·C entries. */
  channels: number[];
}

/** Per copy: origin, row stride, column stride (in floats), whether rows copy as they are, the C channel sources. */
function specRecords(H: number, W: number, C: number, attrs: CopyAttrs): Int32Array {
  const M = attrs.turns.length;
  const spec = new Int32Array(M * (4 + C));
  const row = W * C;
  for (let j = 0; j < M; j++) {
    const k = attrs.turns[j];
    // out[h][w] = in[src(h, w)]: k=1 in[w][S-1-h], k=2 in[H-1-h][W-1-w], k=3 in[S-1-w][h] (ops.ts).
    const [origin, sh, sw] =
      k === 0 ? [0, row, C] : k === 1 ? [(W - 1) * C, -C, row] : k === 2 ? [(H - 1) * row + (W - 1) * C, -row, -C] : [(H - 1) * row, C, -row];
    const perm = attrs.channels.slice(j * C, (j + 1) * C);
    const r = j * (4 + C);
    spec.set([origin, sh, sw, k === 0 && perm.every((p, c) => p === c) ? 1 : 0, ...perm], r);
  }
  return spec;
}

// ---- JS loops (wasm without the helper module): the same index arithmetic as kernels.c.

/**
 * Both directions over one traversal (copy j of image b, row h, column w, channel c, in output order o):
 * forward y[o] = x[source]; gradient dx[source] = Σ_j dy[o], copy 0 writing and the others adding, as kernels.c.
 */
function copiesJs(grad: boolean, src: Float32Array, dst: Float32Array, N: number, H: number, W: number, C: number, spec: Int32Array, M: number): void {
  const img = H * W * C;
  let o = 0;
  for (let b = 0; b < N; b++) {
    for (let j = 0; j < M; j++) {
      const r = j * (4 + C);
      const [origin, sh, sw] = [spec[r], spec[r + 1], spec[r + 2]];
      for (let h = 0; h < H; h++)
        for (let w = 0, px = b * img + origin + h * sh; w < W; w++, px += sw)
          for (let c = 0; c < C; c++, o++) {
            const i = px + spec[r + 4 + c];
            if (!grad) dst[o] = src[i];
            else dst[i] = j === 0 ? src[o] : dst[i] + src[o];
          }
    }
  }
}

// ---- kernels.

function run(
  backend: BackendWasm,
  kernel: 'transform_copies' | 'transform_copies_grad',
  src: tf.TensorInfo,
  dst: tf.TensorInfo,
  N: number,
  H: number,
  W: number,
  C: number,
  attrs: CopyAttrs,
): void {
  const M = attrs.turns.length;
  const spec = specRecords(H, W, C, attrs);
  const nk = nativeKernels(backend);
  if (nk == null) {
    copiesJs(kernel === 'transform_copies_grad', f32View(backend, src), f32View(backend, dst), N, H, W, C, spec, M);
    return;
  }
  const s = scratch(backend, spec.byteLength);
  new Int32Array(heapF32(backend).buffer, s, spec.length).set(spec);
  const [so, dso] = [offsetOf(backend, src), offsetOf(backend, dst)];
  const img = 4 * H * W * C;
  // Per image b: the copies are at b·M, the single image at b.
  const [srcStep, dstStep] = kernel === 'transform_copies' ? [img, M * img] : [M * img, img];
  runNativeSplit(
    backend,
    nk,
    splitCalls(N, (a, b) => [[kernel, so + a * srcStep, dso + a * dstStep, b - a, H, W, C, M, s]]),
  );
}

function forwardWasm(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: tf.TensorInfo };
  const attrs = args.attrs as unknown as CopyAttrs;
  const [N, H, W, C] = x.shape;
  const y = allocF32(backend, [N * attrs.turns.length, H, W, C]);
  run(backend, 'transform_copies', x, y, N, H, W, C, attrs);
  return y;
}

function backwardWasm(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { dy } = args.inputs as { dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as CopyAttrs;
  const [NM, H, W, C] = dy.shape;
  const N = NM / attrs.turns.length;
  const dx = allocF32(backend, [N, H, W, C]);
  run(backend, 'transform_copies_grad', dy, dx, N, H, W, C, attrs);
  return dx;
}

const GRAD: tf.GradConfig = {
  kernelName: TRANSFORM_COPIES,
  inputsToSave: [],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], _saved: tf.Tensor[], attrs: tf.NamedAttrMap) => ({
    x: () => tf.engine().runKernel(TRANSFORM_COPIES_GRAD, { dy: dy as tf.Tensor }, attrs) as tf.Tensor,
  }),
};

function register(): void {
  if (tf.getKernel(TRANSFORM_COPIES, 'wasm') == null)
    tf.registerKernel({ kernelName: TRANSFORM_COPIES, backendName: 'wasm', kernelFunc: forwardWasm as unknown as tf.KernelFunc });
  if (tf.getKernel(TRANSFORM_COPIES_GRAD, 'wasm') == null)
    tf.registerKernel({ kernelName: TRANSFORM_COPIES_GRAD, backendName: 'wasm', kernelFunc: backwardWasm as unknown as tf.KernelFunc });
  if (tf.getGradient(TRANSFORM_COPIES) == null) tf.registerGradient(GRAD);
}

/** Whether `transformCopies` runs as one kernel on the active backend (else it returns null). */
export function transformCopiesKernelAvailable(): boolean {
  register();
  return tf.getKernel(TRANSFORM_COPIES, tf.getBackend()) != null;
}

/**
 * The M copies of every float32 NHWC image, image-major ([B·M, H, W, C], row b·M + j = copy j of image b), as one
 * differentiable kernel; null where the active backend has no such kernel (the caller composes stock ops).
 */
export function transformCopies(images: tf.Tensor4D, copies: readonly CopySpec[]): tf.Tensor4D | null {
  if (!transformCopiesKernelAvailable() || images.dtype !== 'float32' || copies.length === 0) return null;
  const [, H, W, C] = images.shape;
  for (const { quarterTurns, channels } of copies) {
    if (quarterTurns % 2 === 1 && H !== W) {
      throw new UserError(`a rotation by ${quarterTurns * 90}° needs square images, got ${H}×${W}`, 'resize or crop the images to a square size');
    }
    if (channels.length !== C || [...channels].sort((a, b) => a - b).some((c, i) => c !== i)) {
      throw new UserError(`channel order [${channels}] is not a permutation of the images' ${C} channels`, `give each of 0..${C - 1} exactly once`);
    }
  }
  const attrs: CopyAttrs = { turns: copies.map((c) => c.quarterTurns), channels: copies.flatMap((c) => [...c.channels]) };
  return tf.engine().runKernel(TRANSFORM_COPIES, { x: images }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}
