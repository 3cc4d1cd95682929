import { z } from 'zod';
import type { EmbeddedEpisode, HeadFactory } from '../contract.ts';
import { CRAMMER_SINGER_DEFAULTS, solveCrammerSinger, type CrammerSingerStats } from './qp/crammer-singer.ts';
import { DualHead, dualHeadOptions, type DualSolution } from './qp/dual-head.ts';

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
    ...dualHeadOptions,
  })
  .strict();
export type MetaOptNetSvmConfig = z.infer<typeof metaOptNetSvmConfig>;

export class MetaOptNetSvmHead extends DualHead {
  /** Solver statistics of the most recent episode (sweeps, active-set solves, residuals, timings). */
  lastStats?: CrammerSingerStats;
  constructor(readonly config: MetaOptNetSvmConfig) {
    super('metaoptnet-svm', config);
  }
  protected solve(kernel: Float64Array, ep: EmbeddedEpisode): DualSolution {
    const sol = solveCrammerSinger(kernel, ep.supportLabels, ep.way, { C: this.config.C, maxSweeps: this.config.maxIter, tolerance: this.config.tolerance });
    this.lastStats = sol.stats;
    return sol;
  }
}

export const metaOptNetSvmFactory: HeadFactory<MetaOptNetSvmConfig> = {
  id: 'metaoptnet-svm',
  description: 'MetaOptNet-SVM: Crammer–Singer SVM dual solved exactly per episode, differentiated through its KKT conditions',
  configSchema: metaOptNetSvmConfig,
  create: (config) => new MetaOptNetSvmHead(config),
};
