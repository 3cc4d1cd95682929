import * as tf from '@tensorflow/tfjs-core';
import '../tf-gradients.ts';
import { oneHotLabels } from '../learners/ops.ts';
import { detach } from '../learners/adaptive.ts';

/**
 * Mean cross-entropy of logits [n, C] against integer labels.
 * With `smoothing` ε > 0 the target is 1−ε on the true class and ε/(C−1) on each other class
 * (MetaOptNet's convention, not ε/C).
 */
export function crossEntropy(logits: tf.Tensor2D, labels: Int32Array, smoothing = 0): tf.Scalar {
  return tf.tidy(() => {
    const numClasses = logits.shape[1];
    const oneHot = oneHotLabels(labels, numClasses);
    const target = smoothing > 0 && numClasses > 1 ? tf.add(tf.mul(oneHot, 1 - smoothing), tf.mul(tf.sub(1, oneHot), smoothing / (numClasses - 1))) : oneHot;
    const logProb = tf.logSoftmax(logits);
    return tf.neg(tf.mean(tf.sum(tf.mul(target, logProb), 1))) as tf.Scalar;
  });
}

/**
 * exp whose gradient recomputes exp from the saved input. tfjs's Exp gradient multiplies by the op's saved
 * output, and saved outputs are not connected to the tape, so a gradient of a gradient through tf.exp silently
 * misses a term; through this op it is exact (its gradient is itself).
 */
const expTwiceDifferentiable: (x: tf.Tensor) => tf.Tensor = tf.customGrad(((x: tf.Tensor, save: (tensors: tf.Tensor[]) => void) => {
  save([x]);
  return { value: tf.exp(x), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, expTwiceDifferentiable(saved[0])) };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Tensor;

/**
 * `crossEntropy` (no smoothing) whose gradient is itself exactly differentiable, for inner loops that are
 * differentiated again (second-order MAML/ANIL). Two tfjs ops lose the second-order terms: tf.logSoftmax (its
 * custom gradient treats its saved output as a constant) and tf.exp (same); tf.max's gradient (an Equal mask)
 * has no gradient at all. So log-softmax is written out with the exp above, and the row max it shifts by is
 * detached (the shift cancels in value and gradient). Checked against finite differences in
 * plugins/maml/maml.slow.test.ts.
 */
export function crossEntropyTwiceDifferentiable(logits: tf.Tensor2D, labels: Int32Array): tf.Scalar {
  return tf.tidy(() => {
    const shifted = tf.sub(logits, detach(tf.max(logits, 1, true)));
    const logProb = tf.sub(shifted, tf.log(tf.sum(expTwiceDifferentiable(shifted), 1, true)));
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHotLabels(labels, logits.shape[1]), logProb), 1))) as tf.Scalar;
  });
}
