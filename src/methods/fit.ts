import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '../backbones/contract.ts';
import { isAdaptive, type ImageTask, type Learner } from '../learners/contract.ts';

/*
 * One place where a method turns an image task into query logits, for either kind of learner, so every wrapper
 * (plain, SLA, DA, MT) is written once for both:
 * - a head: support and query embedded in one backbone call (one batch-norm batch per episode, as ProtoNet's
 *   reference code does), then the head fits the support embeddings and scores the queries;
 * - an adaptive learner: it runs its own inner loop on the images with fast weights and returns the logits
 *   and the embeddings it computed them from.
 */

/** A learner fitted to one episode: query logits plus what the method needs of the fit. */
export interface FittedTask {
  /** [nQuery, way] */
  logits: tf.Tensor2D;
  /** Support rows then query rows, [nSupport + nQuery, d]. */
  all: tf.Tensor2D;
  support: tf.Tensor2D;
  query: tf.Tensor2D;
}

/** Fit `learner` to the task's support and score its queries. Call inside tf.tidy; the caller owns the results. */
export function fitTask(backbone: Backbone, learner: Learner, task: ImageTask, phase: 'train' | 'eval', training: boolean): FittedTask {
  const nSupport = task.supportImages.shape[0];
  const nQuery = task.queryImages.shape[0];
  if (isAdaptive(learner)) {
    const { logits, embeddings } = learner.adapt(task, { backbone, phase, training });
    const [support, query] = tf.split(embeddings, [nSupport, nQuery], 0) as tf.Tensor2D[];
    return { logits, all: embeddings, support, query };
  }
  const all = backbone.apply(tf.concat([task.supportImages, task.queryImages], 0), training);
  const [support, query] = tf.split(all, [nSupport, nQuery], 0) as tf.Tensor2D[];
  const logits = learner.logits({ support, query, supportLabels: task.supportLabels, way: task.way }, phase);
  return { logits, all, support, query };
}

/** Let an adaptive learner create its per-class parameters for the largest way a wrapper will ask for. */
export function prepareLearner(learner: Learner, setup: { way: number; backbone: Backbone; imageSize: number; seed: number }): void {
  if (learner.prepare)
    learner.prepare({ way: setup.way, backbone: setup.backbone, embeddingDim: setup.backbone.embeddingDim(setup.imageSize), seed: setup.seed });
}
