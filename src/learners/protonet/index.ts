import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { EmbeddedEpisode, FewShotHead, HeadFactory } from '../contract.ts';
import { classMeans, labelSmoothingSchema, logitScaleVariable, squaredDistances } from '../ops.ts';

/**
 * Prototypical Networks (Snell et al. 2017): logit(q, k) = −‖f(q) − c_k‖², c_k = mean of class k's support embeddings.
 * Under the MetaOptNet protocol (docs/reference.md §4.4) the distance is divided by the embedding dimension and
 * multiplied by a learnable scale (init 1): `normalizeByDim`, `learnableScale`.
 */
const protonetConfig = z
  .object({
    normalizeByDim: z.boolean().default(false),
    learnableScale: z.boolean().default(false),
    /** MetaOptNet's label smoothing ε (ε/(N−1) on each wrong class); 0 = plain cross-entropy. */
    labelSmoothing: labelSmoothingSchema,
  })
  .strict();
export type ProtoNetConfig = z.infer<typeof protonetConfig>;

export class ProtoNetHead implements FewShotHead {
  readonly id = 'protonet';
  private readonly scale?: tf.Variable;
  readonly labelSmoothing: number;
  readonly config: ProtoNetConfig;
  constructor(options: z.input<typeof protonetConfig> = {}) {
    const config = protonetConfig.parse(options);
    this.config = config;
    this.labelSmoothing = config.labelSmoothing;
    if (config.learnableScale) this.scale = logitScaleVariable(this.id, 1, true);
  }
  logits(ep: EmbeddedEpisode, _phase: 'train' | 'eval' = 'eval'): tf.Tensor2D {
    return tf.tidy(() => {
      const prototypes = classMeans(ep.support, ep.supportLabels, ep.way);
      let logits = tf.neg(squaredDistances(ep.query, prototypes));
      if (this.config.normalizeByDim) logits = tf.div(logits, ep.query.shape[1]);
      if (this.scale) logits = tf.mul(logits, this.scale);
      return logits as tf.Tensor2D;
    });
  }
  variables(): tf.Variable[] {
    return this.scale ? [this.scale] : [];
  }
}

export const protonetFactory: HeadFactory<ProtoNetConfig> = {
  id: 'protonet',
  description: 'Prototypical Networks: negative squared Euclidean distance to class means',
  configSchema: protonetConfig,
  create: (config) => new ProtoNetHead(config),
};
