/**
 * Matching Networks (Vinyals et al. 2016) as a fewshot head, on the public API only.
 *
 * Attention over the support set: a(q, s_i) = softmax_i(scale · cos(f(q), f(s_i))), and the class distribution
 * P(c | q) = Σ_{i : y_i = c} a(q, s_i). The head returns log P(c | q) as its logits (computed as a difference
 * of log-sum-exps, so it is stable and exact), hence the method's cross-entropy is the paper's −log P(y | q).
 * Full context embeddings (FCE, the LSTMs over the support) are not implemented. `scale` sharpens the
 * attention (the paper has none, i.e. scale 1; cosine in [−1, 1] over 25 or more supports is then nearly
 * uniform, so we default to 10, and `learnScale` makes it a meta-learned variable).
 */
import { learnerVariable, registerHead, tf, z, type EmbeddedEpisode, type FewShotHead } from 'fewshot';

export const matchingNetConfigSchema = z
  .object({
    scale: z.number().positive().default(10),
    learnScale: z.boolean().default(false),
  })
  .strict();
export type MatchingNetConfig = z.infer<typeof matchingNetConfigSchema>;

/** Cosine similarities [nQuery, nSupport]. */
export function cosineSimilarities(query: tf.Tensor2D, support: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const unit = (x: tf.Tensor2D) => tf.div(x, tf.add(tf.norm(x, 'euclidean', 1, true), 1e-8)) as tf.Tensor2D;
    return tf.matMul(unit(query), unit(support), false, true);
  });
}

/** log P(c | q) [nQuery, way] from attention scores [nQuery, nSupport] and support labels. */
export function attentionLogProbabilities(scores: tf.Tensor2D, supportLabels: Int32Array, way: number): tf.Tensor2D {
  return tf.tidy(() => {
    const nSupport = supportLabels.length;
    // mask[c, i] = 0 where y_i = c, −1e9 elsewhere: log Σ_{i∈c} e^{s_i} = logsumexp_i(s_i + mask[c, i]).
    const mask = new Float32Array(way * nSupport).fill(-1e9);
    for (let i = 0; i < nSupport; i++) mask[supportLabels[i] * nSupport + i] = 0;
    const perClass = tf.logSumExp(tf.add(tf.expandDims(scores, 1), tf.tensor3d(mask, [1, way, nSupport])), 2);
    return tf.sub(perClass, tf.logSumExp(scores, 1, true)) as tf.Tensor2D;
  });
}

export class MatchingNetHead implements FewShotHead {
  readonly id = 'matchingnet';
  private readonly scale: tf.Variable | number;
  constructor(config: MatchingNetConfig) {
    this.scale = config.learnScale ? learnerVariable('learner/matchingnet/scale', tf.scalar(config.scale)) : config.scale;
  }
  logits(ep: EmbeddedEpisode): tf.Tensor2D {
    return tf.tidy(() => attentionLogProbabilities(tf.mul(cosineSimilarities(ep.query, ep.support), this.scale) as tf.Tensor2D, ep.supportLabels, ep.way));
  }
  variables(): tf.Variable[] {
    return typeof this.scale === 'number' ? [] : [this.scale];
  }
}

registerHead({
  id: 'matchingnet',
  apiVersion: '1.0',
  description: 'Matching Networks: softmax attention over cosine similarities to the support, no FCE (plugin)',
  configSchema: matchingNetConfigSchema,
  create: (config) => new MatchingNetHead(config),
});
