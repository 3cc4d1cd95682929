import { promises as fs } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '../../src/builtin.ts';
import { checkpointKey } from '../../src/backbones/layers.ts';
import { accuracyOf } from '../../src/eval/evaluator.ts';
import { buildMethod } from '../../src/methods/build.ts';
import type { EpisodeImages, EpisodicMethod } from '../../src/methods/contract.ts';
import { disposeEpisode } from '../../src/train/episode-images.ts';
import { Adam } from '../../src/train/optimizer.ts';
import { trainingStep } from '../../src/train/step.ts';
import { episodeImages, type EpisodeSpec } from './inputs.ts';
import { runPolicy, type PolicyRun, type StepPolicy } from './policy.ts';

export type BenchMethodName = 'protonet' | 'protonet-sla';

/** A method + episode shape the bench times on both sides. */
export interface MethodSpec extends EpisodeSpec {
  method: BenchMethodName;
}

export const LEARNING_RATE = 1e-3;

export function buildBenchMethod(spec: MethodSpec, seed: number): EpisodicMethod {
  return buildMethod({ name: spec.method, backbone: 'conv4', imageSize: spec.imageSize, way: spec.way, seed });
}

export interface WeightEntry {
  /** Checkpoint key, e.g. `conv4/block0/conv/filter` (HWIO). */
  name: string;
  shape: number[];
}

/** Write variables back to back as float32 LE with their names and shapes, for the peer to load the same weights. */
export async function exportWeights(variables: readonly tf.Variable[], file: string): Promise<WeightEntry[]> {
  const handle = await fs.open(file, 'w');
  try {
    for (const v of variables) {
      const data = v.dataSync() as Float32Array;
      await handle.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  } finally {
    await handle.close();
  }
  return variables.map((v) => ({ name: checkpointKey(v), shape: [...v.shape] }));
}

export interface OursRun<V> extends PolicyRun<V> {
  /**
   * Live tensors after the first step and after the last one: equal means no per-step leak. (The first step
   * creates long-lived state, e.g. Adam's slots, so counting from before it would flag that as a leak.)
   */
  numTensorsBefore: number;
  numTensorsAfter: number;
}

/**
 * The trainer's step (src/train/step.ts: one episode, Adam lr 1e-3) on pre-built episode tensors, cycling through
 * them; the loss is read back every step so each timed step includes all its work.
 */
export function timeOursTrain(method: EpisodicMethod, spec: MethodSpec, episodes: readonly Float32Array[], policy: StepPolicy): OursRun<number> {
  const trainable = method.trainableVariables();
  const optimizer = new Adam();
  const images = episodes.map((data) => episodeImages(spec, data));
  let numTensorsBefore = -1;
  try {
    const run = runPolicy((i) => {
      const loss = trainingStep(method, trainable, optimizer, [images[i % images.length]], LEARNING_RATE);
      const value = loss.dataSync()[0];
      loss.dispose();
      if (i === 0) numTensorsBefore = tf.memory().numTensors;
      return value;
    }, policy);
    return { ...run, numTensorsBefore, numTensorsAfter: tf.memory().numTensors };
  } finally {
    images.forEach(disposeEpisode);
  }
}

/** Evaluation as src/eval/evaluator.ts does it: predict (BN eval mode) under tidy, read back, argmax accuracy per mode. */
export function timeOursEval(
  method: EpisodicMethod,
  spec: MethodSpec,
  episodes: readonly Float32Array[],
  policy: StepPolicy,
): OursRun<Record<string, number>> & { firstScores: Record<string, number[][]> } {
  const images = episodes.map((data) => episodeImages(spec, data));
  let numTensorsBefore = -1;
  const firstScores: Record<string, number[][]> = {};
  try {
    const run = runPolicy((i) => {
      const ep: EpisodeImages = images[i % images.length];
      const scores = tf.tidy(() => method.predict(ep));
      const acc: Record<string, number> = {};
      for (const [mode, s] of Object.entries(scores)) {
        const values = s.dataSync() as Float32Array;
        acc[mode] = accuracyOf(values, s.shape[1], ep.queryLabels);
        if (i === 0) firstScores[mode] = Array.from({ length: s.shape[0] }, (_, r) => Array.from(values.subarray(r * s.shape[1], (r + 1) * s.shape[1])));
      }
      tf.dispose(Object.values(scores));
      if (i === 0) numTensorsBefore = tf.memory().numTensors;
      return acc;
    }, policy);
    return { ...run, firstScores, numTensorsBefore, numTensorsAfter: tf.memory().numTensors };
  } finally {
    images.forEach(disposeEpisode);
  }
}
