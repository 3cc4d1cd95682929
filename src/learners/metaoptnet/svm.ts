import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { EmbeddedEpisode, FewShotHead, HeadFactory } from '../contract.ts';
import { CRAMMER_SINGER_DEFAULTS, solveCrammerSinger, type CrammerSingerStats } from './qp/crammer-singer.ts';
import { checkEpisode, differentiableDual, dualLogits } from './qp/dual-head.ts';

/**
 * MetaOptNet-SVM (Lee et al. 2019; docs/reference.md §4.2): a Crammer–Singer multi-class SVM fitted to the support set
 * in its dual, exactly as MetaOptNet's `MetaOptNetHead_SVM_CS` poses it (linear kernel, G = K⊗I + 1.0·I,
 * α_i^m ≤ C·onehot(y_i)_m, Σ_m α_i^m = 0), then logits(q, m) = scale · Σ_i α_i^m ⟨f(x_i), f(q)⟩ with a learnable
 * scale (init 1). Gradients reach the support embeddings by implicit differentiation of the QP's KKT conditions
 * (src/learners/metaoptnet/qp/crammer-singer.ts) and the query embeddings through the final matmul.
 *
 * Deviation from the reference code: MetaOptNet runs qpth's interior-point method for a fixed number of
 * iterations (15 in meta-training, 3 at test), which is an algorithm-specific early-stopping regulariser; this head
 * solves the QP to optimality (within `tolerance`, see the solver), in training and evaluation alike.
 */
export const metaOptNetSvmConfig = z
  .object({
    /** Box constraint C (MetaOptNet: 0.1). */
    C: z.number().positive().default(0.1),
    /** Coordinate-descent sweep budget of the solver; exceeding it raises NumericalError. */
    maxIter: z.number().int().positive().default(CRAMMER_SINGER_DEFAULTS.maxSweeps),
    /** Relative optimality tolerance (primal feasibility and complementarity, see the solver). */
    tolerance: z.number().positive().max(1e-3).default(CRAMMER_SINGER_DEFAULTS.tolerance),
    /** Initial value of the logit scale. */
    scale: z.number().positive().default(1),
    /** Learn the logit scale (MetaOptNet: yes). */
    learnableScale: z.boolean().default(true),
    /** Label smoothing ε the protocol trains with (MetaOptNet mini-ImageNet ResNet-12: 0.1). */
    labelSmoothing: z.number().min(0).lt(1).default(0),
  })
  .strict();
export type MetaOptNetSvmConfig = z.infer<typeof metaOptNetSvmConfig>;

let instance = 0;
export class MetaOptNetSvmHead implements FewShotHead {
  readonly id = 'metaoptnet-svm';
  readonly labelSmoothing: number;
  private readonly scale: tf.Variable;
  /** Solver statistics of the most recent episode (sweeps, active-set solves, residuals, timings). */
  lastStats?: CrammerSingerStats;
  constructor(readonly config: MetaOptNetSvmConfig) {
    this.labelSmoothing = config.labelSmoothing;
    this.scale = tf.variable(tf.scalar(config.scale), config.learnableScale, `head/metaoptnet-svm/scale#${instance++}`);
  }
  logits(ep: EmbeddedEpisode, _phase?: 'train' | 'eval'): tf.Tensor2D {
    checkEpisode(ep, this.id);
    return tf.tidy(() => {
      const kernel = tf.matMul(ep.support, ep.support, false, true) as tf.Tensor2D;
      const alpha = differentiableDual(
        kernel,
        ep.way,
        (k) => {
          const sol = solveCrammerSinger(k, ep.supportLabels, ep.way, { C: this.config.C, maxSweeps: this.config.maxIter, tolerance: this.config.tolerance });
          this.lastStats = sol.stats;
          return sol;
        },
        this.id,
      );
      return dualLogits(ep, alpha, this.scale, this.id);
    });
  }
  variables(): tf.Variable[] {
    return this.config.learnableScale ? [this.scale] : [];
  }
}

export const metaOptNetSvmFactory: HeadFactory<MetaOptNetSvmConfig> = {
  id: 'metaoptnet-svm',
  description: 'MetaOptNet-SVM: Crammer–Singer SVM dual solved exactly per episode, differentiated through its KKT conditions',
  configSchema: metaOptNetSvmConfig,
  create: (config) => new MetaOptNetSvmHead(config),
};
