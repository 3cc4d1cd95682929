import * as tf from '@tensorflow/tfjs-core';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { EpisodicMethod } from '../methods/contract.ts';
import type { TrainConfig } from './config.ts';
import { Adam, Sgd, type RestorableOptimizer } from './optimizer.ts';
import { learningRateAt } from './schedule.ts';
import { readCheckpoint, restoreVariables, saveCheckpoint } from './checkpoint.ts';
import { disposeEpisode, toEpisodeImages, type EpisodeIndices, type ImageSource } from './episode-images.ts';
import { evaluate, type EpisodeList } from '../eval/evaluator.ts';
import { trainingStep } from './step.ts';
import { NumericalError, UserError, withEpisodeIndex } from '../util/errors.ts';
import type { MeanCI } from '../eval/stats.ts';

export interface TrainProgress {
  episode: number;
  total: number;
  lr: number;
  /** Mean training loss since the last report. */
  loss?: number;
  validation?: { episode: number; mode: string; accuracy: MeanCI; best: boolean };
}

export interface TrainerInputs {
  method: EpisodicMethod;
  config: TrainConfig;
  /** Pixels for training episode `index` (a per-episode augmented view when the config augments). */
  trainSource(index: number): ImageSource;
  /** Episode `index` of the meta-training stream: a pure function of (seed, split, spec, index). */
  sampleTrainEpisode(index: number): EpisodeIndices;
  validation?: { source: ImageSource; list: EpisodeList };
  /** Holds `last/` (for resume), `best/` (model selection) and `train-log.jsonl`. */
  runDir: string;
  /** Recorded into every checkpoint (config, data fingerprints, ...). Must include a `configHash`. */
  meta: Record<string, unknown> & { configHash: string };
  /** Save `last/` every this many episodes (resume granularity). */
  checkpointEvery?: number;
  /** How often to report the running loss (episodes). */
  logEvery?: number;
  onProgress?(p: TrainProgress): void;
}

export interface TrainSummary {
  episodesTrained: number;
  resumedFrom: number;
  best?: { episode: number; mode: string; accuracy: MeanCI };
  wallSeconds: number;
  bestCheckpoint: string;
  lastCheckpoint: string;
}

function makeOptimizer(config: TrainConfig): RestorableOptimizer {
  const o = config.optimizer;
  return o.type === 'adam' ? new Adam(o.weightDecay) : new Sgd(o.momentum, o.nesterov, o.weightDecay);
}

/**
 * Episodic meta-training with periodic validation on fixed val episodes. The best checkpoint (by the
 * validation mode's mean accuracy) is kept in `best/`; `last/` allows resuming an interrupted run exactly,
 * because episode i of the stream depends only on i.
 */
