import * as tf from '@tensorflow/tfjs-core';
import '../tf-gradients.ts';

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
