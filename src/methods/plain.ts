import * as tf from '@tensorflow/tfjs-core';
import type { EpisodeImages } from '../episodes/images.ts';
import type { EpisodicMethod, MethodWrapper } from './contract.ts';
import type { Backbone } from '../backbones/contract.ts';
import type { Learner } from '../learners/contract.ts';
import { crossEntropy } from '../losses/cross-entropy.ts';
import { fitTask, prepareLearner } from './fit.ts';
import { UserError } from '../util/errors.ts';

/** The plain episodic method: N-way head on untransformed images, cross-entropy on the query set. */
export class PlainMethod implements EpisodicMethod {
  readonly inferenceModes = ['plain'] as const;
  constructor(
    readonly id: string,
    readonly backbone: Backbone,
    readonly head: Learner,
  ) {}
  trainLoss(ep: EpisodeImages): tf.Scalar {
    return tf.tidy(() => crossEntropy(fitTask(this.backbone, this.head, ep, 'train', true).logits, ep.queryLabels, this.head.labelSmoothing ?? 0));
  }
  predict(ep: EpisodeImages): Record<string, tf.Tensor2D> {
    return tf.tidy(() => ({ plain: fitTask(this.backbone, this.head, ep, 'eval', false).logits }));
  }
  trainableVariables(): tf.Variable[] {
    return [...this.backbone.trainableVariables(), ...this.head.variables()];
  }
  stateVariables(): tf.Variable[] {
    return this.backbone.stateVariables();
  }
  describe(): Record<string, unknown> {
    return { wrapper: 'plain', head: this.head.id, backbone: this.backbone.id };
  }
}

export const plainWrapper: MethodWrapper = {
  suffix: '',
  description: 'plain episodic training and inference',
  create: ({ backbone, head, way, imageSize, seed, options }) => {
    const given = Object.keys(options);
    if (given.length) {
      throw new UserError(
        `method "${head.id}" takes no wrapper options, got: ${given.join(', ')}`,
        `drop them, or use a wrapper that takes them, e.g. ${head.id}-sla --transform rotation`,
      );
    }
    prepareLearner(head, { way, backbone, imageSize, seed });
    return new PlainMethod(head.id, backbone, head);
  },
};
