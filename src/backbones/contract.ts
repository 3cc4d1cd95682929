import type * as tf from '@tensorflow/tfjs-core';

/**
 * Fast weights for a functional forward pass: a tensor to use in place of each listed trainable variable.
 * Optimisation-based meta-learners (MAML) adapt copies of the parameters on the support set and run the
 * backbone with them; variables not in the map keep their own values.
 */
export type FastWeights = ReadonlyMap<tf.Variable, tf.Tensor>;

/**
 * A feature extractor: images [B, H, W, 3] (normalised floats, NHWC) to embeddings [B, d].
 * Parameters are tf.Variables owned by the backbone; `stateVariables` are non-trainable state that
 * must still be checkpointed (batch-norm running statistics).
 */
export interface Backbone {
  readonly id: string;
  /**
   * `training` selects batch statistics + running-stat updates (true) or running stats (false).
   * `params` replaces trainable variables by tensors (fast weights), differentiably: gradients flow into
   * those tensors, not into the variables they replace.
   */
  apply(images: tf.Tensor4D, training: boolean, params?: FastWeights): tf.Tensor2D;
  trainableVariables(): tf.Variable[];
  stateVariables(): tf.Variable[];
  /** Embedding size for square inputs of this side. */
  embeddingDim(imageSize: number): number;
}

/** A registered backbone: its id, description and `create` for an image size and seed. */
export interface BackboneFactory {
  readonly id: string;
  readonly description: string;
  create(options: { imageSize: number; seed: number; variant?: string }): Backbone;
}
