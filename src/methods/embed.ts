import * as tf from '@tensorflow/tfjs-core';
import type { Backbone } from '../backbones/contract.ts';
import type { EmbeddedEpisode } from '../learners/contract.ts';
import type { EpisodeImages } from './contract.ts';

/**
 * Embed support and query in one backbone call, as ProtoNet's reference code does (one batch-norm batch
 * per episode), then split. Returned tensors are owned by the caller's tidy scope.
 */
export function embedImages(backbone: Backbone, support: tf.Tensor4D, query: tf.Tensor4D, training: boolean): { support: tf.Tensor2D; query: tf.Tensor2D } {
  const nSupport = support.shape[0];
  const all = backbone.apply(tf.concat([support, query], 0), training);
  const [s, q] = tf.split(all, [nSupport, query.shape[0]], 0);
  return { support: s as tf.Tensor2D, query: q as tf.Tensor2D };
}

export function embedEpisode(backbone: Backbone, ep: EpisodeImages, training: boolean): EmbeddedEpisode {
  const { support, query } = embedImages(backbone, ep.supportImages, ep.queryImages, training);
  return { support, query, supportLabels: ep.supportLabels, way: ep.way };
}
