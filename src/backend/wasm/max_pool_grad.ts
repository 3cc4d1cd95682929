/**
 * MaxPoolGrad for the wasm backend as a JS loop over heap views, replacing the stock per-element C++ loop.
 *
 * Each pooling window sends its dy to the first maximal input in row-major window order, exactly as the cpu
 * backend does (ties matter after ReLU, where windows of zeros are common). Work is vectorised over the
 * contiguous channel axis; the non-overlapping 2x2 stride-2 window (every pool of Conv-4 / ResNet-12) has a
 * dedicated unrolled path.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../util/errors.ts';
import { imageDims, windowGeometry, type ConvGeometry } from './conv_geometry.ts';
import { allocF32, f32View, offsetOf, type BackendWasm } from './heap.ts';
import { nativeKernels } from './native.ts';

let bestValue = new Float32Array(0);
let bestIndex = new Int32Array(0);

/** A pooling's geometry: its window as the filter, its channels as inChannels (= outChannels). */
type PoolGeometry = ConvGeometry;

function pool2x2Stride2(x: Float32Array, dy: Float32Array, dx: Float32Array, g: PoolGeometry, ohFull: number, owFull: number): void {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = g;
  const rowStride = W * C;
  for (let n = 0; n < g.batch; n++) {
    for (let oh = 0; oh < ohFull; oh++) {
      const rowBase = (n * H + 2 * oh) * rowStride;
      let dyBase = (n * OH + oh) * OW * C;
      for (let ow = 0; ow < owFull; ow++) {
        const b0 = rowBase + 2 * ow * C;
        const b1 = b0 + C;
        const b2 = b0 + rowStride;
        const b3 = b2 + C;
        for (let c = 0; c < C; c++) {
          let m = -Infinity;
          let at = -1;
          let v = x[b0 + c];
          if (v > m) {
            m = v;
            at = b0 + c;
          }
          v = x[b1 + c];
          if (v > m) {
            m = v;
            at = b1 + c;
          }
          v = x[b2 + c];
          if (v > m) {
            m = v;
            at = b2 + c;
          }
          v = x[b3 + c];
          if (v > m) {
            at = b3 + c;
          }
          if (at >= 0) dx[at] = dy[dyBase + c];
        }
        dyBase += C;
      }
    }
  }
}

/** Any window geometry; handles the windows the fast path skipped when `skipFull*` are given. */
function poolGeneral(x: Float32Array, dy: Float32Array, dx: Float32Array, g: PoolGeometry, skipRows: number, skipCols: number): void {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = g;
  if (bestValue.length < C) {
    bestValue = new Float32Array(C);
    bestIndex = new Int32Array(C);
  }
  const best = bestValue;
  const at = bestIndex;
  for (let n = 0; n < g.batch; n++) {
    for (let oh = 0; oh < OH; oh++) {
      const rowCorner = oh * g.strideHeight - g.padTop;
      const ihLo = Math.max(0, rowCorner);
      const ihHi = Math.min(H, rowCorner + g.filterHeight);
      for (let ow = 0; ow < OW; ow++) {
        if (oh < skipRows && ow < skipCols) continue;
        const colCorner = ow * g.strideWidth - g.padLeft;
        const iwLo = Math.max(0, colCorner);
        const iwHi = Math.min(W, colCorner + g.filterWidth);
        best.fill(-Infinity, 0, C);
        at.fill(-1, 0, C);
        for (let ih = ihLo; ih < ihHi; ih++) {
          for (let iw = iwLo; iw < iwHi; iw++) {
            const base = ((n * H + ih) * W + iw) * C;
            for (let c = 0; c < C; c++) {
              const v = x[base + c];
              if (v > best[c]) {
                best[c] = v;
                at[c] = base + c;
              }
            }
          }
        }
        const dyBase = ((n * OH + oh) * OW + ow) * C;
        for (let c = 0; c < C; c++) {
          if (at[c] >= 0) dx[at[c]] += dy[dyBase + c];
        }
      }
    }
  }
}

export function maxPoolGrad(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { dy, input } = args.inputs as unknown as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as tf.MaxPoolGradAttrs;
  if (input.shape.length !== 4) {
    throw new UserError(`MaxPoolGrad on wasm got a rank-${input.shape.length} input`, 'pass NHWC rank-4 tensors');
  }
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const g: PoolGeometry = windowGeometry(info);
  const out = allocF32(backend, input.shape);
  const is2x2Stride2 = g.filterHeight === 2 && g.filterWidth === 2 && g.strideHeight === 2 && g.strideWidth === 2 && g.padTop === 0 && g.padLeft === 0;
  // Windows entirely inside the image take the unrolled path; a 'same'-padded odd edge row/column the general one.
  const ohFull = Math.min(g.outHeight, Math.floor(g.inHeight / 2));
  const owFull = Math.min(g.outWidth, Math.floor(g.inWidth / 2));
  const nk = is2x2Stride2 ? nativeKernels(backend) : null;
  const dx = f32View(backend, out);
  const xv = f32View(backend, input);
  const dyv = f32View(backend, dy);
  const fullyCovered = is2x2Stride2 && 2 * ohFull === g.inHeight && 2 * owFull === g.inWidth;
  // The native path writes every element of each full window (zeros included); other paths accumulate.
  if (!(nk != null && fullyCovered)) dx.fill(0);
  if (is2x2Stride2) {
    if (nk != null) {
      nk.max_pool_grad_2x2(offsetOf(backend, input), offsetOf(backend, dy), offsetOf(backend, out), ...imageDims(g), ohFull, owFull);
    } else {
      pool2x2Stride2(xv, dyv, dx, g, ohFull, owFull);
    }
    if (ohFull < g.outHeight || owFull < g.outWidth) poolGeneral(xv, dyv, dx, g, ohFull, owFull);
  } else {
    poolGeneral(xv, dyv, dx, g, 0, 0);
  }
  return out;
}
