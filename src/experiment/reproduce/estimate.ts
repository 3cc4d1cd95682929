import * as tf from '@tensorflow/tfjs-core';
import { buildMethod } from '../../methods/build.ts';
import { disposeEpisode, toEpisodeImages, type ImageSource } from '../../episodes/images.ts';
import { specTag } from '../../episodes/spec.ts';
import { Adam } from '../../train/optimizer.ts';
import { trainingStep } from '../../train/step.ts';
import type { TrainConfig } from '../../train/config.ts';
import { mulberry32 } from '../../util/prng.ts';

/**
 * Measured (not guessed) cost of a run for `reproduce --dry-run`: a few real training steps and evaluation
 * episodes of the run's method, backbone, image size and episode shapes on random pixels (the cost does not
 * depend on pixel values), on the backend the run would use. Then
 * time ≈ episodes · train-step time + (validation checks · val episodes + test episodes) · eval time.
 */
export interface CostProbe {
  trainMsPerEpisode: number;
  evalMsPerEpisode: number;
}

/** An episode shape as the cost sees it: `5w15s6q` (way, shot, queries per class). */
export const shapeLabel = specTag;

/**
 * What a run's cost depends on, for training and for evaluation apart: method, backbone, image size, head and
 * wrapper settings, and the training (resp. test) episode shape. Runs with equal keys (another dataset, another
 * seed, another training shot for the evaluation cost) are measured once and get one estimate, so timing noise on
 * a shared machine cannot make equal shapes look different. Runs of the same network still differ when their
 * episode shapes do: MetaOptNet-SVM trains on 15-shot episodes for FC100 but 5-shot ones for CIFAR-FS (three
 * times the support images, and an SVM dual over them), so its FC100 training steps cost several times more.
 */
export function costKeys(config: TrainConfig): { train: string; eval: string } {
  const net = [config.method, config.backbone, config.imageSize, config.headConfig, config.wrapperOptions];
  return { train: JSON.stringify([...net, shapeLabel(config.train)]), eval: JSON.stringify([...net, shapeLabel(config.test)]) };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function randomSource(imageSize: number, seed: number): ImageSource {
  const rand = mulberry32(seed);
  return {
    imageSize,
    gather(items) {
      const out = new Float32Array(items.length * imageSize * imageSize * 3);
      for (let i = 0; i < out.length; i++) out[i] = rand() * 2 - 1;
      return out;
    },
  };
}

function indices(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

/**
 * Time `steps` training steps and evaluation episodes (after one warm-up of each) and take the median of each, so a
 * single step slowed by another process on a shared machine does not set the estimate.
 */
export function probeCost(config: TrainConfig, opts: { steps?: number } = {}): CostProbe {
  const steps = opts.steps ?? 3;
  const method = buildMethod({
    name: config.method,
    backbone: config.backbone,
    imageSize: config.imageSize,
    way: Math.max(config.train.way, config.test.way),
    seed: config.seed,
    headConfig: config.headConfig,
    wrapperOptions: config.wrapperOptions,
  });
  const source = randomSource(config.imageSize, 1);
  const trainable = method.trainableVariables();
  const optimizer = new Adam(0);
  const trainIdx = { spec: config.train, support: indices(config.train.way * config.train.shot), query: indices(config.train.way * config.train.query) };
  const testIdx = { spec: config.test, support: indices(config.test.way * config.test.shot), query: indices(config.test.way * config.test.query) };
  const timeTrain = () => {
    const ep = toEpisodeImages(source, trainIdx);
    const t0 = performance.now();
    try {
      const loss = trainingStep(method, trainable, optimizer, [ep], 1e-6);
      loss.dataSync();
      loss.dispose();
    } finally {
      disposeEpisode(ep);
    }
    return performance.now() - t0;
  };
  const timeEval = () => {
    const ep = toEpisodeImages(source, testIdx);
    const t0 = performance.now();
    try {
      const scores = tf.tidy(() => method.predict(ep));
      for (const s of Object.values(scores)) s.dataSync();
      tf.dispose(Object.values(scores));
    } finally {
      disposeEpisode(ep);
    }
    return performance.now() - t0;
  };
  try {
    timeTrain(); // warm-up: kernel compilation and first allocations are not steady-state cost
    timeEval();
    const train: number[] = [];
    const ev: number[] = [];
    for (let i = 0; i < steps; i++) {
      train.push(timeTrain());
      ev.push(timeEval());
    }
    return { trainMsPerEpisode: median(train), evalMsPerEpisode: median(ev) };
  } finally {
    tf.disposeVariables(); // the method's variables and the optimizer's slots
  }
}

/**
 * Seconds a run of this config would take, from a probe: training, validation checks, and the test episodes;
 * for a run resuming at episode `from`, only what is left after it.
 */
export function estimateSeconds(config: TrainConfig, probe: CostProbe, testEpisodes: number, from = 0): number {
  const every = config.validation.every;
  const checks = every > 0 ? Math.floor(config.episodes / every) - Math.floor(from / every) : 1;
  const evalEpisodes = checks * config.validation.episodes + testEpisodes;
  return ((config.episodes - from) * probe.trainMsPerEpisode + evalEpisodes * probe.evalMsPerEpisode) / 1000;
}