export async function train(inputs: TrainerInputs): Promise<TrainSummary> {
  const { method, config, runDir } = inputs;
  const t0 = performance.now();
  const trainable = method.trainableVariables();
  const allVars = [...trainable, ...method.stateVariables()];
  const optimizer = makeOptimizer(config);
  const lastDir = path.join(runDir, 'last');
  const bestDir = path.join(runDir, 'best');
  const logPath = path.join(runDir, 'train-log.jsonl');
  await fs.mkdir(runDir, { recursive: true });

  let start = 0;
  let best: TrainSummary['best'];
  // Resume when a compatible `last/` exists.
  const resumable = await fs.stat(path.join(lastDir, 'checkpoint.json')).then(() => true, () => false);
  if (resumable) {
    const ckpt = await readCheckpoint(lastDir);
    if (ckpt.file.meta.configHash !== inputs.meta.configHash) {
      // Never overwrite another run's checkpoints: a different config under the same run directory is an error.
      throw new UserError(
        `${runDir} already holds a run with a different configuration (config hash ${String(ckpt.file.meta.configHash)}, this one ${inputs.meta.configHash})`,
        'give this run another --name, or delete that directory if you no longer need it',
      );
    }
    {
      restoreVariables(ckpt, allVars);
      if (ckpt.file.optimizer) {
        const slots = Object.fromEntries(Object.entries(ckpt.file.optimizer.slots).map(([k, es]) => [k, es.map((e) => ckpt.tensor(e))]));
        optimizer.restore(trainable, slots, ckpt.file.optimizer.stepCount);
        tf.dispose(Object.values(slots).flat());
      }
      start = Number(ckpt.file.meta.episode ?? 0);
      best = ckpt.file.meta.best as TrainSummary['best'];
    }
  }

  const save = async (dir: string, episode: number) =>
    saveCheckpoint(dir, {
      variables: allVars,
      optimizer: { type: optimizer.type, stepCount: optimizer.stepCount, slots: optimizer.state() },
      meta: { ...inputs.meta, episode, best },
    });
  const log = (entry: Record<string, unknown>) => fs.appendFile(logPath, JSON.stringify({ time: new Date().toISOString(), ...entry }) + '\n');

  const perStep = config.episodesPerStep;
  const logEvery = inputs.logEvery ?? 100;
  const ckptEvery = inputs.checkpointEvery ?? 500;
  const validateEvery = config.validation.every;
  const valMode = config.validation.mode ?? method.inferenceModes[0];
  if (inputs.validation && !method.inferenceModes.includes(valMode)) {
    throw new Error(`validation mode "${valMode}" is not one of ${method.inferenceModes.join(', ')}`);
  }
  let lossSum = tf.scalar(0);
  let lossCount = 0;

  const validate = async (episode: number) => {
    if (!inputs.validation) return;
    const res = evaluate(method, inputs.validation.source, inputs.validation.list, { limit: config.validation.episodes });
    const acc = res.summary[valMode];
    const isBest = !best || acc.mean > best.accuracy.mean;
    if (isBest) {
      best = { episode, mode: valMode, accuracy: acc };
      await save(bestDir, episode);
    }
    await log({ event: 'validation', episode, mode: valMode, accuracy: acc, all: res.summary, best: isBest });
    inputs.onProgress?.({ episode, total: config.episodes, lr: learningRateAt(config, episode), validation: { episode, mode: valMode, accuracy: acc, best: isBest } });
  };

  for (let episode = start; episode < config.episodes; episode += perStep) {
    const lr = learningRateAt(config, episode);
    const used = Math.min(perStep, config.episodes - episode);
    // Build the step's episodes; episode i of the stream depends only on i, so resuming replays nothing.
    const batch = Array.from({ length: used }, (_, b) => toEpisodeImages(inputs.trainSource(episode + b), inputs.sampleTrainEpisode(episode + b), config.train));
    try {
      const stepLoss = withEpisodeIndex(episode, 'training episode', () => trainingStep(method, trainable, optimizer, batch, lr));
      const newSum = tf.add(lossSum, stepLoss) as tf.Scalar;
      tf.dispose([lossSum, stepLoss]);
      lossSum = newSum;
      lossCount += used;
    } finally {
      batch.forEach(disposeEpisode);
    }

    const done = episode + used;
    const crossed = (every: number) => every > 0 && Math.floor(done / every) > Math.floor(episode / every);
    if (crossed(logEvery) || done === config.episodes) {
      const loss = (await lossSum.data())[0] / lossCount;
      if (!Number.isFinite(loss)) {
        throw new NumericalError(`training loss became ${loss}; stopped (last good checkpoint kept in ${lastDir})`, done - 1);
      }
      lossSum.dispose();
      lossSum = tf.scalar(0);
      lossCount = 0;
      await log({ event: 'train', episode: done, lr, loss });
      inputs.onProgress?.({ episode: done, total: config.episodes, lr, loss });
    }
    if (crossed(validateEvery) || (done === config.episodes && inputs.validation)) await validate(done);
    if (crossed(ckptEvery) || done === config.episodes) await save(lastDir, done);
  }
  lossSum.dispose();
  // A run with no validation keeps its final weights as "best".
  if (!inputs.validation) await save(bestDir, config.episodes);
  return {
    episodesTrained: config.episodes - start,
    resumedFrom: start,
    best,
    wallSeconds: (performance.now() - t0) / 1000,
    bestCheckpoint: bestDir,
    lastCheckpoint: lastDir,
  };
}
