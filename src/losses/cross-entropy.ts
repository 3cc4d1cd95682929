import * as tf from '@tensorflow/tfjs-core';
import '../tf-gradients.ts';
import { oneHotLabels } from '../learners/ops.ts';

/**
 * Mean cross-entropy of logits [n, C] against integer labels.
 * With `smoothing` ε > 0 the target is 1−ε on the true class and ε/(C−1) on each other class
 * (MetaOptNet's convention, not ε/C).
 */
export function crossEntropy(logits: tf.Tensor2D, labels: Int32Array, smoothing = 0): tf.Scalar {
  return tf.tidy(() => {
    const numClasses = logits.shape[1];
    const oneHot = oneHotLabels(labels, numClasses);
    const target =
      smoothing > 0 && numClasses > 1
        ? tf.add(tf.mul(oneHot, 1 - smoothing), tf.mul(tf.sub(1, oneHot), smoothing / (numClasses - 1)))
        : oneHot;
    const logProb = tf.logSoftmax(logits);
    return tf.neg(tf.mean(tf.sum(tf.mul(target, logProb), 1))) as tf.Scalar;
  });
}
