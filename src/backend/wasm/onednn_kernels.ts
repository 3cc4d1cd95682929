/**
 * The wasm kernels for Conv2D, its two gradients, BatchMatMul and LeakyRelu with the oneDNN accelerator in front: while it
 * is active (onednn.ts) and the call is one it implements, the addon computes the output in place on the heap;
 * otherwise the project's wasm kernel runs (conv2d*.ts, batch_mat_mul.ts; the stock one for LeakyRelu).
 */
import * as tf from '@tensorflow/tfjs-core';
import { batchMatMul } from './batch_mat_mul.ts';
import { conv2D } from './conv2d.ts';
import { conv2DBackpropFilter } from './conv2d_backprop_filter.ts';
import { conv2DBackpropInput } from './conv2d_backprop_input.ts';
import { convGeometry } from './conv_geometry.ts';
import { allocF32, runStock, type BackendWasm, type KernelArgs } from './heap.ts';
import { activeOnednn, convDims, floatOffset, heapView, type ConvAlgorithm, type OnednnAddon } from './onednn.ts';
import type { ConvGeometry } from './conv_geometry.ts';

type Kernel = (args: KernelArgs) => tf.TensorInfo;

/** NHWC float32 tensors, dilation 1, nothing empty: what the addon's convolutions take. */
function plainConv(attrs: tf.NamedAttrMap, ...tensors: tf.TensorInfo[]): boolean {
  const { dataFormat, dilations } = attrs as unknown as { dataFormat?: string; dilations?: number | [number, number] };
  const [dh, dw] = typeof dilations === 'number' ? [dilations, dilations] : (dilations ?? [1, 1]);
  return (
    dh === 1 &&
    dw === 1 &&
    (dataFormat === undefined || dataFormat === 'NHWC' || dataFormat === 'channelsLast') &&
    tensors.every((t) => t.dtype === 'float32' && tf.util.sizeFromShape(t.shape) > 0)
  );
}

/** FEWSHOT_ONEDNN_WINOGRAD=0 keeps every convolution direct (mutable for tests and benchmarks). */
export const onednnConvConfig = { winograd: process.env.FEWSHOT_ONEDNN_WINOGRAD !== '0' };

const winogradAvailable = new Map<string, boolean>();

/**
 * Direct or Winograd, per layer, from a measured table (bench/onednn-conv.ts, 1 thread, 80 images, AVX-512;
 * Winograd's time includes its reorders to and from NHWC): Winograd's forward / input / filter gradient took
 * 0.60 / 0.60 / 0.69 of direct's time at 42x42x64, 0.60-0.70 at 16x16 and 8x8, 0.51-0.77 at 4x4, 0.75-0.89 at
 * 21x21, but 0.96-1.0 at 10x10 (4x4 output tiles pad 10 to 12: 44 % more work) and 3.6 / 0.7 / 1.8 on the RGB
 * layer (3 input channels). So: 3x3, stride 1, at least 16 input channels, and tiles padding the output area by
 * at most 35 %; and only where oneDNN has a Winograd kernel for the CPU (AVX-512).
 */
export function convAlgorithm(addon: OnednnAddon, g: ConvGeometry): ConvAlgorithm {
  if (!onednnConvConfig.winograd || g.filterHeight !== 3 || g.filterWidth !== 3 || g.strideHeight !== 1 || g.strideWidth !== 1 || g.inChannels < 16)
    return 'direct';
  const padded = 16 * Math.ceil(g.outHeight / 4) * Math.ceil(g.outWidth / 4);
  if (padded > 1.35 * g.outHeight * g.outWidth) return 'direct';
  const dims = convDims(g, 'winograd');
  const key = dims.join(',');
  let ok = winogradAvailable.get(key);
  if (ok == null) winogradAvailable.set(key, (ok = addon.winogradAvailable(dims)));
  return ok ? 'winograd' : 'direct';
}

/**
 * One pass of a plain convolution as the addon numbers them (0 forward, 1 input gradient, 2 filter gradient):
 * its kernel name, its two inputs, the project's wasm kernel that runs when the addon cannot, and the shapes of
 * the convolution's input and filter, read from the pass's inputs or attributes.
 */
interface ConvPass {
  pass: 0 | 1 | 2;
  kernel: 'Conv2D' | 'Conv2DBackpropInput' | 'Conv2DBackpropFilter';
  inputs: [string, string];
  fallback: Kernel;
  shapes(attrs: tf.NamedAttrMap, a: tf.TensorInfo, b: tf.TensorInfo): { xShape: number[]; filterShape: number[] };
}

