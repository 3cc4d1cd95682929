/**
 * Conv2D for the wasm backend: stride-1 3x3 convolutions with enough channels run as Winograd F(4x4, 3x3)
 * (winograd.ts); everything else (the RGB input layer, strided or dilated convs) stays on the stock XNNPACK
 * convolution.
 */
import * as tf from '@tensorflow/tfjs-core';
import { convGeometry, type ConvGeometry } from './conv_geometry.ts';
import { release, runStock, stockKernel, type BackendWasm } from './heap.ts';
import { nativeKernels } from './native.ts';
import { winogradApplies, winogradConv2D, winogradFilter, type WinogradShape } from './winograd.ts';

/** The Winograd shape of a stride-1 convolution, or null when the geometry is not one. */
export function winogradShapeOf(g: ConvGeometry): WinogradShape | null {
  return g.strideHeight === 1 && g.strideWidth === 1 && winogradApplies(g, g.filterHeight, g.filterWidth) ? g : null;
}

/** conv(x, filter) by Winograd if it applies, else null. */
export function tryWinogradConv2D(backend: BackendWasm, x: tf.TensorInfo, filter: tf.TensorInfo, s: WinogradShape | null): tf.TensorInfo | null {
  const nk = nativeKernels(backend);
  if (s == null || nk == null) return null;
  const U = winogradFilter(backend, nk, filter);
  try {
    return winogradConv2D(backend, nk, x, U, s);
  } finally {
    release(backend, U);
  }
}

export function conv2D(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, filter } = args.inputs as unknown as { x: tf.TensorInfo; filter: tf.TensorInfo };
  const { strides, pad, dataFormat, dilations, dimRoundingMode } = args.attrs as unknown as tf.Conv2DAttrs;
  const [dh, dw] = typeof dilations === 'number' ? [dilations, dilations] : (dilations ?? [1, 1]);
  const plain = dh === 1 && dw === 1 && (dataFormat === undefined || dataFormat === 'NHWC') && x.dtype === 'float32';
  if (plain) {
    const y = tryWinogradConv2D(backend, x, filter, winogradShapeOf(convGeometry('Conv2D', x.shape, filter.shape, strides, pad, dimRoundingMode, dataFormat)));
    if (y != null) return y;
  }
  return runStock(stockKernel(tf.Conv2D), backend, args.inputs, args.attrs);
}
