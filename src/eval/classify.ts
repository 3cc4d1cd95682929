import * as tf from '@tensorflow/tfjs-core';
import { buildMethod } from '../methods/build.ts';
import type { EpisodicMethod, MethodWrapperOptions } from '../methods/contract.ts';

/**
 * Few-shot classification of given images with a trained method: the one inference path that `fewshot
 * predict` (experiment/predict.ts, images from files) and the browser page (src/browser/, images from the
 * user's photos) both run. Pure tfjs, no Node built-ins, so it bundles for the browser unchanged.
 */

/** What rebuilds the method a checkpoint was trained as: its recorded config, or an export's manifest. */
export interface MethodSpec {
  /** e.g. `protonet-sla`. */
  method: string;
  backbone: string;
  imageSize: number;
  seed: number;
  /** Largest way the checkpoint was trained or tested with (train.way, test.way). */
  trainedWay: number;
  headConfig?: Record<string, unknown>;
  wrapperOptions?: MethodWrapperOptions;
}

/** The method for `way` support classes: built as trained, sized for the larger of the trained way and `way`. */
export function buildMethodForClasses(spec: MethodSpec, way: number): EpisodicMethod {
  return buildMethod({
    name: spec.method,
    backbone: spec.backbone,
    imageSize: spec.imageSize,
    way: Math.max(spec.trainedWay, way),
    seed: spec.seed,
    headConfig: spec.headConfig,
    wrapperOptions: spec.wrapperOptions,
  });
}

export interface ClassifyInput {
  /** Normalised float32 NHWC support images [nSupport, S, S, 3]. */
  supportImages: Float32Array;
  /** Class index (0..way-1) of each support image. */
  supportLabels: Int32Array;
  /** Normalised float32 NHWC query images [nQuery, S, S, 3]. */
  queryImages: Float32Array;
  imageSize: number;
  way: number;
  /** One of `method.inferenceModes`. */
  mode: string;
}

/** Queries scored per call: the backbone runs in eval mode, so a query's scores do not depend on its batch. */
export const QUERY_BATCH = 64;

/**
 * Fit the method on the support and score every query: softmax probabilities of the chosen mode's scores,
 * row-major [nQuery × way]. The method's variables must already hold the trained weights.
 */
export async function classifyQueries(method: EpisodicMethod, input: ClassifyInput): Promise<Float32Array> {
  const S = input.imageSize;
  const per = S * S * 3;
  const nSupport = input.supportLabels.length;
  const nQuery = input.queryImages.length / per;
  if (input.supportImages.length !== nSupport * per)
    throw new RangeError(`support: ${input.supportImages.length} values for ${nSupport} images of ${S}x${S}x3`);
  if (!Number.isInteger(nQuery)) throw new RangeError(`query: ${input.queryImages.length} values is not a whole number of ${S}x${S}x3 images`);
  if (!method.inferenceModes.includes(input.mode)) throw new RangeError(`${method.id} has no inference mode "${input.mode}"`);
  const out = new Float32Array(nQuery * input.way);
  for (let from = 0; from < nQuery; from += QUERY_BATCH) {
    const n = Math.min(QUERY_BATCH, nQuery - from);
    const probs = tf.tidy(() => {
      const scores = method.predict({
        supportImages: tf.tensor4d(input.supportImages, [nSupport, S, S, 3]),
        supportLabels: input.supportLabels,
        queryImages: tf.tensor4d(input.queryImages.subarray(from * per, (from + n) * per), [n, S, S, 3]),
        // Unknown: the query is what is being classified. Methods use query labels only for losses.
        queryLabels: new Int32Array(n),
        way: input.way,
      });
      return tf.softmax(scores[input.mode]);
    });
    const p = (await probs.data()) as Float32Array;
    probs.dispose();
    out.set(p, from * input.way);
  }
  return out;
}

/** Index of the largest value (the first on ties). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let c = 1; c < row.length; c++) if (row[c] > row[best]) best = c;
  return best;
}
