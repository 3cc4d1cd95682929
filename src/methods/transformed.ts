import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { EpisodeImages } from '../episodes/images.ts';
import type { EpisodicMethod, MethodWrapperOptions } from './contract.ts';
import type { Backbone } from '../backbones/contract.ts';
import type { Learner } from '../learners/contract.ts';
import { fitTask, type FittedTask } from './fit.ts';
import type { TransformSet } from '../transforms/contract.ts';
import { checkTransformInput, expandImages } from '../transforms/expand.ts';
import { getTransformSet } from '../transforms/registry.ts';
import { UserError } from '../util/errors.ts';

/*
 * Shared machinery of the wrappers that expand every episode image into its M transformed copies
 * (SLA, SLA+SD, DA, MT): option parsing, way checks, and one backbone pass over the expanded episode.
 */

/** Option every transformation wrapper takes: the transform set's registry name. */
export const transformOption = z.string().default('rotation');

/** Validate wrapper options with a zod schema; any problem is a UserError naming the wrapper and its options. */
export function parseWrapperOptions<S extends z.ZodType>(suffix: string, schema: S, options: MethodWrapperOptions, allowed: string): z.infer<S> {
  const parsed = schema.safeParse(options);
  if (!parsed.success) {
    throw new UserError(`invalid options for method wrapper "${suffix}": ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`, `allowed options: ${allowed}`);
  }
  return parsed.data;
}

/** UserError if the head cannot fit `way` classes (SLA asks for N·M). */
export function checkHeadWay(head: Learner, way: number, why: string): void {
  if (head.maxWay !== undefined && way > head.maxWay) {
    throw new UserError(
      `head "${head.id}" takes at most ${head.maxWay} classes, but ${why} needs ${way}`,
      'use a smaller way, a transform set with fewer transformations (e.g. --transform rotation2), or a head without this limit',
    );
  }
}

/** Resolve the transform set and check it against the image size before any compute. */
export function resolveTransformSet(name: string, imageSize: number): TransformSet {
  const set = getTransformSet(name);
  checkTransformInput(set, imageSize, imageSize);
  return set;
}

/** Embeddings of an expanded episode: support rows [nSupport·M, d], query rows [nQuery·M, d], both image-major. */
export interface ExpandedEmbeddings {
  /** support rows followed by query rows, [(nSupport + nQuery)·M, d]. */
  all: tf.Tensor2D;
  support: tf.Tensor2D;
  query: tf.Tensor2D;
}

export abstract class TransformedMethod implements EpisodicMethod {
  abstract readonly inferenceModes: readonly string[];
  constructor(
    readonly id: string,
    readonly backbone: Backbone,
    readonly head: Learner,
    readonly transformSet: TransformSet,
  ) {}

  /** M, the number of transformations including the identity. */
  get transformCount(): number {
    return this.transformSet.transforms.length;
  }

  abstract trainLoss(episode: EpisodeImages): tf.Scalar;
  abstract predict(episode: EpisodeImages): Record<string, tf.Tensor2D>;
  abstract describe(): Record<string, unknown>;

  /**
   * Expand support and query (support first; image-major, row b·M + j = t_j(x_b)) and fit the learner on the
   * expanded task with the given support labels and way: a head gets both embedded in one backbone call, so
   * batch norm sees one batch per episode as in the plain method; an adaptive learner adapts on the expanded
   * support images. Call inside a tidy scope; the caller owns the results.
   */
  protected fitExpanded(ep: EpisodeImages, supportLabels: Int32Array, way: number, phase: 'train' | 'eval', training: boolean): FittedTask {
    // Support and query expanded apart: one concat of the inputs and a split of the 4x larger output cost
    // more than a second kernel call.
    const supportImages = expandImages(this.transformSet, ep.supportImages);
    const queryImages = expandImages(this.transformSet, ep.queryImages);
    return fitTask(this.backbone, this.head, { supportImages, supportLabels, queryImages, way }, phase, training);
  }

  trainableVariables(): tf.Variable[] {
    return [...this.backbone.trainableVariables(), ...this.head.variables()];
  }
  stateVariables(): tf.Variable[] {
    return this.backbone.stateVariables();
  }
  protected describeTransforms(): Record<string, unknown> {
    return {
      head: this.head.id,
      backbone: this.backbone.id,
      transform: this.transformSet.name,
      transformCount: this.transformCount,
      transforms: this.transformSet.transforms.map((t) => t.name),
      inferenceModes: [...this.inferenceModes],
    };
  }
}
