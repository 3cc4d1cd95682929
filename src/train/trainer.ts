import * as tf from '@tensorflow/tfjs-core';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { EpisodicMethod } from '../methods/contract.ts';
import type { TrainConfig } from './config.ts';
import { Adam, Sgd, type RestorableOptimizer } from './optimizer.ts';
import { learningRateAt } from './schedule.ts';
import { readCheckpoint, restoreVariables, saveCheckpoint } from './checkpoint.ts';
import { disposeEpisode, toEpisodeImages, type EpisodeImages, type EpisodeIndices, type ImageSource } from '../episodes/images.ts';
import { evaluate, type EpisodeList } from '../eval/evaluator.ts';
import { trainingStep } from './step.ts';
import { NumericalError, UserError, withEpisodeIndex } from '../util/errors.ts';
import type { MeanCI } from '../eval/stats.ts';
import { recoverDir, writeFileAtomic } from '../util/atomic.ts';
import { readTrainLogWall } from './train-log.ts';
import { acquireRunLock } from '../util/lock.ts';
import { crashPoint } from '../util/fault.ts';
import { withWritePath } from '../util/fs-errors.ts';
import { CHECKPOINT_AND_STOP, receivedStopSignal, stopRequested } from '../util/signal.ts';

/** A progress report of `train`: the episode reached and the latest loss or validation. */
export interface TrainProgress {
  episode: number;
  total: number;
  /** The episode this process started training from (0, or a resumed run's checkpoint). */
  from: number;
  lr: number;
  /** Mean training loss since the last report. */
  loss?: number;
  /** A validation just done; `seconds`: its wall time, checkpoint included. */
  validation?: { episode: number; mode: string; accuracy: MeanCI; best: boolean; seconds: number };
}

/** How many validations a run with validation data still does after `episode` (the rule of `train`'s loop). */
export function validationsLeft(config: Pick<TrainerConfig, 'episodes' | 'validation'>, episode: number): number {
  const every = config.validation.every;
  if (episode >= config.episodes) return 0;
  if (every <= 0) return 1;
  return Math.floor(config.episodes / every) - Math.floor(episode / every) + (config.episodes % every ? 1 : 0);
}

/** What the trainer needs of a method: the episodic methods, and the classifiers (methods/classifier.ts) too. */
export type TrainableMethod = Pick<EpisodicMethod, 'inferenceModes' | 'trainLoss' | 'predict' | 'trainableVariables' | 'stateVariables'>;

/** What the trainer reads of a config: its length, step, optimizer, schedule and validation cadence. */
export type TrainerConfig = Pick<TrainConfig, 'episodes' | 'episodesPerStep' | 'optimizer' | 'lrSchedule' | 'validation'>;

/** Everything `train` needs: the method, its config, episode sources, validation episodes and the run folder. */
export interface TrainerInputs {
  method: TrainableMethod;
  config: TrainerConfig;
  /** Pixels for training episode `index` (a per-episode augmented view when the config augments). */
  trainSource?(index: number): ImageSource;
  /** Episode `index` of the meta-training stream: a pure function of (seed, split, spec, index). */
  sampleTrainEpisode?(index: number): EpisodeIndices;
  /**
   * Instead of trainSource + sampleTrainEpisode: the images of step `index` directly (classification's mini-batch,
   * its labels the class indices): a pure function of (seed, index) like the episode stream, for exact resume.
   */
  makeTrainBatch?(index: number): EpisodeImages;
  validation?: { source: ImageSource; list: EpisodeList };
  /** Holds `last/` (for resume), `best/` (model selection) and `train-log.jsonl`. */
  runDir: string;
  /** Recorded into every checkpoint (config, data fingerprints, ...). Must include a `configHash`. */
  meta: Record<string, unknown> & { configHash: string };
  /** Save `last/` every this many episodes (resume granularity; default: at every validation, at most every 500). */
  checkpointEvery?: number;
  /** How often to report the running loss (episodes). */
  logEvery?: number;
  onProgress?(p: TrainProgress): void;
  /** Start-up notes for the user (a stale lock taken over, leftovers recovered). */
  onNotice?(message: string): void;
}

