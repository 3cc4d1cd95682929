/**
 * Conv2DBackpropFilter for the wasm backend (the stock backend has none, so convnets cannot train).
 *
 * dW[kh,kw,ci,co] = sum over (n,oh,ow) of x[n, oh*s+kh-padTop, ow*s+kw-padLeft, ci] * dy[n,oh,ow,co].
 * As a matrix product: dW[K, CO] = colT[K, P] @ dy[P, CO] with K = KH*KW*CI and P = N*OH*OW, where colT is the
 * transposed im2col matrix. That product has exactly the shape the backend's XNNPACK fully-connected path
 * accepts (no transposes, batch 1), so the FLOPs run in XNNPACK; colT is built by the SIMD helpers
 * (native/kernels.c: channel-major transpose, then row copies), or by JS loops if those are unavailable. The
 * batch is processed in chunks (convChunking) so colT stays small (cache-friendly, bounded memory at 84 px)
 * and the per-chunk products are summed. Few taps (K < CO, the RGB layer) use the transposed product instead.
 */
import * as tf from '@tensorflow/tfjs-core';
import { convChunking, convGeometry, imagesPerChunk, type ConvGeometry } from './conv_geometry.ts';
import { allocF32, f32View, offsetOf, release, reshaped, runStock, stockKernel, type BackendWasm } from './heap.ts';
import { splitCalls } from './helper_thread.ts';
import { nativeKernels, runNativeSplit, scratch, type NativeKernels, type WindowArgs } from './native.ts';
import { winogradShapeOf } from './conv2d.ts';
import { winogradFilterGrad } from './winograd.ts';

/** g as the helper module's im2col and fill_col_t take it. */
function windowArgs(g: ConvGeometry): WindowArgs {
  return [g.inHeight, g.inWidth, g.inChannels, g.outHeight, g.outWidth, g.filterHeight, g.filterWidth, g.strideHeight, g.strideWidth, g.padTop, g.padLeft];
}

let channelMajorScratch = new Float32Array(0);

/** Copies images [n0, n0+count) of NHWC `x` into a [C][count][H][W] scratch so im2col rows are contiguous runs. */
function toChannelMajor(x: Float32Array, g: ConvGeometry, n0: number, count: number): Float32Array {
  const { inHeight: H, inWidth: W, inChannels: C } = g;
  const plane = count * H * W;
  const need = C * plane;
  if (channelMajorScratch.length < need) channelMajorScratch = new Float32Array(need);
  const out = channelMajorScratch;
  let src = n0 * H * W * C;
  for (let pix = 0; pix < plane; pix++) {
    let dst = pix;
    for (let c = 0; c < C; c++) {
      out[dst] = x[src + c];
      dst += plane;
    }
    src += C;
  }
  return out;
}

/** Fills colT[K, count*OH*OW] for images [n0, n0+count) from the channel-major copy. */
function fillColT(col: Float32Array, xT: Float32Array, g: ConvGeometry, count: number): void {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = g;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw, padTop, padLeft } = g;
  const cols = count * OH * OW;
  let row = 0;
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      // Output columns whose input column iw = ow*sw + kw - padLeft lies inside the image.
      const owLo = Math.max(0, Math.ceil((padLeft - kw) / sw));
      const owHi = Math.min(OW, Math.floor((W - 1 + padLeft - kw) / sw) + 1);
      for (let ci = 0; ci < C; ci++) {
        let dst = row * cols;
        for (let n = 0; n < count; n++) {
          const planeBase = (ci * count + n) * H * W;
          for (let oh = 0; oh < OH; oh++) {
            const ih = oh * sh + kh - padTop;
            if (ih < 0 || ih >= H || owHi <= owLo) {
              col.fill(0, dst, dst + OW);
            } else {
              const src = planeBase + ih * W + kw - padLeft;
              let ow = 0;
              for (; ow < owLo; ow++) col[dst + ow] = 0;
              if (sw === 1) {
                for (; ow < owHi; ow++) col[dst + ow] = xT[src + ow];
              } else {
                for (; ow < owHi; ow++) col[dst + ow] = xT[src + ow * sw];
              }
              for (; ow < OW; ow++) col[dst + ow] = 0;
            }
            dst += OW;
          }
        }
        row++;
      }
    }
  }
}

