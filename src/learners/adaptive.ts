import * as tf from '@tensorflow/tfjs-core';
import type { FastWeights } from '../backbones/contract.ts';

/*
 * Building blocks for optimisation-based meta-learners (MAML, ANIL, ...): gradient steps on fast weights.
 *
 * Gradients of gradients. tfjs keeps one tape while any gradient computation is active, and the backward ops
 * of a tf.grads call made inside an outer tape (the trainer's) are recorded on it. So an inner step
 * θ' = θ − α·∇L_support(θ) is, by default, differentiable in θ through ∇L_support itself: second-order MAML.
 * That only works if every kernel on the inner backward path has a gradient of its own. tfjs-core 4.22 has none
 * for Conv2DBackpropFilter and MaxPoolGrad, and our fused batch-norm(+pool) gradient kernels (src/backend/wasm)
 * register none either, so second order fails for any inner loop through the convolutional backbone (the
 * outer backward throws "gradient function not found"). An inner loop over a linear head (ANIL) only needs
 * MatMul/Add and the loss: second order works there, with one more catch: tf.exp and tf.logSoftmax compute
 * their gradients from their saved outputs, which are not on the tape, so a gradient of a gradient through
 * them silently drops terms. Inner losses therefore use crossEntropyTwiceDifferentiable (losses/), which is
 * exact (checked against finite differences in plugins/maml/maml.slow.test.ts).
 *
 * First order (`firstOrder: true`, FOMAML): the inner gradient is taken with respect to detached copies of the
 * parameters (copies not on the tape), so it enters θ' as a constant and the outer
 * gradient is ∂L_query/∂θ' passed straight through to θ.
 */

/**
 * The values of `x` as a new tensor that is not on the gradient tape at all. A copy, read back once per inner
 * step: a zero-gradient op (stopGradient) would keep the inner backward pass connected to θ in the outer tape,
 * whose traversal then fails on ops without gradients (Equal), and a tensor aliasing `x`'s data id frees a
 * variable's storage when the alias is disposed (found training ANIL for real: the second optimizer step read
 * freed memory). For the sizes of these meta-parameters (≤ 0.2 M floats) the copy is cheap on the CPU backends.
 */
export function detach<T extends tf.Tensor>(x: T): T {
  return tf.tensor(x.dataSync(), x.shape, x.dtype) as T;
}

/** Options of one inner-loop SGD step of an adaptive learner (`innerSgdStep`). */
export interface InnerStepOptions {
  /** Inner learning rate α. */
  lr: number;
  /** Treat the inner gradient as a constant (first-order MAML). */
  firstOrder: boolean;
}

/**
 * One SGD step on `params`: returns θ − α·∇_θ loss(θ), in the order given. `loss` receives the tensors to use
 * for the parameters (detached copies in first-order mode). Call inside tf.tidy.
 */
export function innerSgdStep(params: tf.Tensor[], loss: (params: tf.Tensor[]) => tf.Scalar, opts: InnerStepOptions): tf.Tensor[] {
  const at = opts.firstOrder ? params.map((p) => detach(p)) : params;
  const grads = tf.grads((...ps: tf.Tensor[]) => loss(ps))(at);
  return params.map((p, i) => tf.sub(p, tf.mul(grads[i], opts.lr)));
}

/** Fast weights mapping each variable to its adapted tensor, for Backbone.apply(images, training, params). */
export function fastWeights(variables: readonly tf.Variable[], values: readonly tf.Tensor[]): FastWeights {
  if (variables.length !== values.length) throw new Error(`fastWeights: ${variables.length} variables but ${values.length} values`);
  return new Map(variables.map((v, i) => [v, values[i]]));
}

let variableCounter = 0;
/**
 * A trainable variable for a learner's meta-parameters. Checkpoints key variables on the name before '#', so
 * give a stable `path` (e.g. `learner/maml/head/weight`); the suffix keeps tfjs names unique per process.
 */
export function learnerVariable(path: string, initial: tf.Tensor): tf.Variable {
  return tf.variable(initial, true, `${path}#l${variableCounter++}`);
}