/** What `train` returns: episodes trained, the best validation, wall times and the checkpoint folders. */
export interface TrainSummary {
  episodesTrained: number;
  resumedFrom: number;
  best?: { episode: number; mode: string; accuracy: MeanCI };
  /** Wall time of this sitting (from start-up or resume to the end). */
  wallSeconds: number;
  /**
   * Training wall time over every sitting of the run, up to its last checkpoint. Exact when every checkpoint it
   * resumed from carried the running total; estimated from the train log (train-log.ts) when an older one did not.
   */
  allSittings: { wallSeconds: number; estimated: boolean };
  bestCheckpoint: string;
  lastCheckpoint: string;
}

function makeOptimizer(config: TrainerConfig): RestorableOptimizer {
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
  // One process per run folder; a second `train` on a held name is refused with the holder's details (and, refused,
  // touches nothing: the folder is the holder's).
  const lock = await acquireRunLock(runDir);
  // Whether this run is new is decided under the lock: a folder holding nothing but lock files is this process's.
  const fresh = (await fs.readdir(runDir)).every(isLockFile);
  let discard = false;
  try {
    if (lock.tookOverFrom)
      inputs.onNotice?.(
        `took over the stale lock of process ${lock.tookOverFrom.pid} on ${lock.tookOverFrom.host} (started ${lock.tookOverFrom.startedAt}; no longer running)`,
      );
    return await trainLocked(inputs, { t0, trainable, allVars, optimizer, lastDir, bestDir, logPath });
  } catch (err) {
    // A new run that failed before its first checkpoint leaves no (empty or log-only) folder behind: its own files
    // go while the lock is held, and the folder itself after the release, only if empty then — another starter's
    // lock file (its attempt at this name, made meanwhile) keeps it.
    const left = await fs.readdir(runDir).catch(() => [] as string[]);
    discard = fresh && left.every((n) => isLockFile(n) || n === path.basename(logPath) || /\.[0-9a-f]{12}\.(tmp|lnk)$/.test(n));
    if (discard) for (const n of left.filter((n) => !isLockFile(n))) await fs.rm(path.join(runDir, n), { recursive: true, force: true });
    throw err;
  } finally {
    await lock.release();
    if (discard) await fs.rmdir(runDir).catch(() => undefined);
  }
}

/** The run lock and the attempts at it (`.lock`, `.lock.<hex>.tmp`, takeover markers): never a run's content. */
const isLockFile = (name: string) => name === '.lock' || name.startsWith('.lock.');

interface TrainState {
  t0: number;
  trainable: tf.Variable[];
  allVars: tf.Variable[];
  optimizer: RestorableOptimizer;
  lastDir: string;
  bestDir: string;
  logPath: string;
}

async function refuseOtherConfig(runDir: string, dir: string, configHash: string): Promise<void> {
  const ckpt = await readCheckpoint(dir).catch((err: unknown) => {
    // An unreadable best/ is replaced by this run's next best; an unreadable last/ is reported when it is resumed.
    if (err instanceof UserError) return undefined;
    throw err;
  });
  if (ckpt && ckpt.file.meta.configHash !== configHash) {
    // Never overwrite another run's checkpoints: a different config under the same run directory is an error.
    throw new UserError(
      `${runDir} already holds a run with a different configuration (config hash ${String(ckpt.file.meta.configHash)}, this one ${configHash})`,
      'give this run another --name, or delete that directory if you no longer need it',
    );
  }
}

/**
 * Run-folder durability, under the run lock: with the lock held no other writer can be mid-write, so every temp
 * leftover in runs/<name> is a dead process's, and a kill between "new version complete" and "link swapped" is
 * finished here. A different config under this name is refused before any training, whichever checkpoint exists.
 * Returns whether a `last/` checkpoint exists to resume from.
 */
async function recoverRunFolder(inputs: TrainerInputs, state: TrainState): Promise<boolean> {
  const { runDir } = inputs;
  for (const dir of [state.lastDir, state.bestDir]) {
    for (const action of await recoverDir(dir)) inputs.onNotice?.(`recovered ${path.relative(process.cwd(), dir) || dir}: ${action}`);
  }
  for (const name of await fs.readdir(runDir)) {
    if (/\.[0-9a-f]{12}\.(tmp|lnk|stale)$/.test(name)) await fs.rm(path.join(runDir, name), { recursive: true, force: true });
  }
  const hasLast = await fs.stat(path.join(state.lastDir, 'checkpoint.json')).then(
    () => true,
    () => false,
  );
  await refuseOtherConfig(runDir, state.lastDir, inputs.meta.configHash);
  await refuseOtherConfig(runDir, state.bestDir, inputs.meta.configHash);
  return hasLast;
}

