import type * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '../backbones/contract.ts';
import type { Learner } from '../learners/contract.ts';
import type { EpisodeImages } from '../episodes/images.ts';

/**
 * A training objective + inference rule around a backbone and a head: the plain episodic method,
 * or a wrapper such as SLA (joint class × transformation labels), DA or MT.
 */
export interface EpisodicMethod {
  /** e.g. `protonet`, `protonet-sla`. */
  readonly id: string;
  readonly backbone: Backbone;
  /** The learner the method wraps: a head on embeddings or an adaptive learner (MAML, ANIL). */
  readonly head: Learner;
  /** Inference modes this method reports, first = the headline one (e.g. ['ag', 'si'] for SLA). */
  readonly inferenceModes: readonly string[];
  /** Scalar training loss of one episode; called inside a gradient tape. */
  trainLoss(episode: EpisodeImages): tf.Scalar;
  /** Query scores [nQuery, way] per inference mode; called without gradients, backbone in eval mode. */
  predict(episode: EpisodeImages): Record<string, tf.Tensor2D>;
  /** All trainable variables: backbone, head and any extra heads the method adds. */
  trainableVariables(): tf.Variable[];
  /** Non-trainable state to checkpoint (batch-norm running stats). */
  stateVariables(): tf.Variable[];
  /** Settings to record in results (transform set, loss mode, ...). */
  describe(): Record<string, unknown>;
}

/** A wrapper's options, as given in the config (validated by the wrapper). */
export interface MethodWrapperOptions {
  [key: string]: unknown;
}

/**
 * A wrapper turns a head into a method, e.g. suffix `sla` makes `protonet-sla` from `protonet`.
 * The plain method is the wrapper with an empty suffix.
 */
export interface MethodWrapper {
  /** Method-name suffix after `<head>-`; '' for the plain method. */
  readonly suffix: string;
  readonly description: string;
  /** Throws a UserError before any compute if the head cannot take this wrapper (e.g. maxWay too small). */
  create(args: {
    backbone: Backbone;
    head: Learner;
    /** Largest N the method will be asked for (train or test way). */
    way: number;
    imageSize: number;
    seed: number;
    options: MethodWrapperOptions;
  }): EpisodicMethod;
}
