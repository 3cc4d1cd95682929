import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import '../../../tf-gradients.ts';
import type { EmbeddedEpisode, FewShotHead } from '../../contract.ts';
import { labelSmoothingSchema, logitScaleVariable } from '../../ops.ts';
import { NumericalError, UserError } from '../../../util/errors.ts';
import { allFinite } from './dense.ts';

/** Shared plumbing of the dual-form heads (MetaOptNet SVM and ridge regression). */

/**
 * Wraps a float64 solver "support Gram matrix K [n,n] → dual coefficients α [n,N]" as a differentiable tfjs op:
 * the forward reads K back (n ≤ a few hundred, so this is cheap next to the backbone), solves in JS, and the
 * backward maps ∂L/∂α to ∂L/∂K with the solver's vector–Jacobian product. tfjs then chains ∂L/∂K into the
 * support embeddings through K = X Xᵀ.
 */
export interface DualSolution {
  alpha: Float64Array;
  vjp(alphaBar: Float64Array): Float64Array;
}

export function differentiableDual(kernel: tf.Tensor2D, way: number, solve: (kernel: Float64Array) => DualSolution, what: string): tf.Tensor2D {
  const n = kernel.shape[0];
  const op = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const k = inputs[0] as tf.Tensor;
    const solution = solve(Float64Array.from(k.dataSync()));
    const value = tf.tensor2d(Float32Array.from(solution.alpha), [n, way]);
    const gradFunc = (dy: tf.Tensor2D): tf.Tensor => {
      const kBar = solution.vjp(Float64Array.from(dy.dataSync()));
      if (!allFinite(kBar)) throw new NumericalError(`${what}: gradient of the dual solution is not finite`);
      return tf.tensor2d(Float32Array.from(kBar), [n, n]);
    };
    return { value, gradFunc };
  });
  return op(kernel) as tf.Tensor2D;
}

/** Checks shared by the MetaOptNet heads: label range and sizes, before any compute. */
export function checkEpisode(ep: EmbeddedEpisode, head: string): void {
  const n = ep.support.shape[0];
  if (ep.supportLabels.length !== n) {
    throw new UserError(`${head}: ${ep.supportLabels.length} support labels for ${n} support embeddings`, 'pass one label per support row');
  }
  if (!Number.isInteger(ep.way) || ep.way < 2) throw new UserError(`${head}: way must be an integer ≥ 2, got ${ep.way}`, 'use at least 2 classes per episode');
  for (const y of ep.supportLabels) {
    if (!(y >= 0 && y < ep.way)) throw new UserError(`${head}: support label ${y} outside [0, ${ep.way})`, 'labels must index the episode classes 0..way-1');
  }
  if (ep.query.shape[1] !== ep.support.shape[1]) {
    throw new UserError(
      `${head}: query embeddings are ${ep.query.shape[1]}-d but support embeddings are ${ep.support.shape[1]}-d`,
      'embed support and query with the same backbone',
    );
  }
}

/** scale · (Q Xᵀ) α, with a NaN/Inf check on the result (query embeddings do not pass through the solver). */
export function dualLogits(ep: EmbeddedEpisode, alpha: tf.Tensor2D, scale: tf.Variable | number, head: string): tf.Tensor2D {
  const logits = tf.mul(tf.matMul(tf.matMul(ep.query, ep.support, false, true), alpha), scale) as tf.Tensor2D;
  if (!allFinite(logits.dataSync())) throw new NumericalError(`${head}: logits are NaN/Inf (non-finite query embeddings or logit scale)`);
  return logits;
}

/** The options both MetaOptNet heads share: their logit scale and the protocol's label smoothing. */
export const dualHeadOptions = {
  /** Initial value of the logit scale. */
  scale: z.number().positive().default(1),
  /** Learn the logit scale (MetaOptNet: yes). */
  learnableScale: z.boolean().default(true),
  /** Label smoothing ε the protocol trains with (MetaOptNet mini-ImageNet ResNet-12: 0.1). */
  labelSmoothing: labelSmoothingSchema,
};

/**
 * A MetaOptNet head: the dual coefficients α of a base learner fitted on the support Gram matrix K = XXᵀ (solved in
 * float64, differentiated through its optimality conditions), then logits = scale · (QXᵀ) α. A head names only its
 * solver (`solve`).
 */
export abstract class DualHead implements FewShotHead {
  readonly labelSmoothing: number;
  private readonly scale: tf.Variable;
  constructor(
    readonly id: string,
    private readonly options: { scale: number; learnableScale: boolean; labelSmoothing: number },
  ) {
    this.labelSmoothing = options.labelSmoothing;
    this.scale = logitScaleVariable(id, options.scale, options.learnableScale);
  }
  /** α [n, way] for the episode's support Gram matrix (float64, row-major). */
  protected abstract solve(kernel: Float64Array, ep: EmbeddedEpisode): DualSolution;
  logits(ep: EmbeddedEpisode, _phase?: 'train' | 'eval'): tf.Tensor2D {
    checkEpisode(ep, this.id);
    return tf.tidy(() => {
      const kernel = tf.matMul(ep.support, ep.support, false, true) as tf.Tensor2D;
      const alpha = differentiableDual(kernel, ep.way, (k) => this.solve(k, ep), this.id);
      return dualLogits(ep, alpha, this.scale, this.id);
    });
  }
  variables(): tf.Variable[] {
    return this.options.learnableScale ? [this.scale] : [];
  }
}
