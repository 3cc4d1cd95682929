/**
 * Winograd F(4x4, 3x3) convolutions for the wasm backend: forward, input gradient and filter gradient of a
 * stride-1, dilation-1 3x3 convolution (every conv of Conv-4 and ResNet-12 after the RGB layer).
 *
 * Why: with 128-bit wasm SIMD, a GEMM peaks near 28 GFLOP/s per thread here, while PyTorch's oneDNN runs
 * AVX-512. Winograd F(4x4, 3x3) needs 36 multiplications per 4x4 output tile and channel pair instead of 144,
 * so the matrix products do a quarter of the work.
 *
 * Per chunk of images: the input transform (native/kernels.c) writes V[k][tile][ci] for the 36 points k of the
 * 6x6 transform domain, the filter transform U[k][ci][co]; the 36 products M_k = V_k @ U_k run in the helper
 * module's gemm_ab (U_k stays in L1; for these sizes it beat XNNPACK's fully-connected path, whose per-call
 * set-up and thread-pool wake-ups dominated the 8x8 and 4x4 layers), and the output transform folds M back to
 * 4x4 output tiles. The filter gradient is the same identity read backwards: dU_k = V_k^T @ (A dY A^T)_k
 * summed over tiles (gemm_atb_acc), dW = G^T dU G. The input gradient is a forward Winograd convolution of dy
 * with the flipped, transposed filter (conv2d_backprop_input.ts). Transforms split images, products split the
 * 36 points between the main and the helper thread (helper_thread.ts).
 *
 * Numerics: F(4x4, 3x3) rounds differently from a direct convolution (relative differences ~1e-6..1e-5 in
 * float32); the kernel tests compare against the cpu backend. FEWSHOT_WASM_WINOGRAD=0 turns it off.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ConvGeometry } from './conv_geometry.ts';
import { allocF32, f32View, offsetOf, release, type BackendWasm } from './heap.ts';
import { splitCalls, type NativeCall } from './helper_thread.ts';
import { runNativeSplit, type NativeKernels } from './native.ts';

/**
 * A stride-1 3x3 convolution: output (oh, ow) reads input rows oh - padTop .. oh - padTop + 2 (zero outside).
 * The fields of ConvGeometry the transforms use (the input gradient builds one for its transposed conv).
 */
export type WinogradShape = Pick<
  ConvGeometry,
  'batch' | 'inHeight' | 'inWidth' | 'inChannels' | 'outHeight' | 'outWidth' | 'outChannels' | 'padTop' | 'padLeft'
>;

/** Mutable so tests can exercise the path (and chunking) on small tensors and benchmarks can A/B it. */
export const winogradConfig = {
  enabled: process.env.FEWSHOT_WASM_WINOGRAD !== '0',
  /** Narrower layers (the RGB input layer) stay on XNNPACK's direct convolution. */
  minChannels: 16,
  /** Floats per transformed buffer per chunk of images (bounds memory at 84 px / large batches). */
  chunkFloats: 1 << 22,
  /** Pad the transformed planes to an odd number of tiles (see tileGrid); off only to measure the difference. */
  oddPlanes: true,
};

const TRANSFORM_POINTS = 36;

export function winogradApplies(s: WinogradShape, filterHeight: number, filterWidth: number): boolean {
  return (
    winogradConfig.enabled &&
    filterHeight === 3 &&
    filterWidth === 3 &&
    s.inChannels % 4 === 0 &&
    s.outChannels % 8 === 0 &&
    Math.min(s.inChannels, s.outChannels) >= winogradConfig.minChannels &&
    s.batch > 0 &&
    s.outHeight > 0 &&
    s.outWidth > 0
  );
}

/**
 * The tile grid and the layout of the transformed buffers V[k][tile][c] / M[k][tile][c]. A transform writes (or
 * reads) all 36 planes k for each tile, so the 36 plane starts must not alias in the caches: with a plane of
 * `tiles · C` floats, a tile count like 1280 makes the plane stride a multiple of 64 KiB (1280 · 64 floats =
 * 320 KiB), all 36 streams fall into one L1 and one L2 set, and every access misses. An odd number of tile rows
 * per plane (`planeTiles`, one padding row when needed) spreads the plane starts over the sets: the input
 * transform of an 80 × 16 × 16 × 64 batch went from 6.8 to 2.3 ms, the output-gradient transform from 7.1 to
 * 0.9 ms (one thread). The padding rows are never read.
 */
function tileGrid(s: WinogradShape) {
  const TH = Math.ceil(s.outHeight / 4);
  const TW = Math.ceil(s.outWidth / 4);
  const perImage = TH * TW;
  const widest = Math.max(s.inChannels, s.outChannels);
  const chunk = Math.max(1, Math.min(s.batch, Math.floor(winogradConfig.chunkFloats / (TRANSFORM_POINTS * perImage * widest))));
  const maxTiles = chunk * perImage;
  const planeTiles = winogradConfig.oddPlanes && maxTiles % 2 === 0 ? maxTiles + 1 : maxTiles;
  return { TH, TW, perImage, chunk, planeTiles };
}

/** One call per transform point k, the points split between the main and the helper thread. */
function perPoint(call: (k: number) => NativeCall): [NativeCall[], NativeCall[]] {
  return splitCalls(TRANSFORM_POINTS, (a, b) => Array.from({ length: b - a }, (_, i) => call(a + i)));
}