/** The pass's kernel: the addon computes its output (y, dx or dw) in place on the heap, or `fallback` runs. */
function onednnConvPass(p: ConvPass): Kernel {
  return (args) => {
    const addon = activeOnednn();
    const backend = args.backend as BackendWasm;
    const inputs = args.inputs as unknown as Record<string, tf.TensorInfo>;
    const [a, b] = [inputs[p.inputs[0]], inputs[p.inputs[1]]];
    if (addon == null || !plainConv(args.attrs, a, b)) return p.fallback(args);
    const { strides, pad, dataFormat, dimRoundingMode } = args.attrs as unknown as tf.Conv2DAttrs;
    const { xShape, filterShape } = p.shapes(args.attrs, a, b);
    const g = convGeometry(p.kernel, xShape, filterShape, strides, pad, dimRoundingMode, dataFormat);
    const outShape = p.pass === 0 ? [g.batch, g.outHeight, g.outWidth, g.outChannels] : p.pass === 1 ? xShape : filterShape;
    const out = allocF32(backend, [...outShape]);
    addon.conv(heapView(backend), p.pass, floatOffset(backend, a), floatOffset(backend, b), floatOffset(backend, out), convDims(g, convAlgorithm(addon, g)));
    return out;
  };
}

export const onednnConv2D: Kernel = onednnConvPass({
  pass: 0,
  kernel: 'Conv2D',
  inputs: ['x', 'filter'],
  fallback: conv2D,
  shapes: (_, x, filter) => ({ xShape: x.shape, filterShape: filter.shape }),
});

export const onednnConv2DBackpropInput: Kernel = onednnConvPass({
  pass: 1,
  kernel: 'Conv2DBackpropInput',
  inputs: ['dy', 'filter'],
  fallback: conv2DBackpropInput,
  shapes: (attrs, _, filter) => ({ xShape: [...(attrs as unknown as tf.Conv2DBackpropInputAttrs).inputShape], filterShape: filter.shape }),
});

export const onednnConv2DBackpropFilter: Kernel = onednnConvPass({
  pass: 2,
  kernel: 'Conv2DBackpropFilter',
  inputs: ['x', 'dy'],
  fallback: conv2DBackpropFilter,
  shapes: (attrs, x) => ({ xShape: x.shape, filterShape: [...(attrs as unknown as tf.Conv2DBackpropFilterAttrs).filterShape] }),
});

/**
 * BatchMatMul of float32 operands of rank >= 2 whose batch dimensions are equal, or one side's are all 1
 * (broadcast); other cases go to the wasm kernel.
 */
export const onednnBatchMatMul: Kernel = (args) => {
  const addon = activeOnednn();
  const backend = args.backend as BackendWasm;
  const { a, b } = args.inputs as unknown as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
  if (addon == null || a.shape.length < 2 || b.shape.length < 2 || a.dtype !== 'float32' || b.dtype !== 'float32') return batchMatMul(args);
  const [a1, a2] = a.shape.slice(-2);
  const [b1, b2] = b.shape.slice(-2);
  const [batchA, batchB] = [a.shape.slice(0, -2), b.shape.slice(0, -2)];
  const [Ba, Bb] = [tf.util.sizeFromShape(batchA), tf.util.sizeFromShape(batchB)];
  const [M, K] = transposeA ? [a2, a1] : [a1, a2];
  const [K2, N] = transposeB ? [b2, b1] : [b1, b2];
  const sameBatch = batchA.length === batchB.length && batchA.every((d, i) => d === batchB[i]);
  if (K !== K2 || !(sameBatch || Ba === 1 || Bb === 1) || M * N * Math.max(Ba, Bb) === 0 || K === 0) return batchMatMul(args);
  const c = allocF32(backend, [...tf.backend_util.assertAndGetBroadcastShape(batchA, batchB), M, N]);
  addon.matMul(heapView(backend), floatOffset(backend, a), floatOffset(backend, b), floatOffset(backend, c), [
    Ba,
    Bb,
    M,
    K,
    N,
    transposeA ? 1 : 0,
    transposeB ? 1 : 0,
  ]);
  return c;
};

/**
 * LeakyRelu of a float32 tensor: oneDNN's eltwise. The stock wasm kernel took 12 ms per 5M elements at one thread,
 * a quarter of a ResNet-12 evaluation forward (batch norm in inference mode is followed by tf.leakyRelu there).
 */
export const onednnLeakyRelu: Kernel = (args) => {
  const addon = activeOnednn();
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as unknown as { x: tf.TensorInfo };
  const { alpha } = args.attrs as unknown as tf.LeakyReluAttrs;
  const n = tf.util.sizeFromShape(x.shape);
  if (addon == null || x.dtype !== 'float32' || n === 0) return runStock(tf.LeakyRelu, backend, args.inputs, args.attrs);
  const y = allocF32(backend, [...x.shape]);
  addon.leakyRelu(heapView(backend), floatOffset(backend, x), floatOffset(backend, y), n, alpha);
  return y;
};
