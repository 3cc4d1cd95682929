import type * as tf from '@tensorflow/tfjs-core';
import type { z } from 'zod';

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
  readonly id: string;
  /** Class scores (logits) [nQuery, way]. Called inside tf.tidy / gradient tapes. */
  logits(episode: EmbeddedEpisode, phase: 'train' | 'eval'): tf.Tensor2D;
  /** The head's own trainable variables (may be empty). */
  variables(): tf.Variable[];
  /** Largest `way` this head can take (SLA multiplies way by the number of transformations). */
  readonly maxWay?: number;
  /**
   * Label smoothing the head's protocol trains with (MetaOptNet uses ε on the wrong classes as ε/(N−1)).
   * 0 or undefined: plain cross-entropy.
   */
  readonly labelSmoothing?: number;
}

/** What a plugin registers: a named, schema-validated head constructor. */
export interface HeadFactory<Config = unknown> {
  readonly id: string;
  readonly description: string;
  /** Validates and fills defaults for the head's options before any compute. */
  readonly configSchema: z.ZodType<Config>;
  create(config: Config): FewShotHead;
}
