import { createHash } from 'node:crypto';
import { deriveSeed, mulberry32 } from '../util/prng.ts';
import { UserError } from '../util/errors.ts';

/*
 * A provider's split as an ordinary labelled dataset (issue 31 #1, #2): a fixed, seeded hold-out of each class
 * as the test set, and an optional long-tailed subsampling of the rest with the exponential profile of the
 * long-tailed CIFAR benchmarks. Everything here is a pure function of (labels, seed, settings), so a checkpoint
 * that records those settings and the resulting hashes pins its split exactly.
 */

export interface ClassificationSplitSettings {
  /** Images of each class held out as the test set. */
  testPerClass: number;
  /** n_max / n_min of the training set (1: balanced, no subsampling). */
  imbalanceRatio: number;
  seed: number;
}

export interface ClassificationSplit {
  /** Item indices (rows of the provider's split) of the training set, class by class, each class in shuffled order. */
  train: Int32Array;
  /** Held-out item indices, class by class. */
  test: Int32Array;
  /** Training images per class after the hold-out and the long-tail subsampling. */
  trainCounts: number[];
  testPerClass: number;
  imbalanceRatio: number;
  seed: number;
  /** sha256 over the item indices (little-endian int32), so a record names the exact split. */
  trainSha256: string;
  testSha256: string;
}

/**
 * Class sizes of the long-tailed CIFAR benchmarks (Cao et al. 2019's `get_img_num_per_cls`, exponential profile):
 * n_i = ⌊n_max · ratio^(−i/(C−1))⌋ for class i = 0..C−1, so class 0 keeps n_max and class C−1 keeps ⌊n_max/ratio⌋.
 */
export function longTailCounts(nMax: number, classes: number, ratio: number): number[] {
  checkImbalanceRatio(ratio);
  if (classes === 1) return [nMax];
  // ratio^(−i/(C−1)) is evaluated as (1/ratio)^(i/(C−1)) like the benchmark code (imb_factor ** (i / (C − 1.0))).
  return Array.from({ length: classes }, (_, i) => Math.floor(nMax * (1 / ratio) ** (i / (classes - 1))));
}

export function checkImbalanceRatio(ratio: number): void {
  if (!Number.isFinite(ratio) || ratio < 1) {
    throw new UserError(
      `imbalance ratio ${ratio} must be a number ≥ 1 (it is n_max / n_min, the largest training class over the smallest)`,
      'use 1 for a balanced training set, or e.g. 10, 50 or 100 for the long-tailed benchmarks',
    );
  }
}

/** Fisher–Yates shuffle with a seeded mulberry32 stream. */
function shuffled(items: number[], seed: number): number[] {
  const out = [...items];
  const r = mulberry32(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function sha256OfIndices(indices: Int32Array): string {
  return createHash('sha256')
    .update(Buffer.from(indices.buffer, indices.byteOffset, indices.byteLength))
    .digest('hex');
}

/**
 * Hold out `testPerClass` images of every class (a seeded shuffle per class; the first ones are the test set),
 * then keep longTailCounts(n_max, C, ratio)[c] of the remaining ones of class c, n_max being the smallest class's
 * remainder (so every class can give its share). A class with no image left to train on is refused.
 */
export function classificationSplit(
  labels: Int32Array,
  classNames: readonly string[],
  settings: ClassificationSplitSettings,
  what = 'the split',
): ClassificationSplit {
  const { testPerClass, imbalanceRatio, seed } = settings;
  checkImbalanceRatio(imbalanceRatio);
  if (!Number.isInteger(testPerClass) || testPerClass < 1)
    throw new UserError(`--test-per-class ${testPerClass} must be a whole number ≥ 1`, 'hold out at least one image of each class, e.g. --test-per-class 100');
  const byClass: number[][] = classNames.map(() => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]].push(i);
  const smallest = byClass.reduce((m, items, c) => (items.length < byClass[m].length ? c : m), 0);
  const minimum = testPerClass + Math.ceil(imbalanceRatio);
  if (byClass[smallest].length < minimum) {
    throw new UserError(
      `${what} is too small to hold out a test portion: class "${classNames[smallest]}" has ${byClass[smallest].length} images, and holding out ${testPerClass} per class${imbalanceRatio > 1 ? ` at imbalance ratio ${imbalanceRatio}` : ''} needs at least ${minimum}`,
      `lower --test-per-class (at most ${Math.max(0, byClass[smallest].length - Math.ceil(imbalanceRatio))} here)${imbalanceRatio > 1 ? ' or the imbalance ratio' : ''}, or use a split with more images per class`,
    );
  }
  const perClass = byClass.map((items, c) => shuffled(items, deriveSeed(seed, `classify/split/${c}`)));
  const nMax = Math.min(...perClass.map((items) => items.length - testPerClass));
  const trainCounts = imbalanceRatio === 1 ? perClass.map((items) => items.length - testPerClass) : longTailCounts(nMax, classNames.length, imbalanceRatio);
  const test = Int32Array.from(perClass.flatMap((items) => items.slice(0, testPerClass)));
  const train = Int32Array.from(perClass.flatMap((items, c) => items.slice(testPerClass, testPerClass + trainCounts[c])));
  return { train, test, trainCounts, testPerClass, imbalanceRatio, seed, trainSha256: sha256OfIndices(train), testSha256: sha256OfIndices(test) };
}

/** The usual long-tail groups by training images per class: many > 100, medium 20–100, few < 20. */
export const SHOT_GROUPS = { manyAbove: 100, fewBelow: 20 } as const;
export type ShotGroup = 'many' | 'medium' | 'few';

/** The many/medium/few-shot group of a class with this many training images (over 100, 20–100, under 20). */
export function shotGroupOf(trainCount: number): ShotGroup {
  if (trainCount > SHOT_GROUPS.manyAbove) return 'many';
  if (trainCount < SHOT_GROUPS.fewBelow) return 'few';
  return 'medium';
}

/**
 * Mini-batch b of epoch e over the training items: a seeded permutation per epoch, cut into batches of
 * `batchSize` (the last one shorter). A pure function of (seed, step), so a resumed run sees the same batches.
 */
export function batchSampler(train: Int32Array, batchSize: number, seed: number): { stepsPerEpoch: number; batch(step: number): Int32Array } {
  const stepsPerEpoch = Math.ceil(train.length / batchSize);
  let cached: { epoch: number; order: number[] } | undefined;
  return {
    stepsPerEpoch,
    batch(step) {
      const epoch = Math.floor(step / stepsPerEpoch);
      if (cached?.epoch !== epoch) cached = { epoch, order: shuffled(Array.from(train), deriveSeed(seed, `classify/epoch/${epoch}`)) };
      const b = step % stepsPerEpoch;
      return Int32Array.from(cached.order.slice(b * batchSize, (b + 1) * batchSize));
    },
  };
}
