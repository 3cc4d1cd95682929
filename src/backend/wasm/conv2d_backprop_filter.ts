/**
 * Conv2DBackpropFilter for the wasm backend (the stock backend has none, so convnets cannot train).
 *
 * dW[kh,kw,ci,co] = sum over (n,oh,ow) of x[n, oh*s+kh-padTop, ow*s+kw-padLeft, ci] * dy[n,oh,ow,co].
 * As a matrix product: dW[K, CO] = colT[K, P] @ dy[P, CO] with K = KH*KW*CI and P = N*OH*OW, where colT is the
 * transposed im2col matrix. That product has exactly the shape the backend's XNNPACK fully-connected path
 * accepts (no transposes, batch 1), so the FLOPs run in XNNPACK; JS only builds colT. The batch is processed
 * in chunks so colT stays small (cache-friendly, bounded memory at 84 px) and the per-chunk products are summed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { convGeometry, imagesPerChunk, type ConvGeometry } from './conv_geometry.ts';
import { allocF32, f32View, offsetOf, release, reshaped, runStock, stockKernel, type BackendWasm } from './heap.ts';
import { nativeKernels, scratch } from './native.ts';

/**
 * Chunk size: ~4096 output pixels (columns of colT) per XNNPACK product, at most 4M floats of colT. Measured
 * on Conv-4 layers: 1k-4k columns are equally fast, 16k+ columns get slower (XNNPACK's GEMM has no K blocking,
 * so a long shared dimension falls out of cache).
 */
const CHUNK_COLUMNS = 4096;
const COL_CHUNK_FLOATS = 1 << 22;

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

export function conv2DBackpropFilter(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as unknown as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const g = convGeometry('Conv2DBackpropFilter', x.shape, filterShape, strides, pad, dimRoundingMode, dataFormat);
  const batchMatMul = stockKernel('BatchMatMul');
  const K = g.filterHeight * g.filterWidth * g.inChannels;
  const CO = g.outChannels;
  const pixelsPerImage = g.outHeight * g.outWidth;
  const chunk = Math.min(imagesPerChunk(g, COL_CHUNK_FLOATS), Math.max(1, Math.floor(CHUNK_COLUMNS / pixelsPerImage)));

  const nk = nativeKernels(backend);
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
      nk.fill_col_t(xT, offsetOf(backend, colT), count, H, W, C, g.outHeight, g.outWidth, g.filterHeight, g.filterWidth, g.strideHeight, g.strideWidth, g.padTop, g.padLeft);
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
