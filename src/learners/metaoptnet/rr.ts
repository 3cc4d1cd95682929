import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { EmbeddedEpisode, FewShotHead, HeadFactory } from '../contract.ts';
import { solveRidge } from './qp/ridge.ts';
import { checkEpisode, differentiableDual, dualLogits } from './qp/dual-head.ts';

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
    /** Initial value of the logit scale. */
    scale: z.number().positive().default(1),
    /** Learn the logit scale (MetaOptNet: yes). */
    learnableScale: z.boolean().default(true),
    /** Label smoothing ε the protocol trains with (MetaOptNet mini-ImageNet ResNet-12: 0.1). */
    labelSmoothing: z.number().min(0).lt(1).default(0),
  })
  .strict();
export type MetaOptNetRrConfig = z.infer<typeof metaOptNetRrConfig>;

let instance = 0;
export class MetaOptNetRrHead implements FewShotHead {
  readonly id = 'metaoptnet-rr';
  readonly labelSmoothing: number;
  private readonly scale: tf.Variable;
  constructor(readonly config: MetaOptNetRrConfig) {
    this.labelSmoothing = config.labelSmoothing;
    this.scale = tf.variable(tf.scalar(config.scale), config.learnableScale, `head/metaoptnet-rr/scale#${instance++}`);
  }
  logits(ep: EmbeddedEpisode, _phase?: 'train' | 'eval'): tf.Tensor2D {
    checkEpisode(ep, this.id);
    return tf.tidy(() => {
      const kernel = tf.matMul(ep.support, ep.support, false, true) as tf.Tensor2D;
      const alpha = differentiableDual(kernel, ep.way, (k) => solveRidge(k, ep.supportLabels, ep.way, this.config.lambda), this.id);
      return dualLogits(ep, alpha, this.scale, this.id);
    });
  }
  variables(): tf.Variable[] {
    return this.config.learnableScale ? [this.scale] : [];
  }
}

export const metaOptNetRrFactory: HeadFactory<MetaOptNetRrConfig> = {
  id: 'metaoptnet-rr',
  description: 'MetaOptNet-RR: ridge regression on one-hot labels in closed form (n×n solve), learnable logit scale',
  configSchema: metaOptNetRrConfig,
  create: (config) => new MetaOptNetRrHead(config),
};