/** Where a sitting starts: episode 0, or what `last/` recorded (its variables and optimizer slots restored). */
interface ResumePoint {
  start: number;
  best: TrainSummary['best'];
  resumedLoss?: { sum: number; count: number };
  /** Training wall time of the sittings before this one (a resumed run's checkpoint carries it). */
  earlier: { wallSeconds: number; estimated: boolean };
}

async function resumePoint(inputs: TrainerInputs, state: TrainState, hasLast: boolean): Promise<ResumePoint> {
  const { config } = inputs;
  const { lastDir, logPath } = state;
  let point: ResumePoint = { start: 0, best: undefined, earlier: { wallSeconds: 0, estimated: false } };
  let resumedMeta: Record<string, unknown> | undefined;
  if (hasLast) {
    const ckpt = await readCheckpoint(lastDir, { onNotice: inputs.onNotice });
    restoreVariables(ckpt, state.allVars);
    if (ckpt.file.optimizer) {
      const slots = Object.fromEntries(Object.entries(ckpt.file.optimizer.slots).map(([k, es]) => [k, es.map((e) => ckpt.tensor(e))]));
      state.optimizer.restore(state.trainable, slots, ckpt.file.optimizer.stepCount);
      tf.dispose(Object.values(slots).flat());
    }
    point = {
      ...point,
      start: Number(ckpt.file.meta.episode ?? 0),
      best: ckpt.file.meta.best as TrainSummary['best'],
      resumedLoss: ckpt.file.meta.runningLoss as ResumePoint['resumedLoss'],
    };
    resumedMeta = ckpt.file.meta;
    if (point.start < config.episodes)
      inputs.onNotice?.(
        `resuming at episode ${point.start} of ${config.episodes} from the last checkpoint (${path.relative(process.cwd(), lastDir) || lastDir})`,
      );
  }
  // The log must not repeat episodes: drop entries past the resumed episode (written after `last/`
  // was saved by a process that then died), atomically.
  await truncateLog(logPath, point.start);
  if (resumedMeta) point.earlier = await earlierWall(resumedMeta, logPath, point.start);
  return point;
}

/** What the training loop carries between steps (and what a checkpoint records of it). */
interface LoopState {
  best: TrainSummary['best'];
  /** The loss accumulated since the last log report, and over how many episodes. */
  lossSum: tf.Scalar;
  lossCount: number;
}

/** Writes a run's checkpoints and log; remembers what is on disk, so a failure can say what is kept. */
class RunWriter {
  /** The episode of the newest `last` checkpoint on disk (all written ones are finite) and of `best/`. */
  checkpointed: number;
  bestSaved: number | undefined;

  constructor(
    private readonly inputs: TrainerInputs,
    private readonly state: TrainState,
    private readonly loop: LoopState,
    private readonly earlier: ResumePoint['earlier'],
    start: number,
  ) {
    this.checkpointed = start;
    this.bestSaved = loop.best?.episode;
  }

  kept(): string {
    const { lastDir, bestDir } = this.state;
    return (
      (this.checkpointed > 0
        ? `kept: the last good checkpoint (episode ${this.checkpointed}) in ${lastDir}`
        : `no checkpoint was written before it (${lastDir} has none to resume from)`) +
      (this.bestSaved !== undefined ? ` and ${bestDir} (episode ${this.bestSaved})` : '') +
      '; a new run with a lower --lr (or a gentler schedule) avoids it'
    );
  }

  private async saveUnchecked(dir: string, episode: number): Promise<void> {
    const { allVars, optimizer, t0 } = this.state;
    await saveCheckpoint(dir, {
      variables: allVars,
      optimizer: { type: optimizer.type, stepCount: optimizer.stepCount, slots: optimizer.state() },
      // The loss accumulated since the last log report travels with the checkpoint (a float32 value,
      // exact in JSON), so a resumed run logs the same loss as an uninterrupted one.
      meta: {
        ...this.inputs.meta,
        episode,
        best: this.loop.best,
        runningLoss: { sum: (await this.loop.lossSum.data())[0], count: this.loop.lossCount },
        trainWallSeconds: this.earlier.wallSeconds + (performance.now() - t0) / 1000,
        ...(this.earlier.estimated ? { trainWallEstimated: true } : {}),
      },
    });
  }

