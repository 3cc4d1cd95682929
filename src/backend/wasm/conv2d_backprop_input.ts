/**
 * Conv2DBackpropInput for the wasm backend, replacing the stock naive C++ loop.
 *
 * Stride 1 (every conv of Conv-4 / ResNet-12): the input gradient is itself a stride-1 convolution of dy with
 * the spatially flipped, in/out-transposed filter, padded by (KH-1-padTop, ...). That runs on the backend's
 * XNNPACK Conv2D. Other strides: cols[P, K] = dy[P, CO] @ W^T[CO, K] on XNNPACK's fully-connected path, then
 * col2im scatter-adds cols into dx in a JS heap loop (batch in chunks to bound memory).
 */
import * as tf from '@tensorflow/tfjs-core';
import { convChunking, convGeometry, imagesPerChunk, type ConvGeometry } from './conv_geometry.ts';
import { allocF32, f32View, offsetOf, release, reshaped, runStock, stockKernel, type BackendWasm } from './heap.ts';
import { nativeKernels } from './native.ts';
import { tryWinogradConv2D } from './conv2d.ts';
import { winogradApplies } from './winograd.ts';

/** Wf[kh,kw,co,ci] = W[KH-1-kh, KW-1-kw, ci, co]. */
function flipTransposeFilter(w: Float32Array, out: Float32Array, KH: number, KW: number, CI: number, CO: number): void {
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const srcTap = ((KH - 1 - kh) * KW + (KW - 1 - kw)) * CI * CO;
      const dstTap = (kh * KW + kw) * CO * CI;
      for (let ci = 0; ci < CI; ci++) {
        const src = srcTap + ci * CO;
        for (let co = 0; co < CO; co++) out[dstTap + co * CI + ci] = w[src + co];
      }
    }
  }
}

function viaConvolution(backend: BackendWasm, dy: tf.TensorInfo, filter: tf.TensorInfo, g: ConvGeometry, pads: number[][]): tf.TensorInfo {
  const { filterHeight: KH, filterWidth: KW, inChannels: CI, outChannels: CO } = g;
  const flipped = allocF32(backend, [KH, KW, CO, CI]);
  const nk = nativeKernels(backend);
  if (nk != null) {
    // Per tap, a [CI, CO] -> [CO, CI] SIMD transpose into the spatially mirrored tap (wide layers: 3.7M floats).
    for (let tap = 0; tap < KH * KW; tap++) {
      const mirrored = KH * KW - 1 - tap;
      nk.to_channel_major(offsetOf(backend, filter) + 4 * tap * CI * CO, offsetOf(backend, flipped) + 4 * mirrored * CO * CI, CI, CO);
    }
  } else {
    flipTransposeFilter(f32View(backend, filter), f32View(backend, flipped), KH, KW, CI, CO);
  }
  // dx is a stride-1 convolution of dy: Winograd when it applies, else XNNPACK's direct convolution.
  const s = {
    batch: g.batch,
    inHeight: g.outHeight,
    inWidth: g.outWidth,
    inChannels: CO,
    outHeight: g.inHeight,
    outWidth: g.inWidth,
    outChannels: CI,
    padTop: pads[1][0],
    padLeft: pads[2][0],
  };
  const viaWinograd = winogradApplies(s, KH, KW) ? tryWinogradConv2D(backend, dy, flipped, s) : null;
  if (viaWinograd != null) {
    release(backend, flipped);
    return viaWinograd;
  }
  const dx = runStock(
    stockKernel('Conv2D'),
    backend,
    { x: dy, filter: flipped },
    {
      strides: [1, 1],
      pad: pads as tf.backend_util.ExplicitPadding,
      dataFormat: 'NHWC',
      dilations: [1, 1],
      dimRoundingMode: undefined as unknown as string,
    },
  );
  // Disposing the filter also drops the XNNPACK operator the backend cached for it.
  release(backend, flipped);
  return dx;
}

/** dx[n, oh*s+kh-pt, ow*s+kw-pl, ci] += cols[(n,oh,ow), (kh,kw,ci)] for images [n0, n0+count). */
function col2im(cols: Float32Array, dx: Float32Array, g: ConvGeometry, n0: number, count: number): void {
  const { inHeight: H, inWidth: W, inChannels: CI, outHeight: OH, outWidth: OW } = g;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw, padTop, padLeft } = g;
  const K = KH * KW * CI;
  let src = 0;
  for (let n = n0; n < n0 + count; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh + kh - padTop;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw + kw - padLeft;
            if (iw < 0 || iw >= W) continue;
            const dst = ((n * H + ih) * W + iw) * CI;
            const s = src + (kh * KW + kw) * CI;
            for (let ci = 0; ci < CI; ci++) dx[dst + ci] += cols[s + ci];
          }
        }
        src += K;
      }
    }
  }
}

function viaMatMulCol2Im(backend: BackendWasm, dy: tf.TensorInfo, filter: tf.TensorInfo, g: ConvGeometry, inputShape: number[]): tf.TensorInfo {
  const { filterHeight: KH, filterWidth: KW, inChannels: CI, outChannels: CO } = g;
  const K = KH * KW * CI;
  const batchMatMul = stockKernel('BatchMatMul');
  // W^T[CO, K]: the fully-connected weights, packed once by XNNPACK for all chunks.
  const wT = allocF32(backend, [1, CO, K]);
  const dx = allocF32(backend, inputShape);
  const nk = nativeKernels(backend);
  if (nk != null) {
    nk.to_channel_major(offsetOf(backend, filter), offsetOf(backend, wT), K, CO);
  } else {
    const w = f32View(backend, filter);
    const t = f32View(backend, wT);
    for (let k = 0; k < K; k++) for (let co = 0; co < CO; co++) t[co * K + k] = w[k * CO + co];
  }
  f32View(backend, dx).fill(0);
  const pixelsPerImage = g.outHeight * g.outWidth;
  const chunk = imagesPerChunk(g, convChunking.inputGradMaxFloats);
  for (let n0 = 0; n0 < g.batch && pixelsPerImage > 0; n0 += chunk) {
    const count = Math.min(chunk, g.batch - n0);
    const rows = count * pixelsPerImage;
    const dySlice = allocF32(backend, [1, rows, CO]);
    f32View(backend, dySlice).set(f32View(backend, dy).subarray(n0 * pixelsPerImage * CO, (n0 + count) * pixelsPerImage * CO));
    const cols = runStock(batchMatMul, backend, { a: dySlice, b: wT }, { transposeA: false, transposeB: false });
    col2im(f32View(backend, cols), f32View(backend, dx), g, n0, count);
    release(backend, dySlice, cols);
  }
  release(backend, wT);
  return dx;
}

export function conv2DBackpropInput(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { dy, filter } = args.inputs as unknown as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const g = convGeometry('Conv2DBackpropInput', [...inputShape], filter.shape, strides, pad, dimRoundingMode, dataFormat);
  if (g.strideHeight === 1 && g.strideWidth === 1) {
    const top = g.filterHeight - 1 - g.padTop;
    const left = g.filterWidth - 1 - g.padLeft;
    const bottom = g.inHeight - 1 + g.filterHeight - g.outHeight - top;
    const right = g.inWidth - 1 + g.filterWidth - g.outWidth - left;
    if (top >= 0 && left >= 0 && bottom >= 0 && right >= 0 && g.batch > 0) {
      const dx = viaConvolution(backend, dy, filter, g, [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ]);
      return reshaped(dx, [...inputShape]);
    }
  }
  return viaMatMulCol2Im(backend, dy, filter, g, [...inputShape]);
}
