import type * as tf from '@tensorflow/tfjs-core';

/**
 * A feature extractor: images [B, H, W, 3] (normalised floats, NHWC) to embeddings [B, d].
 * Parameters are tf.Variables owned by the backbone; `stateVariables` are non-trainable state that
 * must still be checkpointed (batch-norm running statistics).
 */
export interface Backbone {
  readonly id: string;
  /** `training` selects batch statistics + running-stat updates (true) or running stats (false). */
  apply(images: tf.Tensor4D, training: boolean): tf.Tensor2D;
  trainableVariables(): tf.Variable[];
  stateVariables(): tf.Variable[];
  /** Embedding size for square inputs of this side. */
  embeddingDim(imageSize: number): number;
}

export interface BackboneFactory {
  readonly id: string;
  readonly description: string;
  create(options: { imageSize: number; seed: number; variant?: string }): Backbone;
}
