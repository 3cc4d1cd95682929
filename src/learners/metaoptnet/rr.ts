import { z } from 'zod';
import type { EmbeddedEpisode, HeadFactory } from '../contract.ts';
import { solveRidge } from './qp/ridge.ts';
import { DualHead, dualHeadOptions, type DualSolution } from './qp/dual-head.ts';

/**
 * MetaOptNet-RR (docs/reference.md §4.3): ridge regression onto one-hot support labels in closed form,
 * W = Xᵀ(XXᵀ + λI)⁻¹Y (an n×n solve, n = support size, whatever the embedding dimension), logits = scale · Q W
 * with a learnable scale (init 1). Differentiable through a float64 Cholesky solve with a hand-written gradient.
 *
 * Factor 2: MetaOptNet's "Ridge" head solves min ½zᵀ(K + λI)z − 2y_mᵀz, i.e. its logits are 2·Q W. A constant
 * factor in front of a learnable scale only changes the scale's initial value; set `scale: 2` to start exactly
 * where the reference code starts (its R2D2 head has no factor 2 and matches the default `scale: 1`).
 */
export const metaOptNetRrConfig = z
  .object({
    /** Ridge penalty λ (MetaOptNet: 50). */
    lambda: z.number().positive().default(50),
    ...dualHeadOptions,
  })
  .strict();
export type MetaOptNetRrConfig = z.infer<typeof metaOptNetRrConfig>;

export class MetaOptNetRrHead extends DualHead {
  constructor(readonly config: MetaOptNetRrConfig) {
    super('metaoptnet-rr', config);
  }
  protected solve(kernel: Float64Array, ep: EmbeddedEpisode): DualSolution {
    return solveRidge(kernel, ep.supportLabels, ep.way, this.config.lambda);
  }
}

export const metaOptNetRrFactory: HeadFactory<MetaOptNetRrConfig> = {
  id: 'metaoptnet-rr',
  description: 'MetaOptNet-RR: ridge regression on one-hot labels in closed form (n×n solve), learnable logit scale',
  configSchema: metaOptNetRrConfig,
  create: (config) => new MetaOptNetRrHead(config),
};
