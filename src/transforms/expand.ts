import * as tf from '@tensorflow/tfjs-core';
import { transformCopies } from '../backend/wasm/image_copies.ts';
import type { PixelPermutation, TransformSet } from './contract.ts';
import { UserError } from '../util/errors.ts';

/** UserError (before any compute) if a set cannot take images of this height × width. */
export function checkTransformInput(set: TransformSet, height: number, width: number): void {
  if (height === width) return;
  const offending = set.transforms.filter((t) => t.needsSquare).map((t) => t.name);
  if (offending.length) {
    throw new UserError(
      `transform set "${set.name}" rotates by 90°/270° (${offending.join(', ')}), which needs square images, but the images are ${height}×${width}`,
      'resize or crop the images to a square size, or pick a set without quarter turns (e.g. rotation2, color_perm)',
    );
  }
}

/**
 * Expand a normalised NHWC batch [B, H, W, 3] to its M transformed copies [B·M, H, W, 3] in image-major order:
 * row b·M + j holds t_j(x_b) (docs/reference.md §1.1), so joint labels are y_b·M + j.
 * A set of rotations / channel permutations only (every built-in set) is one kernel where the backend has it
 * (wasm: src/backend/wasm/image_copies.ts, the same values bit for bit); otherwise each transform's own ops.
 */
export function expandImages(set: TransformSet, images: tf.Tensor4D): tf.Tensor4D {
  const [batch, height, width, channels] = images.shape;
  if (channels !== 3) throw new UserError(`transforms need RGB images, got ${channels} channel(s)`, 'pass [B, H, W, 3] images');
  checkTransformInput(set, height, width);
  const maps = set.transforms.map((t) => t.pixelPermutation);
  if (maps.every((m): m is PixelPermutation => m != null)) {
    const fused = transformCopies(images, maps);
    if (fused != null) return fused;
  }
  return tf.tidy(() => {
    const copies = set.transforms.map((t) => t.apply(images));
    return tf.reshape(tf.stack(copies, 1), [batch * copies.length, height, width, channels]);
  });
}