  /**
   * A diverged state (a NaN weight, an Inf batch-norm variance or optimizer slot) is never written over a good
   * checkpoint: training stops with a numerical error that says what is kept.
   */
  private async save(dir: string, episode: number): Promise<void> {
    try {
      await this.saveUnchecked(dir, episode);
    } catch (err) {
      if (!(err instanceof NumericalError)) throw err;
      throw new NumericalError(`training diverged by episode ${episode}: ${err.detail}; nothing was written to ${path.basename(dir)}/; ${this.kept()}`);
    }
  }

  async saveLast(episode: number): Promise<void> {
    await this.save(this.state.lastDir, episode);
    this.checkpointed = episode;
  }

  async saveBest(episode: number): Promise<void> {
    await this.save(this.state.bestDir, episode);
    this.bestSaved = episode;
  }

  async log(entry: Record<string, unknown>): Promise<void> {
    const { logPath } = this.state;
    await fs.appendFile(logPath, JSON.stringify({ time: new Date().toISOString(), ...entry }) + '\n').catch((err: unknown) => {
      throw withWritePath(err, logPath);
    });
    crashPoint('train-log:appended');
  }
}

/** Validate on the fixed val episodes; a new best is saved to `best/`. */
async function validateAt(inputs: TrainerInputs, loop: LoopState, writer: RunWriter, episode: number, valMode: string, start: number): Promise<void> {
  const { method, config } = inputs;
  if (!inputs.validation) return;
  const startedAt = performance.now();
  let res;
  try {
    res = evaluate(method, inputs.validation.source, inputs.validation.list, { limit: config.validation.episodes });
  } catch (err) {
    if (!(err instanceof NumericalError)) throw err;
    throw new NumericalError(`validation at episode ${episode}: ${err.message}; stopped, ${writer.kept()}`);
  }
  const acc = res.summary[valMode];
  const isBest = !loop.best || acc.mean > loop.best.accuracy.mean;
  if (isBest) {
    loop.best = { episode, mode: valMode, accuracy: acc };
    await writer.saveBest(episode);
  }
  await writer.log({ event: 'validation', episode, mode: valMode, accuracy: acc, all: res.summary, best: isBest });
  inputs.onProgress?.({
    episode,
    total: config.episodes,
    from: start,
    lr: learningRateAt(config, episode),
    validation: { episode, mode: valMode, accuracy: acc, best: isBest, seconds: (performance.now() - startedAt) / 1000 },
  });
}

/** One optimizer step on `used` episodes from `episode`; its loss joins the running sum. */
function stepOn(inputs: TrainerInputs, state: TrainState, loop: LoopState, episode: number, used: number, lr: number): void {
  // Build the step's episodes; episode i of the stream depends only on i, so resuming replays nothing.
  const batch = Array.from({ length: used }, (_, b) => trainBatch(inputs, episode + b));
  try {
    const stepLoss = withEpisodeIndex(episode, 'training episode', () => trainingStep(inputs.method, state.trainable, state.optimizer, batch, lr));
    const newSum = tf.add(loop.lossSum, stepLoss) as tf.Scalar;
    tf.dispose([loop.lossSum, stepLoss]);
    loop.lossSum = newSum;
    loop.lossCount += used;
  } finally {
    batch.forEach(disposeEpisode);
  }
}

/** Log the mean loss since the last report (a non-finite one stops training) and restart the sum. */
async function reportLoss(inputs: TrainerInputs, loop: LoopState, writer: RunWriter, done: number, lr: number, start: number): Promise<void> {
  const loss = (await loop.lossSum.data())[0] / loop.lossCount;
  if (!Number.isFinite(loss)) {
    throw new NumericalError(`training loss became ${loss}; stopped, ${writer.kept()}`, done - 1);
  }
  loop.lossSum.dispose();
  loop.lossSum = tf.scalar(0);
  loop.lossCount = 0;
  await writer.log({ event: 'train', episode: done, lr, loss });
  inputs.onProgress?.({ episode: done, total: inputs.config.episodes, from: start, lr, loss });
}

