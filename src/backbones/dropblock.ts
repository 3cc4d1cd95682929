import * as tf from '@tensorflow/tfjs-core';
import '../tf-gradients.ts';

/**
 * DropBlock (Ghiasi et al. 2018) as MetaOptNet's ResNet-12 uses it (docs/reference.md §4.5, models/dropblock.py):
 * Bernoulli(γ) seeds on a (H−bs+1)×(W−bs+1) grid per example and channel, each seed dropping the bs×bs block whose
 * top-left corner it marks (so blocks lie fully inside the map), output = x · mask · (#elements / #kept).
 * Masks come from a seeded generator, so a run is reproducible given the seed string.
 */

/** MetaOptNet's seed rate for a target keep rate: γ = (1 − keep)/bs² · W²/(W − bs + 1)². */
export function dropBlockGamma(keepRate: number, blockSize: number, featureSize: number): number {
  const valid = featureSize - blockSize + 1;
  return ((1 - keepRate) / (blockSize * blockSize)) * ((featureSize * featureSize) / (valid * valid));
}

/**
 * MetaOptNet's keep-rate schedule: linear from 1 to 1 − dropRate over `rampCalls` forward calls, then constant.
 * (Reference: keep_rate = max(1 − drop_rate/(20·2000) · t, 1 − drop_rate).)
 */
export function dropBlockKeepRate(calls: number, dropRate = 0.1, rampCalls = 20 * 2000): number {
  return Math.max(1 - (dropRate / rampCalls) * calls, 1 - dropRate);
}

/** Keep mask (1 = kept, 0 = dropped) of shape [B, H, W, C] for NHWC features. Requires blockSize ≤ min(H, W). */
export function dropBlockMask(shape: [number, number, number, number], blockSize: number, gamma: number, seed: string): tf.Tensor4D {
  const [b, h, w, c] = shape;
  if (blockSize > h || blockSize > w) throw new RangeError(`DropBlock block size ${blockSize} exceeds the ${h}×${w} feature map`);
  return tf.tidy(() => {
    const seeds = tf.cast(tf.less(tf.randomUniform([b, h - blockSize + 1, w - blockSize + 1, c], 0, 1, 'float32', seed), gamma), 'float32') as tf.Tensor4D;
    // A seed at (i, j) drops rows i..i+bs−1 and columns j..j+bs−1: pad by bs−1 on every side, then a bs×bs
    // max-pool with stride 1 marks every output cell whose window contains a seed.
    const p = blockSize - 1;
    const padded = tf.pad(seeds, [
      [0, 0],
      [p, p],
      [p, p],
      [0, 0],
    ]);
    const dropped = tf.maxPool(padded, blockSize, 1, 'valid');
    return tf.sub(1, dropped) as tf.Tensor4D;
  });
}

/** Applies DropBlock with the given seed rate; identity when gamma is 0. */
export function dropBlock(x: tf.Tensor4D, blockSize: number, gamma: number, seed: string): tf.Tensor4D {
  if (gamma <= 0) return x;
  return tf.tidy(() => {
    const mask = dropBlockMask(x.shape as [number, number, number, number], blockSize, gamma, seed);
    // Rescale by #elements / #kept (MetaOptNet's countM / count_ones); a fully dropped map stays zero.
    const kept = tf.maximum(tf.sum(mask), 1);
    return tf.mul(tf.mul(x, mask), tf.div(mask.size, kept)) as tf.Tensor4D;
  });
}
