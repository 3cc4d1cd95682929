import type * as tf from '@tensorflow/tfjs-core';
import type { z } from 'zod';
import type { Backbone } from '../backbones/contract.ts';
import type { EpisodeImages } from '../episodes/images.ts';

/** One episode after the backbone: labelled support embeddings and unlabelled query embeddings. */
export interface EmbeddedEpisode {
  /** [nSupport, d] */
  support: tf.Tensor2D;
  /** Support labels in [0, way), length nSupport. */
  supportLabels: Int32Array;
  /** [nQuery, d] */
  query: tf.Tensor2D;
  way: number;
}

/**
 * A few-shot learner's head: fits itself to the support embeddings and scores the queries.
 * It must be differentiable with respect to `support` and `query`, because meta-training
 * backpropagates the query loss through it into the backbone.
 * Heads are pure functions of the episode plus their own (few) trainable variables, e.g. a logit scale.
 */
export interface FewShotHead {
  /** 'head' or absent: a head on fixed embeddings (AdaptiveLearner has kind 'adaptive'). */
  readonly kind?: 'head';
  readonly id: string;
  /** Class scores (logits) [nQuery, way]. Called inside tf.tidy / gradient tapes. */
  logits(episode: EmbeddedEpisode, phase: 'train' | 'eval'): tf.Tensor2D;
  /** The head's own trainable variables (may be empty). */
  variables(): tf.Variable[];
  /**
   * Optional: called once by the method wrapper before any compute with the largest way it will ask for (N·M
   * under SLA) and the embedding size, for heads whose parameters depend on them (a relation module).
   */
  prepare?(setup: LearnerSetup): void;
  /** Largest `way` this head can take (SLA multiplies way by the number of transformations). */
  readonly maxWay?: number;
  /**
   * Label smoothing the head's protocol trains with (MetaOptNet uses ε on the wrong classes as ε/(N−1)).
   * 0 or undefined: plain cross-entropy.
   */
  readonly labelSmoothing?: number;
}

/** What a learner's `prepare` is told before any compute. */
export interface LearnerSetup {
  /** Largest way the method will ask for (N·M under SLA). */
  way: number;
  backbone: Backbone;
  /** The backbone's embedding size at the run's image size. */
  embeddingDim: number;
  seed: number;
}

/**
 * One episode as images, before the backbone: what an adaptive learner adapts on and scores. The episode
 * (episodes/images.ts) without its query labels, which a learner never sees.
 */
export type ImageTask = Omit<EpisodeImages, 'queryLabels'>;

/** What an adaptive learner returns for one task. */
export interface AdaptedTask {
  /** Query logits [nQuery, way] of the adapted model. */
  logits: tf.Tensor2D;
  /**
   * Embeddings [nSupport + nQuery, d] (support rows first) that the logits were computed from, under the
   * adapted weights where the learner adapts the backbone. Wrappers with an auxiliary head on the
   * embedding (MT) train on them.
   */
  embeddings: tf.Tensor2D;
}

/**
 * An optimisation-based meta-learner (MAML, ANIL, ...): per task it takes gradient steps on the support set
 * with fast weights (the backbone's functional `apply(images, training, params)` and/or its own head
 * parameters) and scores the queries with the adapted model. The method's outer loss on those query logits is
 * differentiated with respect to the initial (meta-) parameters: the backbone's variables and `variables()`.
 * The method wrappers (SLA, DA, MT) hand it the expanded task (for SLA: N·M joint classes), exactly as they
 * hand embeddings to a head, so every wrapper applies to it.
 */
export interface AdaptiveLearner {
  readonly kind: 'adaptive';
  readonly id: string;
  /**
   * Called once by the method wrapper before any compute, with the largest `way` it will ask for (N·M under
   * SLA), the backbone and its embedding size: create per-class parameters here.
   */
  prepare(setup: LearnerSetup): void;
  /**
   * Adapt to the support set and score the queries. Called inside tf.tidy and, in training, inside the outer
   * gradient tape. `training` is the batch-norm mode to run the backbone in.
   */
  adapt(task: ImageTask, context: { backbone: Backbone; phase: 'train' | 'eval'; training: boolean }): AdaptedTask;
  /** The learner's own meta-parameters (e.g. the head's initial weights); not the backbone's. */
  variables(): tf.Variable[];
  readonly maxWay?: number;
  readonly labelSmoothing?: number;
}

/** Any learner a method wraps: a head on embeddings, or an adaptive learner on images. */
export type Learner = FewShotHead | AdaptiveLearner;

/** Whether a learner adapts by inner-loop gradient steps (MAML-like) rather than a head on embeddings. */
export function isAdaptive(learner: Learner): learner is AdaptiveLearner {
  return learner.kind === 'adaptive';
}

/** What a plugin registers: a named, schema-validated learner constructor. */
export interface LearnerFactory<Config = unknown, L extends Learner = Learner> {
  readonly id: string;
  readonly description: string;
  /** Validates and fills defaults for the learner's options before any compute. */
  readonly configSchema: z.ZodType<Config>;
  create(config: Config): L;
  /**
   * The fewshot plugin API version this factory was written against (see FEWSHOT_API_VERSION); registration
   * refuses a different major version. Absent: not checked.
   */
  readonly apiVersion?: string;
}

/** A head factory: a learner factory whose learners are heads on embeddings. */
export type HeadFactory<Config = unknown> = LearnerFactory<Config, FewShotHead>;
/** An adaptive-learner factory (MAML, ANIL, ...). */
export type AdaptiveLearnerFactory<Config = unknown> = LearnerFactory<Config, AdaptiveLearner>;
