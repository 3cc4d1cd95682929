import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { EpisodeImages } from '../episodes/images.ts';
import type { MethodWrapper } from './contract.ts';
import type { Backbone } from '../backbones/contract.ts';
import type { Learner } from '../learners/contract.ts';
import type { TransformSet } from '../transforms/contract.ts';
import { crossEntropy } from '../losses/cross-entropy.ts';
import { repeatLabels } from './aggregate.ts';
import { fitTask, prepareLearner, type FittedTask } from './fit.ts';
import { TransformedMethod, checkHeadWay, parseWrapperOptions, resolveTransformSet, transformOption } from './transformed.ts';

/**
 * DA baseline (docs/reference.md §1.3, L_DA): the transformations as plain data augmentation. Every transformed copy
 * keeps its image's label y; the head solves an N-way episode on the expanded support (ProtoNet: each prototype
 * averages all M copies of its class's shots), and the loss is the mean CE over all expanded queries (= mean
 * over j of the per-copy CE), with the head's label smoothing.
 * Inference (the paper's is not found; docs/reference.md §1.3 [INFERRED]): mode 'plain', the head fitted on the
 * untransformed support scoring the untransformed queries, exactly like the plain method.
 */
export const daOptionsSchema = z.object({ transform: transformOption }).strict();
export type DaOptions = z.infer<typeof daOptionsSchema>;
const DA_ALLOWED_OPTIONS = 'transform (a transform set name, default rotation)';

export class DaMethod extends TransformedMethod {
  readonly inferenceModes: readonly string[] = ['plain'];
  constructor(id: string, backbone: Backbone, head: Learner, transformSet: TransformSet) {
    super(id, backbone, head, transformSet);
  }

  /** N-way logits of all expanded queries from the head fitted on the expanded support. Call inside tidy. */
  protected augmentedForward(ep: EpisodeImages): FittedTask {
    checkHeadWay(this.head, ep.way, this.id);
    return this.fitExpanded(ep, repeatLabels(ep.supportLabels, this.transformCount), ep.way, 'train', true);
  }

  protected classLoss(logits: tf.Tensor2D, ep: EpisodeImages): tf.Scalar {
    return crossEntropy(logits, repeatLabels(ep.queryLabels, this.transformCount), this.head.labelSmoothing ?? 0);
  }

  trainLoss(ep: EpisodeImages): tf.Scalar {
    return tf.tidy(() => this.classLoss(this.augmentedForward(ep).logits, ep));
  }

  predict(ep: EpisodeImages): Record<string, tf.Tensor2D> {
    return tf.tidy(() => ({ plain: fitTask(this.backbone, this.head, ep, 'eval', false).logits }));
  }

  describe(): Record<string, unknown> {
    return { wrapper: 'da', ...this.describeTransforms() };
  }
}

/**
 * What DA and MT (which takes DA's options) do before building the method: the transform set from the options, and
 * the head checked and sized for the N classes of the episode (every transformed copy keeps its label).
 */
export function prepareAugmentation(
  suffix: 'da' | 'mt',
  { backbone, head, way, imageSize, seed, options }: Parameters<MethodWrapper['create']>[0],
): { id: string; set: TransformSet } {
  const opts = parseWrapperOptions(suffix, daOptionsSchema, options, DA_ALLOWED_OPTIONS);
  const set = resolveTransformSet(opts.transform, imageSize);
  const id = `${head.id}-${suffix}`;
  checkHeadWay(head, way, id);
  prepareLearner(head, { way, backbone, imageSize, seed });
  return { id, set };
}

export const daWrapper: MethodWrapper = {
  suffix: 'da',
  description: 'DA baseline: transformed copies as data augmentation with the original label; plain inference',
  create: (args) => {
    const { id, set } = prepareAugmentation('da', args);
    return new DaMethod(id, args.backbone, args.head, set);
  },
};
