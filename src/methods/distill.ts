import * as tf from '@tensorflow/tfjs-core';

export { stopGradient } from '../learners/ops.ts';

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
