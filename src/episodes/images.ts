import * as tf from '@tensorflow/tfjs-core';
import type { EpisodeSpec } from './spec.ts';

/**
 * Item indices of one episode, label-major (support[label·shot + k], query[label·query + k]), with the spec they
 * were drawn for: an episode says its own way, shot and query, so nothing downstream is handed the spec again.
 */
export interface EpisodeIndices {
  spec: EpisodeSpec;
  support: Int32Array;
  query: Int32Array;
}

/** Where pixels come from: normalised NHWC floats for a list of item indices of one split. */
export interface ImageSource {
  readonly imageSize: number;
  gather(items: ArrayLike<number>): Float32Array;
}

/**
 * One episode as images: the unit methods train and predict on. Learners see it without the query labels
 * (`ImageTask`, learners/contract.ts).
 */
export interface EpisodeImages {
  /** [nSupport, S, S, 3], normalised. */
  supportImages: tf.Tensor4D;
  supportLabels: Int32Array;
  /** [nQuery, S, S, 3], normalised. */
  queryImages: tf.Tensor4D;
  queryLabels: Int32Array;
  way: number;
}

/** Labels of a label-major list: `perClass` items of label 0, then label 1, ... */
export function labelMajorLabels(way: number, perClass: number): Int32Array {
  const labels = new Int32Array(way * perClass);
  for (let i = 0; i < labels.length; i++) labels[i] = Math.floor(i / perClass);
  return labels;
}

/** Materialise an episode as tensors (caller disposes with `disposeEpisode`). */
export function toEpisodeImages(source: ImageSource, idx: EpisodeIndices): EpisodeImages {
  const s = source.imageSize;
  const shape = idx.spec;
  if (idx.support.length !== shape.way * shape.shot || idx.query.length !== shape.way * shape.query) {
    throw new Error(`episode has ${idx.support.length}/${idx.query.length} support/query items, expected ${shape.way * shape.shot}/${shape.way * shape.query}`);
  }
  return {
    supportImages: tf.tensor4d(source.gather(idx.support), [idx.support.length, s, s, 3]),
    supportLabels: labelMajorLabels(shape.way, shape.shot),
    queryImages: tf.tensor4d(source.gather(idx.query), [idx.query.length, s, s, 3]),
    queryLabels: labelMajorLabels(shape.way, shape.query),
    way: shape.way,
  };
}

/** Frees an episode's image tensors. */
export function disposeEpisode(ep: Pick<EpisodeImages, 'supportImages' | 'queryImages'>): void {
  ep.supportImages.dispose();
  ep.queryImages.dispose();
}
