import { promises as fs } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '../../src/builtin.ts';
import { checkpointKey } from '../../src/backbones/layers.ts';
import { accuracyOf } from '../../src/eval/evaluator.ts';
import { ResNet12 } from '../../src/backbones/resnet12.ts';
import { getLearner } from '../../src/learners/registry.ts';
import { buildMethod } from '../../src/methods/build.ts';
import { resolveMethodName } from '../../src/methods/registry.ts';
import type { EpisodeImages } from '../../src/episodes/images.ts';
import type { EpisodicMethod } from '../../src/methods/contract.ts';
import { disposeEpisode } from '../../src/episodes/images.ts';
import { Adam } from '../../src/train/optimizer.ts';
import { trainingStep } from '../../src/train/step.ts';
import { episodeImages, type EpisodeSpec } from './inputs.ts';
import { runPolicy, type PolicyRun, type StepPolicy } from './policy.ts';

export type BenchMethodName = 'protonet' | 'protonet-sla' | 'metaoptnet-svm' | 'metaoptnet-svm-sla' | 'metaoptnet-rr' | 'metaoptnet-rr-sla';
export type BenchBackbone = 'conv4' | 'resnet12';

/** A method + episode shape the bench times on both sides. */
export interface MethodSpec extends EpisodeSpec {
  method: BenchMethodName;
  /** Default conv4. */
  backbone?: BenchBackbone;
  /** The head's options (MetaOptNet: C or lambda, label smoothing), as an experiment's `headConfig`; the peer gets them too. */
  headConfig?: Record<string, unknown>;
}

export const LEARNING_RATE = 1e-3;

/**
 * The method as the toolkit builds it. ResNet-12 is built with dropout and DropBlock off (dropRate 0): their masks
 * are random, so with them on the two sides could not compute the same first loss; they are a few elementwise
 * ops per step on either side, the peer leaves them out too.
 */
export function buildBenchMethod(spec: MethodSpec, seed: number): EpisodicMethod {
  if ((spec.backbone ?? 'conv4') === 'conv4')
    return buildMethod({ name: spec.method, backbone: 'conv4', imageSize: spec.imageSize, way: spec.way, seed, headConfig: spec.headConfig });
  const { headId, wrapper } = resolveMethodName(spec.method);
  const factory = getLearner(headId);
  const head = factory.create(factory.configSchema.parse(spec.headConfig ?? {}));
  const backbone = new ResNet12({ imageSize: spec.imageSize, seed, dropRate: 0 });
  return wrapper.create({ backbone, head, way: spec.way, imageSize: spec.imageSize, seed, options: {} });
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