/**
 * For few filter taps (K = KH*KW*CI < CO, e.g. the RGB input layer: K = 27), colT @ dy has only K rows and
 * XNNPACK's row tiling runs mostly empty. The transposed product dW^T[CO, K] = dy^T[CO, P] @ col[P, K] has CO
 * rows instead; dy^T comes from the SIMD transpose, col from plain im2col, and the [CO, K] sum is transposed
 * back at the end.
 */
function viaTransposedProduct(backend: BackendWasm, nk: NativeKernels, x: tf.TensorInfo, dy: tf.TensorInfo, g: ConvGeometry, chunk: number): tf.TensorInfo {
  const batchMatMul = stockKernel('BatchMatMul');
  const K = g.filterHeight * g.filterWidth * g.inChannels;
  const CO = g.outChannels;
  const { inHeight: H, inWidth: W, inChannels: C } = g;
  const pixelsPerImage = g.outHeight * g.outWidth;
  let accT: tf.TensorInfo | null = null;
  for (let n0 = 0; n0 < g.batch; n0 += chunk) {
    const count = Math.min(chunk, g.batch - n0);
    const cols = count * pixelsPerImage;
    const dyT = allocF32(backend, [1, CO, cols]);
    const col = allocF32(backend, [1, cols, K]);
    nk.to_channel_major(offsetOf(backend, dy) + 4 * n0 * pixelsPerImage * CO, offsetOf(backend, dyT), cols, CO);
    nk.im2col(offsetOf(backend, x) + 4 * n0 * H * W * C, offsetOf(backend, col), count, ...windowArgs(g));
    const part = runStock(batchMatMul, backend, { a: dyT, b: col }, { transposeA: false, transposeB: false });
    release(backend, dyT, col);
    if (accT == null) {
      accT = part;
    } else {
      nk.add_into(offsetOf(backend, accT), offsetOf(backend, part), CO * K);
      release(backend, part);
    }
  }
  const out = allocF32(backend, [K, CO]);
  const t = f32View(backend, accT as tf.TensorInfo);
  const o = f32View(backend, out);
  for (let co = 0; co < CO; co++) for (let k = 0; k < K; k++) o[k * CO + co] = t[co * K + k];
  release(backend, accT as tf.TensorInfo);
  return out;
}

/**
 * Three input channels, stride 1 (the RGB input layer): a direct SIMD kernel over a zero-padded copy of x,
 * images split between the main and helper threads, each into its own accumulator (filter_grad_c3 in
 * native/kernels.c). im2col + GEMM spent most of its time transposing dy for this layer.
 */
function viaRgbKernel(backend: BackendWasm, nk: NativeKernels, x: tf.TensorInfo, dy: tf.TensorInfo, g: ConvGeometry): tf.TensorInfo {
  const { filterHeight: KH, filterWidth: KW, outHeight: OH, outWidth: OW, outChannels: CO, inHeight: H, inWidth: W } = g;
  const PH = OH + KH - 1;
  const PW = OW + KW - 1;
  const size = KH * KW * 3 * CO;
  const xp = allocF32(backend, [g.batch, PH, PW, 3]);
  const dW = allocF32(backend, [KH, KW, 3, CO]);
  const other = allocF32(backend, [size]);
  try {
    f32View(backend, dW).fill(0);
    f32View(backend, other).fill(0);
    const [xo, xpo, dyo] = [offsetOf(backend, x), offsetOf(backend, xp), offsetOf(backend, dy)];
    const parts = splitCalls(g.batch, (a, b) => [
      ['pad_images', xo + 4 * a * H * W * 3, xpo + 4 * a * PH * PW * 3, b - a, H, W, 3, PH, PW, g.padTop, g.padLeft],
      [
        'filter_grad_c3',
        xpo + 4 * a * PH * PW * 3,
        dyo + 4 * a * OH * OW * CO,
        a === 0 ? offsetOf(backend, dW) : offsetOf(backend, other),
        b - a,
        OH,
        OW,
        KH,
        KW,
        CO,
      ],
    ]);
    runNativeSplit(backend, nk, parts);
    if (parts[1].length > 0) nk.add_into(offsetOf(backend, dW), offsetOf(backend, other), size);
    return dW;
  } finally {
    release(backend, xp, other);
  }
}