/** The training loop of one sitting, from a recovered run folder and its resume point. */
async function trainLocked(inputs: TrainerInputs, state: TrainState): Promise<TrainSummary> {
  const { method, config } = inputs;
  const { start, best, resumedLoss, earlier } = await resumePoint(inputs, state, await recoverRunFolder(inputs, state));
  const perStep = config.episodesPerStep;
  const logEvery = inputs.logEvery ?? 100;
  const ckptEvery = inputs.checkpointEvery ?? (config.validation.every > 0 ? Math.min(500, config.validation.every) : 500);
  const validateEvery = config.validation.every;
  const valMode = config.validation.mode ?? method.inferenceModes[0];
  if (inputs.validation && !method.inferenceModes.includes(valMode)) {
    throw new Error(`validation mode "${valMode}" is not one of ${method.inferenceModes.join(', ')}`);
  }
  const loop: LoopState = { best, lossSum: tf.scalar(resumedLoss?.sum ?? 0), lossCount: resumedLoss?.count ?? 0 };
  const writer = new RunWriter(inputs, state, loop, earlier, start);

  // A stop with SIGUSR1 writes a `last` checkpoint unless one at this episode is already there.
  for (let episode = start; episode < config.episodes; episode += perStep) {
    // Stop signals set a flag (util/signal.ts); yielding once per step lets the handler run, and stopping
    // between steps leaves the last complete checkpoint (SIGUSR1: one written here, at this episode).
    await new Promise((resolve) => setImmediate(resolve));
    if (receivedStopSignal() === CHECKPOINT_AND_STOP && episode > writer.checkpointed) await writer.saveLast(episode);
    if (receivedStopSignal())
      stopRequested(
        writer.checkpointed > 0
          ? `checkpoint at episode ${writer.checkpointed.toLocaleString('en-US')} of ${config.episodes.toLocaleString('en-US')}`
          : undefined,
      );
    const lr = learningRateAt(config, episode);
    const used = Math.min(perStep, config.episodes - episode);
    stepOn(inputs, state, loop, episode, used, lr);

    const done = episode + used;
    const crossed = (every: number) => every > 0 && Math.floor(done / every) > Math.floor(episode / every);
    if (crossed(logEvery) || done === config.episodes) await reportLoss(inputs, loop, writer, done, lr, start);
    if (crossed(validateEvery) || (done === config.episodes && inputs.validation)) await validateAt(inputs, loop, writer, done, valMode, start);
    if (crossed(ckptEvery) || done === config.episodes) await writer.saveLast(done);
    crashPoint('train:episode-done');
  }
  // A run with no validation keeps its final weights as "best" (saved before lossSum goes: the save records it).
  if (!inputs.validation) await writer.saveBest(config.episodes);
  loop.lossSum.dispose();
  const sitting = (performance.now() - state.t0) / 1000;
  return {
    episodesTrained: config.episodes - start,
    resumedFrom: start,
    best: loop.best,
    wallSeconds: sitting,
    allSittings: { wallSeconds: earlier.wallSeconds + sitting, estimated: earlier.estimated },
    bestCheckpoint: state.bestDir,
    lastCheckpoint: state.lastDir,
  };
}

function trainBatch(inputs: TrainerInputs, index: number): EpisodeImages {
  if (inputs.makeTrainBatch) return inputs.makeTrainBatch(index);
  if (!inputs.trainSource || !inputs.sampleTrainEpisode) throw new Error('train() needs makeTrainBatch, or trainSource + sampleTrainEpisode');
  return toEpisodeImages(inputs.trainSource(index), inputs.sampleTrainEpisode(index));
}

/** The training wall time before a resume: the checkpoint's running total, or (older checkpoints) the log's estimate. */
async function earlierWall(meta: Record<string, unknown>, logPath: string, episode: number): Promise<{ wallSeconds: number; estimated: boolean }> {
  if (typeof meta.trainWallSeconds === 'number') return { wallSeconds: meta.trainWallSeconds, estimated: meta.trainWallEstimated === true };
  if (episode === 0) return { wallSeconds: 0, estimated: false };
  const logged = await readTrainLogWall(logPath);
  return { wallSeconds: logged?.seconds ?? 0, estimated: true };
}

async function truncateLog(logPath: string, resumedEpisode: number): Promise<void> {
  const text = await fs.readFile(logPath, 'utf8').catch(() => undefined);
  if (text === undefined) return;
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const keep = lines.filter((l) => {
    try {
      return Number((JSON.parse(l) as { episode?: number }).episode ?? 0) <= resumedEpisode;
    } catch {
      return false; // a line cut short by a kill mid-append
    }
  });
  if (keep.length !== lines.length || !text.endsWith('\n')) await writeFileAtomic(logPath, keep.map((l) => l + '\n').join(''));
}
