import * as tf from '@tensorflow/tfjs-core';

/** Number of counter-clockwise quarter turns. */
export type QuarterTurns = 0 | 1 | 2 | 3;

/**
 * Rotate NHWC images by k·90°, matching SLA's `torch.rot90(x, k, dims=(2, 3))` on NCHW tensors
 * (from the H axis toward the W axis, i.e. counter-clockwise when H points down). For side S:
 *   k=1: out[h][w] = in[w][S-1-h]   (transpose H↔W, then flip H)
 *   k=2: out[h][w] = in[S-1-h][S-1-w] (flip H and W)
 *   k=3: out[h][w] = in[S-1-w][h]   (transpose H↔W, then flip W)
 * Odd k swaps H and W, so callers check squareness first (see ImageTransform.needsSquare).
 * Built from transpose/reverse only: cheap, shape-agnostic and available on every backend.
 */
export function rotate90(images: tf.Tensor4D, k: QuarterTurns): tf.Tensor4D {
  switch (k) {
    case 0:
      return images;
    case 1:
      return tf.tidy(() => tf.reverse(tf.transpose(images, [0, 2, 1, 3]), 1));
    case 2:
      return tf.reverse(images, [1, 2]);
    case 3:
      return tf.tidy(() => tf.reverse(tf.transpose(images, [0, 2, 1, 3]), 2));
  }
}

/** A permutation of the three colour channels, written as source channels: [1, 2, 0] is GBR. */
export type ChannelOrder = readonly [number, number, number];

const CHANNEL_LETTERS = ['R', 'G', 'B'];

export function channelOrderName(order: ChannelOrder): string {
  return order.map((c) => CHANNEL_LETTERS[c]).join('');
}

export function isIdentityOrder(order: ChannelOrder): boolean {
  return order[0] === 0 && order[1] === 1 && order[2] === 2;
}

/** out[..., c] = in[..., order[c]] on NHWC images. */
export function permuteChannels(images: tf.Tensor4D, order: ChannelOrder): tf.Tensor4D {
  if (isIdentityOrder(order)) return images;
  return tf.tidy(() => tf.gather(images, tf.tensor1d([...order], 'int32'), 3));
}