export function conv2DBackpropFilter(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as unknown as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const g = convGeometry('Conv2DBackpropFilter', x.shape, filterShape, strides, pad, dimRoundingMode, dataFormat);
  const batchMatMul = stockKernel('BatchMatMul');
  const K = g.filterHeight * g.filterWidth * g.inChannels;
  const CO = g.outChannels;
  const pixelsPerImage = g.outHeight * g.outWidth;
  const chunk = Math.min(imagesPerChunk(g, convChunking.filterGradMaxFloats), Math.max(1, Math.floor(convChunking.filterGradColumns / pixelsPerImage)));

  const nk = nativeKernels(backend);
  const wino = nk != null ? winogradShapeOf(g) : null;
  if (nk != null && wino != null) return winogradFilterGrad(backend, nk, x, dy, wino);
  if (nk != null && g.inChannels === 3 && g.strideHeight === 1 && g.strideWidth === 1 && CO % 16 === 0 && g.batch > 0 && pixelsPerImage > 0) {
    return viaRgbKernel(backend, nk, x, dy, g);
  }
  if (nk != null && K < CO && pixelsPerImage > 0 && g.batch > 0) return reshaped(viaTransposedProduct(backend, nk, x, dy, g, chunk), [...filterShape]);
  const { inHeight: H, inWidth: W, inChannels: C } = g;
  let acc: tf.TensorInfo | null = null;
  for (let n0 = 0; n0 < g.batch && pixelsPerImage > 0; n0 += chunk) {
    const count = Math.min(chunk, g.batch - n0);
    const cols = count * pixelsPerImage;
    const colT = allocF32(backend, [1, K, cols]);
    const dySlice = allocF32(backend, [1, cols, CO]);
    if (nk != null) {
      const xT = scratch(backend, 4 * count * H * W * C);
      nk.to_channel_major(offsetOf(backend, x) + 4 * n0 * H * W * C, xT, count * H * W, C);
      nk.fill_col_t(xT, offsetOf(backend, colT), count, ...windowArgs(g));
    } else {
      // Views after the allocations (a malloc may have grown the heap).
      fillColT(f32View(backend, colT), toChannelMajor(f32View(backend, x), g, n0, count), g, count);
    }
    const dyAll = f32View(backend, dy);
    f32View(backend, dySlice).set(dyAll.subarray(n0 * pixelsPerImage * CO, (n0 + count) * pixelsPerImage * CO));
    const part = runStock(batchMatMul, backend, { a: colT, b: dySlice }, { transposeA: false, transposeB: false });
    release(backend, colT, dySlice);
    if (acc == null) {
      acc = part;
    } else {
      if (nk != null) {
        nk.add_into(offsetOf(backend, acc), offsetOf(backend, part), K * CO);
      } else {
        const accView = f32View(backend, acc);
        const partView = f32View(backend, part);
        for (let i = 0; i < accView.length; i++) accView[i] += partView[i];
      }
      release(backend, part);
    }
  }
  if (acc == null) {
    // Empty batch: the gradient is zero.
    acc = allocF32(backend, [1, K, CO]);
    f32View(backend, acc).fill(0);
  }
  return reshaped(acc, [...filterShape]);
}
