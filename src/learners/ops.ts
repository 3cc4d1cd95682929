import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import '../tf-gradients.ts';

/** A head's label smoothing ε (MetaOptNet's protocol: ε/(N−1) on each wrong class); 0 = plain cross-entropy. */
export const labelSmoothingSchema = z.number().min(0).lt(1).default(0);

const logitScaleCounts = new Map<string, number>();

/**
 * A head's logit scale (MetaOptNet's protocol multiplies the logits by a learnable scalar): a scalar variable named
 * `head/<id>/scale#<n>`, n counting the instances of that head, so every instance's variable name is unique.
 */
export function logitScaleVariable(headId: string, initial: number, trainable: boolean): tf.Variable {
  const n = logitScaleCounts.get(headId) ?? 0;
  logitScaleCounts.set(headId, n + 1);
  return tf.variable(tf.scalar(initial), trainable, `head/${headId}/scale#${n}`);
}

/** One-hot [n, way] float matrix of integer labels. */
export function oneHotLabels(labels: Int32Array, way: number): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), way), 'float32') as tf.Tensor2D);
}

/** Per-class mean of embeddings [n, d] → [way, d]. A class without support rows is an error upstream. */
export function classMeans(embeddings: tf.Tensor2D, labels: Int32Array, way: number): tf.Tensor2D {
  return tf.tidy(() => {
    const oneHot = oneHotLabels(labels, way); // [n, way]
    const counts = tf.reshape(tf.sum(oneHot, 0), [way, 1]);
    return tf.div(tf.matMul(oneHot, embeddings, true, false), counts) as tf.Tensor2D;
  });
}

/** Squared Euclidean distances [m, k] between rows of a [m, d] and b [k, d], as ‖a‖² − 2a·b + ‖b‖². */
export function squaredDistances(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const aa = tf.sum(tf.square(a), 1, true); // [m,1]
    const bb = tf.reshape(tf.sum(tf.square(b), 1), [1, -1]); // [1,k]
    return tf.add(tf.sub(aa, tf.mul(tf.matMul(a, b, false, true), 2)), bb) as tf.Tensor2D;
  });
}

/**
 * Identity in the forward pass, zero gradient in the backward pass (torch's `.detach()`): tfjs-core has no
 * stopGradient op. A custom gradient keeps the value on the device (no data readback inside the training
 * step) and cuts the path; the zero gradient it sends back is a few tiny ops. (A tensor made from the same
 * data id instead shares the variable's storage with the tape's bookkeeping, and disposing it frees the
 * variable's data: the next optimizer step then reads freed memory.)
 */
const detachOp = tf.customGrad((...inputs) => ({
  value: tf.clone(inputs[0] as tf.Tensor),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
}));

/** The same values with no gradient flowing back (for distillation targets). */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  return detachOp(x) as T;
}
