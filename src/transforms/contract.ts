import type * as tf from '@tensorflow/tfjs-core';
import type { ChannelOrder, QuarterTurns } from './ops.ts';

/** A transform that only moves pixels and channels: rotate90 by `quarterTurns`, then permuteChannels by `channels`. */
export interface PixelPermutation {
  readonly quarterTurns: QuarterTurns;
  readonly channels: ChannelOrder;
}

/** One input transformation t_j of SLA / DA / MT (docs/reference.md §1.2). */
export interface ImageTransform {
  /** e.g. `identity`, `rot90`, `GBR`, `rot180+BRG`. */
  readonly name: string;
  /** True only for t(x) = x. Every set must start with the identity: SLA+SI and SLA+SD read the j=0 copy. */
  readonly isIdentity: boolean;
  /** True when the transform changes the image shape unless H = W (90°/270° rotations). */
  readonly needsSquare: boolean;
  /** Normalised NHWC images [B, H, W, 3] → transformed images of the same shape. */
  apply(images: tf.Tensor4D): tf.Tensor4D;
  /**
   * Set when `apply` is exactly this rotation + channel permutation: a set made only of such transforms is
   * expanded by one kernel where the backend has it (expand.ts). Plugins' own transforms leave it unset.
   */
  readonly pixelPermutation?: PixelPermutation;
}

/** An ordered set t_0..t_{M-1}; the order defines the joint label y·M + j. */
export interface TransformSet {
  /** Registry name, e.g. `rotation`. */
  readonly name: string;
  readonly description: string;
  readonly transforms: readonly ImageTransform[];
}
