import * as tf from '@tensorflow/tfjs-core';
import { deriveSeed } from '../util/prng.ts';
import type { EpisodeImages } from '../episodes/images.ts';
import type { MethodWrapper } from './contract.ts';
import type { Backbone } from '../backbones/contract.ts';
import type { Learner } from '../learners/contract.ts';
import type { TransformSet } from '../transforms/contract.ts';
import { crossEntropy } from '../losses/cross-entropy.ts';
import { transformLabels } from './aggregate.ts';
import { DaMethod, prepareAugmentation } from './da.ts';

let instance = 0;

/**
 * MT baseline (docs/reference.md §1.3, L_MT): the DA loss plus an auxiliary M-way transformation-prediction head v on
 * the shared backbone embedding: a linear layer [d, M] + bias (PyTorch nn.Linear init, U(±1/√d), seeded),
 * trained with plain CE (no label smoothing) on every expanded support and query row. The two losses are
 * summed. Inference is DA's: mode 'plain' on untransformed images; v is only used in training. Its options are DA's.
 */
export class MtMethod extends DaMethod {
  readonly transformWeight: tf.Variable;
  readonly transformBias: tf.Variable;
  constructor(id: string, backbone: Backbone, head: Learner, transformSet: TransformSet, embeddingDim: number, seed: number) {
    super(id, backbone, head, transformSet);
    const m = transformSet.transforms.length;
    const bound = 1 / Math.sqrt(embeddingDim);
    const n = instance++;
    // Checkpoints key on the name before '#'; the suffix keeps tfjs variable names unique per process.
    this.transformWeight = tf.variable(
      tf.randomUniform([embeddingDim, m], -bound, bound, 'float32', deriveSeed(seed, 'method/mt/transform_head/weight')),
      true,
      `method/mt/transform_head/weight#${n}`,
    );
    this.transformBias = tf.variable(
      tf.randomUniform([m], -bound, bound, 'float32', deriveSeed(seed, 'method/mt/transform_head/bias')),
      true,
      `method/mt/transform_head/bias#${n}`,
    );
  }

  /** M-way transformation logits of embeddings [n, d]. */
  transformLogits(embeddings: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => tf.add(tf.matMul(embeddings, this.transformWeight as tf.Tensor2D), this.transformBias) as tf.Tensor2D);
  }

  override trainLoss(ep: EpisodeImages): tf.Scalar {
    return tf.tidy(() => {
      const forward = this.augmentedForward(ep);
      const images = ep.supportImages.shape[0] + ep.queryImages.shape[0];
      const transformLoss = crossEntropy(this.transformLogits(forward.all), transformLabels(images, this.transformCount));
      return tf.add(this.classLoss(forward.logits, ep), transformLoss) as tf.Scalar;
    });
  }

  override trainableVariables(): tf.Variable[] {
    return [...super.trainableVariables(), this.transformWeight, this.transformBias];
  }

  override describe(): Record<string, unknown> {
    return { wrapper: 'mt', ...this.describeTransforms() };
  }
}

export const mtWrapper: MethodWrapper = {
  suffix: 'mt',
  description: 'MT baseline: DA plus an auxiliary transformation-prediction head; plain inference',
  create: (args) => {
    const { id, set } = prepareAugmentation('mt', args);
    const { backbone, head, imageSize, seed } = args;
    return new MtMethod(id, backbone, head, set, backbone.embeddingDim(imageSize), seed);
  },
};
