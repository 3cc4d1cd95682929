import * as tf from '@tensorflow/tfjs-core';

/**
 * Identity in the forward pass, zero gradient in the backward pass (torch's `.detach()`): tfjs-core has no
 * stopGradient op. A custom gradient keeps the value on the device (no data readback inside the training
 * step) and cuts the path; the zero gradient it sends back is a few tiny ops.
 */
const detachOp = tf.customGrad((...inputs) => ({
  value: tf.clone(inputs[0] as tf.Tensor),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
}));

export function stopGradient<T extends tf.Tensor>(x: T): T {
  return detachOp(x) as T;
}

/**
 * Distillation term of SLA+SD (docs/reference.md §1.3): T²·KL(softmax(teacher/T) ‖ softmax(student/T)), summed over
 * classes and averaged over rows (torch `kl_div(..., reduction='batchmean')`). The caller detaches the teacher.
 */
export function distillationKl(teacherLogits: tf.Tensor2D, studentLogits: tf.Tensor2D, temperature: number): tf.Scalar {
  return tf.tidy(() => {
    const teacherLogProb = tf.logSoftmax(tf.div(teacherLogits, temperature));
    const studentLogProb = tf.logSoftmax(tf.div(studentLogits, temperature));
    const perRow = tf.sum(tf.mul(tf.exp(teacherLogProb), tf.sub(teacherLogProb, studentLogProb)), 1);
    return tf.mul(tf.mean(perRow), temperature * temperature) as tf.Scalar;
  });
}
