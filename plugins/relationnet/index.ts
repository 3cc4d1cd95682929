/**
 * Relation Networks (Sung et al. 2018) as a fewshot head, on the public API only.
 *
 * A learned relation module scores every (class, query) pair: r(c, q) = w₂ · ReLU(W₁ [p_c ; f(q)] + b₁) + b₂,
 * with p_c the mean support embedding of class c (the paper sums the shots' feature maps). Deviations, because
 * fewshot heads see flattened embeddings and the method owns the loss: the module is a 2-layer MLP on the
 * concatenated vectors (the paper: two conv blocks on concatenated feature maps, then the same 2 FC layers,
 * hidden size 8), and the relation scores are used as logits under cross-entropy (the paper: sigmoid + MSE
 * against one-hot targets). W₁ [p ; q] is computed as W₁ᵖ p + W₁ᑫ q, so no [way·nQuery, 2d] matrix is built.
 */
import { classMeans, learnerVariable, registerHead, tf, z, type EmbeddedEpisode, type FewShotHead, type LearnerSetup } from 'fewshot';

export const relationNetConfigSchema = z.object({ hidden: z.number().int().min(1).max(1024).default(8) }).strict();
export type RelationNetConfig = z.infer<typeof relationNetConfigSchema>;

let instances = 0;

export class RelationNetHead implements FewShotHead {
  readonly id = 'relationnet';
  private vars?: { w1p: tf.Variable; w1q: tf.Variable; b1: tf.Variable; w2: tf.Variable; b2: tf.Variable };
  constructor(readonly config: RelationNetConfig) {}

  /** The relation module's input size is 2d, so it is created once the embedding size is known. */
  prepare({ embeddingDim, seed }: LearnerSetup): void {
    if (this.vars) return;
    const h = this.config.hidden;
    // PyTorch nn.Linear initialisation U(±1/√fan_in), seeded.
    const b1Bound = 1 / Math.sqrt(2 * embeddingDim);
    const b2Bound = 1 / Math.sqrt(h);
    const s = seed * 8 + 1000 * instances++;
    const u = (shape: number[], bound: number, k: number) => tf.randomUniform(shape, -bound, bound, 'float32', s + k);
    this.vars = tf.tidy(() => ({
      w1p: learnerVariable('learner/relationnet/fc1/weight_proto', u([embeddingDim, h], b1Bound, 1)),
      w1q: learnerVariable('learner/relationnet/fc1/weight_query', u([embeddingDim, h], b1Bound, 2)),
      b1: learnerVariable('learner/relationnet/fc1/bias', u([h], b1Bound, 3)),
      w2: learnerVariable('learner/relationnet/fc2/weight', u([h, 1], b2Bound, 4)),
      b2: learnerVariable('learner/relationnet/fc2/bias', u([1], b2Bound, 5)),
    }));
  }

  logits(ep: EmbeddedEpisode): tf.Tensor2D {
    const v = this.vars;
    if (!v) throw new Error('relationnet: prepare() was not called before logits()');
    return tf.tidy(() => {
      const protos = classMeans(ep.support, ep.supportLabels, ep.way);
      const fromProto = tf.matMul(protos, v.w1p as tf.Tensor2D); // [way, h]
      const fromQuery = tf.matMul(ep.query, v.w1q as tf.Tensor2D); // [nQuery, h]
      const hidden = tf.relu(tf.add(tf.add(tf.expandDims(fromQuery, 1), tf.expandDims(fromProto, 0)), v.b1)) as tf.Tensor3D; // [nQuery, way, h]
      const nQuery = ep.query.shape[0];
      const scores = tf.add(tf.matMul(tf.reshape(hidden, [nQuery * ep.way, this.config.hidden]), v.w2 as tf.Tensor2D), v.b2);
      return tf.reshape(scores, [nQuery, ep.way]) as tf.Tensor2D;
    });
  }

  variables(): tf.Variable[] {
    return this.vars ? Object.values(this.vars) : [];
  }
}

registerHead({
  id: 'relationnet',
  apiVersion: '1.0',
  description: 'Relation Networks: a learned 2-layer relation module on [class mean ; query] embeddings (plugin)',
  configSchema: relationNetConfigSchema,
  create: (config) => new RelationNetHead(config),
});
