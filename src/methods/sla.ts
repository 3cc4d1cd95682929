import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { EpisodeImages } from '../episodes/images.ts';
import type { MethodWrapper } from './contract.ts';
import type { Backbone } from '../backbones/contract.ts';
import type { Learner } from '../learners/contract.ts';
import type { TransformSet } from '../transforms/contract.ts';
import { crossEntropy } from '../losses/cross-entropy.ts';
import { aggregateJointLogits, jointLabels, singleInferenceLogits } from './aggregate.ts';
import { prepareLearner } from './fit.ts';
import { type ExpandedEmbeddings, TransformedMethod, checkHeadWay, parseWrapperOptions, resolveTransformSet, transformOption } from './transformed.ts';

/**
 * SLA (Lee et al. 2020) around any few-shot head (docs/reference.md §1, §2): every support and query image is expanded
 * to its M transformed copies, support label y becomes the joint label y·M + j, and the head solves the
 * N·M-way episode. Training: cross-entropy over the joint labels of all expanded queries (mean over copies;
 * `slaLoss: 'sum'` multiplies by M like the official `--with-large-loss`), with the head's label smoothing.
 * Inference: SLA+AG (mean over j of logit[t_j(q), (i, j)], pre-softmax) and SLA+SI (identity row and columns)
 * from the same N·M-way fit.
 */
export const slaOptionsSchema = z
  .object({
    /** Transform set name (see src/transforms/builtin.ts). */
    transform: transformOption,
    /** 'mean' over transformations (L_SLA) or 'sum' (= mean × M, official --with-large-loss). */
    slaLoss: z.enum(['mean', 'sum']).default('mean'),
  })
  .strict();
export type SlaOptions = z.infer<typeof slaOptionsSchema>;
export const SLA_ALLOWED_OPTIONS = 'transform (a transform set name, default rotation), slaLoss (mean | sum, default mean)';

export interface JointForward extends ExpandedEmbeddings {
  /** Joint logits of the expanded queries, [nQuery·M, N·M]. */
  logits: tf.Tensor2D;
}

export class SlaMethod extends TransformedMethod {
  readonly inferenceModes: readonly string[] = ['ag', 'si'];
  constructor(
    id: string,
    backbone: Backbone,
    head: Learner,
    transformSet: TransformSet,
    readonly options: SlaOptions,
  ) {
    super(id, backbone, head, transformSet);
  }

  /** Expand, embed and fit the head on the N·M-way joint episode. Call inside a tidy scope. */
  jointForward(ep: EpisodeImages, phase: 'train' | 'eval'): JointForward {
    const m = this.transformCount;
    checkHeadWay(this.head, ep.way * m, `${this.id} (way ${ep.way} × M=${m} transformations)`);
    return this.fitExpanded(ep, jointLabels(ep.supportLabels, m), ep.way * m, phase, phase === 'train');
  }

  /** The joint SLA loss of given joint query logits (×M in 'sum' mode). */
  protected jointLoss(logits: tf.Tensor2D, ep: EpisodeImages): tf.Scalar {
    const m = this.transformCount;
    const loss = crossEntropy(logits, jointLabels(ep.queryLabels, m), this.head.labelSmoothing ?? 0);
    return this.options.slaLoss === 'sum' ? tf.mul(loss, m) : loss;
  }

  trainLoss(ep: EpisodeImages): tf.Scalar {
    return tf.tidy(() => this.jointLoss(this.jointForward(ep, 'train').logits, ep));
  }

  predict(ep: EpisodeImages): Record<string, tf.Tensor2D> {
    return tf.tidy(() => {
      const { logits } = this.jointForward(ep, 'eval');
      return { ag: aggregateJointLogits(logits, this.transformCount), si: singleInferenceLogits(logits, this.transformCount) };
    });
  }

  describe(): Record<string, unknown> {
    return { wrapper: 'sla', ...this.describeTransforms(), slaLoss: this.options.slaLoss };
  }
}

export const slaWrapper: MethodWrapper = {
  suffix: 'sla',
  description: 'SLA: joint (class × transformation) labels; inference SLA+AG (aggregated) and SLA+SI (identity copy)',
  create: ({ backbone, head, way, imageSize, seed, options }) => {
    const opts = parseWrapperOptions('sla', slaOptionsSchema, options, SLA_ALLOWED_OPTIONS);
    const set = resolveTransformSet(opts.transform, imageSize);
    const id = `${head.id}-sla`;
    checkHeadWay(head, way * set.transforms.length, `${id} (way ${way} × M=${set.transforms.length} transformations of "${set.name}")`);
    // An adaptive learner's inner loop runs on the N·M joint classes, so it sizes its head for them.
    prepareLearner(head, { way: way * set.transforms.length, backbone, imageSize, seed });
    return new SlaMethod(id, backbone, head, set, opts);
  },
};
