/**
 * Shape bookkeeping shared by the convolution gradient kernels (and MaxPoolGrad's windows): resolves tfjs' conv attributes into the
 * handful of integers the heap loops need, and rejects what the kernels do not implement.
 */
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../../util/errors.ts';

export interface ConvGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
}

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

/**
 * Geometry of a stride-s, dilation-1, NHWC convolution with input `xShape` and filter `filterShape`
 * (HWIO). `kernel` names the caller for error messages.
 */
export function convGeometry(
  kernel: string,
  xShape: number[],
  filterShape: number[],
  strides: number | [number, number],
  pad: Pad,
  dimRoundingMode: 'floor' | 'round' | 'ceil' | undefined,
  dataFormat: string | undefined,
  dilations: number | [number, number] = 1,
): ConvGeometry {
  if (dataFormat !== undefined && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new UserError(`${kernel} on wasm got dataFormat ${dataFormat}`, 'use NHWC (channels-last) tensors');
  }
  const [dh, dw] = typeof dilations === 'number' ? [dilations, dilations] : dilations;
  if (dh !== 1 || dw !== 1) {
    throw new UserError(`${kernel} on wasm got dilations ${dh}x${dw}`, 'use dilation 1 (dilated convolution gradients are not implemented)');
  }
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  return windowGeometry(info);
}

/** The integers of tfjs' Conv2DInfo the heap loops use: of a convolution, or of a pooling (its window as the filter). */
export function windowGeometry(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  return {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
    padBottom: info.padInfo.bottom,
    padRight: info.padInfo.right,
  };
}

/** The integers a geometry's native kernels take first: input batch N, height H, width W, channels C, output OH, OW. */
export function imageDims(g: ConvGeometry): [N: number, H: number, W: number, C: number, OH: number, OW: number] {
  return [g.batch, g.inHeight, g.inWidth, g.inChannels, g.outHeight, g.outWidth];
}

/**
 * How the convolution gradients split the batch into chunks (images per XNNPACK product). Filter gradient:
 * ~4096 output pixels per product, at most 4M floats of im2col; measured on Conv-4 layers, 1k-4k columns are
 * equally fast and 16k+ get slower (XNNPACK's GEMM has no K blocking, so a long shared dimension falls out of
 * cache). Strided input gradient: at most 1M floats of columns per product. Mutable so tests can force several
 * chunks on small inputs.
 */
export const convChunking = {
  filterGradColumns: 4096,
  filterGradMaxFloats: 1 << 22,
  inputGradMaxFloats: 1 << 20,
};

/** How many images to process per chunk so that a chunk's im2col matrix stays near `targetFloats`. */
export function imagesPerChunk(g: ConvGeometry, targetFloats: number): number {
  const perImage = g.outHeight * g.outWidth * g.filterHeight * g.filterWidth * g.inChannels;
  return Math.max(1, Math.min(g.batch, Math.floor(targetFloats / perImage)));
}