/** U[k][ci][co] for a filter [3, 3, Ci, Co] (a new [36, Ci, Co] tensor). */
export function winogradFilter(backend: BackendWasm, nk: NativeKernels, filter: tf.TensorInfo): tf.TensorInfo {
  const [, , ci, co] = filter.shape;
  const U = allocF32(backend, [TRANSFORM_POINTS, ci, co]);
  nk.wino_filter_transform(offsetOf(backend, filter), offsetOf(backend, U), ci, co);
  return U;
}

/**
 * The chunk loop both directions share: the transformed input V [36, planeTiles, Ci] and an output-side buffer
 * [36, planeTiles, Co] (M forward, Wd for the filter gradient) live for the loop; `step` runs once per chunk of
 * images n0 .. n0 + count - 1 with the first call writing V (the input transform, split between the threads).
 */
function overImageChunks(
  backend: BackendWasm,
  x: tf.TensorInfo,
  s: WinogradShape,
  step: (c: { n0: number; count: number; tiles: number; inputTransform: (a: number, b: number) => NativeCall; vBase: number; oBase: number }) => void,
): void {
  const grid = tileGrid(s);
  const V = allocF32(backend, [TRANSFORM_POINTS, grid.planeTiles, s.inChannels]);
  const O = allocF32(backend, [TRANSFORM_POINTS, grid.planeTiles, s.outChannels]);
  try {
    const [xBase, vBase, oBase] = [x, V, O].map((t) => offsetOf(backend, t));
    const { inHeight: H, inWidth: W, inChannels: Ci } = s;
    for (let n0 = 0; n0 < s.batch; n0 += grid.chunk) {
      const count = Math.min(grid.chunk, s.batch - n0);
      // Both threads transform disjoint images: tile t of image n lands at row n * perImage (+ th * TW + tw).
      const inputTransform = (a: number, b: number): NativeCall => [
        'wino_input_transform',
        xBase + 4 * (n0 + a) * H * W * Ci,
        vBase + 4 * a * grid.perImage * Ci,
        b - a,
        H,
        W,
        Ci,
        grid.TH,
        grid.TW,
        s.padTop,
        s.padLeft,
        grid.planeTiles,
      ];
      step({ n0, count, tiles: count * grid.perImage, inputTransform, vBase, oBase });
    }
  } finally {
    release(backend, V, O);
  }
}

/** y [N, OH, OW, Co] = conv(x [N, H, W, Ci], g) with the filter already transformed (`winogradFilter`). */
export function winogradConv2D(backend: BackendWasm, nk: NativeKernels, x: tf.TensorInfo, U: tf.TensorInfo, s: WinogradShape): tf.TensorInfo {
  const { inChannels: Ci, outHeight: OH, outWidth: OW, outChannels: Co } = s;
  const { TH, TW, perImage, planeTiles } = tileGrid(s);
  const y = allocF32(backend, [s.batch, OH, OW, Co]);
  const [yBase, uBase] = [y, U].map((t) => offsetOf(backend, t));
  overImageChunks(backend, x, s, ({ n0, count, tiles, inputTransform, vBase, oBase: mBase }) => {
    runNativeSplit(
      backend,
      nk,
      splitCalls(count, (a, b) => [inputTransform(a, b)]),
    );
    runNativeSplit(
      backend,
      nk,
      perPoint((k) => ['gemm_ab', vBase + 4 * k * planeTiles * Ci, uBase + 4 * k * Ci * Co, mBase + 4 * k * planeTiles * Co, tiles, Ci, Co, Ci]),
    );
    runNativeSplit(
      backend,
      nk,
      splitCalls(count, (a, b) => [
        ['wino_output_transform', mBase + 4 * a * perImage * Co, yBase + 4 * (n0 + a) * OH * OW * Co, b - a, OH, OW, Co, TH, TW, planeTiles],
      ]),
    );
  });
  return y;
}

/**
 * dW [3, 3, Ci, Co] of y = conv(x, W) given dy [N, OH, OW, Co]. The 36 reductions
 * dU_k = V_k^T Wd_k over tiles run in the helper module's A^T B kernel, the points k split between threads.
 */
export function winogradFilterGrad(backend: BackendWasm, nk: NativeKernels, x: tf.TensorInfo, dy: tf.TensorInfo, s: WinogradShape): tf.TensorInfo {
  const { inChannels: Ci, outHeight: OH, outWidth: OW, outChannels: Co } = s;
  const { TH, TW, perImage, planeTiles } = tileGrid(s);
  const dU = allocF32(backend, [TRANSFORM_POINTS, Ci, Co]);
  try {
    f32View(backend, dU).fill(0);
    const [dyBase, uBase] = [dy, dU].map((t) => offsetOf(backend, t));
    overImageChunks(backend, x, s, ({ n0, tiles, count, inputTransform, vBase, oBase: wBase }) => {
      runNativeSplit(
        backend,
        nk,
        splitCalls(count, (a, b) => [
          inputTransform(a, b),
          ['wino_output_grad_transform', dyBase + 4 * (n0 + a) * OH * OW * Co, wBase + 4 * a * perImage * Co, b - a, OH, OW, Co, TH, TW, planeTiles],
        ]),
      );
      runNativeSplit(
        backend,
        nk,
        perPoint((k) => ['gemm_atb_acc', vBase + 4 * k * planeTiles * Ci, wBase + 4 * k * planeTiles * Co, uBase + 4 * k * Ci * Co, tiles, Ci, Co, Ci, Co]),
      );
    });
    const dW = allocF32(backend, [3, 3, Ci, Co]);
    nk.wino_filter_grad_transform(uBase, offsetOf(backend, dW), Ci, Co);
    return dW;
  } finally {
    release(backend, dU);
  }
}
