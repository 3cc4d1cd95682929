import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { EpisodeImages } from '../episodes/images.ts';
import type { MethodWrapper } from './contract.ts';
import type { Backbone } from '../backbones/contract.ts';
import { isAdaptive, type FewShotHead } from '../learners/contract.ts';
import { UserError } from '../util/errors.ts';
import type { TransformSet } from '../transforms/contract.ts';
import { crossEntropy } from '../losses/cross-entropy.ts';
import { aggregateJointLogits, identityRows, singleInferenceLogits } from './aggregate.ts';
import { distillationKl, stopGradient } from './distill.ts';
import { SlaMethod, type JointForward } from './sla.ts';
import { checkHeadWay, parseWrapperOptions, resolveTransformSet, transformOption } from './transformed.ts';

/**
 * SLA+SD (self-distillation) for episodic few-shot learning.
 *
 * In standard classification (docs/reference.md §1.3) SLA+SD adds a second, N-way linear head u on the untransformed
 * embedding z = f(x) and trains it with CE(u(z), y) plus a distillation term from the aggregated SLA+AG
 * prediction; at test time only u(f(x)) is evaluated (one forward pass). Few-shot heads have no fixed class
 * weights, so our episodic definition is:
 *
 * - Joint model: the head fitted on the N·M-way expanded support (as in SLA), joint logits Z for all expanded
 *   queries; AG logits S[b, i] = mean_j Z[b·M + j, i·M + j].
 * - "Single" N-way model U: the SAME few-shot head, fitted on the untransformed support only (the j = 0 rows of
 *   the expanded support embeddings, labels y, way N) and applied to the untransformed queries (j = 0 rows).
 *   Both come from the one backbone pass of the expanded episode, like the official code's z_0.
 * - Loss = L_SLA(Z) (×M with slaLoss 'sum') + β·CE(U, y) + T²·KL(softmax(stopgrad(S)/T) ‖ softmax(U/T)),
 *   KL averaged over queries (batchmean); defaults β = 1, T = 1 as in the official code. CE terms use the
 *   head's label smoothing. S is detached, so the distillation term only moves the single model toward AG.
 * - Inference 'sd' (headline): U on untransformed support and queries, a single pass without transformations.
 *   'ag' and 'si' are reported too, from the joint fit.
 *
 * Note: for ProtoNet (no per-class parameters), U's prototypes are the j = 0 joint prototypes, so U equals the
 * SLA+SI logits; SD then trains SI directly (CE) and distils AG into it. Heads whose fit depends on the whole
 * support (SVM, ridge) give a U that differs from SI.
 */
export const slaSdOptionsSchema = z
  .object({
    transform: transformOption,
    slaLoss: z.enum(['mean', 'sum']).default('mean'),
    /** Weight β of CE(single, y). */
    beta: z.number().min(0).default(1),
    /** Distillation temperature T; the KL term is scaled by T². */
    temperature: z.number().positive().default(1),
  })
  .strict();
export type SlaSdOptions = z.infer<typeof slaSdOptionsSchema>;
const SLA_SD_ALLOWED_OPTIONS = 'transform (default rotation), slaLoss (mean | sum), beta (≥ 0, default 1), temperature (> 0, default 1)';

export class SlaSdMethod extends SlaMethod {
  override readonly inferenceModes: readonly string[] = ['sd', 'ag', 'si'];
  constructor(
    id: string,
    backbone: Backbone,
    head: FewShotHead,
    transformSet: TransformSet,
    readonly sdOptions: SlaSdOptions,
  ) {
    super(id, backbone, head, transformSet, { transform: sdOptions.transform, slaLoss: sdOptions.slaLoss });
  }

  /** N-way logits of the head fitted on the untransformed support, for the untransformed queries. */
  singleLogits(forward: JointForward, ep: EpisodeImages, phase: 'train' | 'eval'): tf.Tensor2D {
    const m = this.transformCount;
    return (this.head as FewShotHead).logits(
      { support: identityRows(forward.support, m), query: identityRows(forward.query, m), supportLabels: ep.supportLabels, way: ep.way },
      phase,
    );
  }

  override trainLoss(ep: EpisodeImages): tf.Scalar {
    return tf.tidy(() => {
      const { beta, temperature } = this.sdOptions;
      const forward = this.jointForward(ep, 'train');
      const single = this.singleLogits(forward, ep, 'train');
      const teacher = stopGradient(aggregateJointLogits(forward.logits, this.transformCount));
      const singleCe = crossEntropy(single, ep.queryLabels, this.head.labelSmoothing ?? 0);
      return tf.addN([this.jointLoss(forward.logits, ep), tf.mul(singleCe, beta), distillationKl(teacher, single, temperature)]) as tf.Scalar;
    });
  }

  override predict(ep: EpisodeImages): Record<string, tf.Tensor2D> {
    return tf.tidy(() => {
      const forward = this.jointForward(ep, 'eval');
      const m = this.transformCount;
      return { sd: this.singleLogits(forward, ep, 'eval'), ag: aggregateJointLogits(forward.logits, m), si: singleInferenceLogits(forward.logits, m) };
    });
  }

  override describe(): Record<string, unknown> {
    const { slaLoss, beta, temperature } = this.sdOptions;
    return { wrapper: 'sla-sd', ...this.describeTransforms(), slaLoss, beta, temperature };
  }
}

export const slaSdWrapper: MethodWrapper = {
  suffix: 'sla-sd',
  description: 'SLA+SD: SLA plus self-distillation of SLA+AG into the head fitted on untransformed images; single-pass inference',
  create: ({ backbone, head, way, imageSize, options }) => {
    const opts = parseWrapperOptions('sla-sd', slaSdOptionsSchema, options, SLA_SD_ALLOWED_OPTIONS);
    const set = resolveTransformSet(opts.transform, imageSize);
    const id = `${head.id}-sla-sd`;
    if (isAdaptive(head)) {
      // U would need a second inner loop on the untransformed support per episode; not defined or tried yet.
      throw new UserError(
        `${id}: SLA+SD is defined for heads on embeddings, and "${head.id}" is an adaptive learner`,
        `use ${head.id}-sla (SLA+AG / SLA+SI inference) instead`,
      );
    }
    checkHeadWay(head, way * set.transforms.length, `${id} (way ${way} × M=${set.transforms.length} transformations of "${set.name}")`);
    return new SlaSdMethod(id, backbone, head, set, opts);
  },
};
