import * as tf from '@tensorflow/tfjs-core';
import type { EpisodeImages } from '../episodes/images.ts';
import type { EpisodicMethod } from '../methods/contract.ts';
import type { Optimizer } from './optimizer.ts';

/**
 * One optimizer step over a batch of episodes: gradients of each episode's loss (computed one episode at a
 * time to bound memory), averaged, then applied. Returns the summed loss as a tensor, so the caller can read
 * it back only when it logs (a readback per step would stall pipelined backends).
 */
export function trainingStep(
  method: Pick<EpisodicMethod, 'trainLoss'>,
  trainable: tf.Variable[],
  optimizer: Optimizer,
  episodes: EpisodeImages[],
  lr: number,
): tf.Scalar {
  let gradSum: tf.Tensor[] | undefined;
  let lossSum: tf.Scalar | undefined;
  for (const ep of episodes) {
    const { value, grads } = tf.variableGrads(() => method.trainLoss(ep), trainable);
    const g = trainable.map((v) => grads[v.name]);
    if (!gradSum) gradSum = g;
    else {
      const next = gradSum.map((s, i) => tf.add(s, g[i]));
      tf.dispose([...gradSum, ...g]);
      gradSum = next;
    }
    if (!lossSum) lossSum = value;
    else {
      const next = tf.add(lossSum, value) as tf.Scalar;
      tf.dispose([lossSum, value]);
      lossSum = next;
    }
  }
  if (!gradSum || !lossSum) throw new Error('trainingStep needs at least one episode');
  const n = episodes.length;
  const grads = n > 1 ? tf.tidy(() => gradSum!.map((g) => tf.div(g, n))) : gradSum;
  optimizer.step(trainable, grads, lr);
  tf.dispose(grads);
  if (grads !== gradSum) tf.dispose(gradSum);
  return lossSum;
}
