import seedrandom from 'seedrandom';
import { UserError } from '../util/errors.ts';
import type { EpisodeIndices } from './images.ts';
import { specTag, validateSpec, type ClassLayout, type EpisodeSpec } from './spec.ts';

/**
 * Bump when the sampling algorithm or the RNG key changes: episode files record it, and episodes
 * with the same (seed, split, spec, index) are only identical under the same sampler version.
 */
export const SAMPLER_VERSION = 1;

/** One episode as indices into a split, with its spec and the classes it drew. */
export interface SampledEpisode extends EpisodeIndices {
  /** Class ids of the split; position = episode label (so the label order is random). */
  classes: number[];
}

export interface EpisodeKey {
  seed: number;
  /** Split name (`train`, `val`, `test`): part of the key, so splits never share a random stream. */
  splitName: string;
  /** Episode number within the stream. */
  index: number;
}

/**
 * The string that seeds one episode's RNG. Episode i depends only on this key: not on how many
 * episodes were drawn before it, nor on which worker draws it.
 */
export function episodeRngKey(spec: EpisodeSpec, key: EpisodeKey): string {
  return `fewshot-sampler-v${SAMPLER_VERSION}|split=${key.splitName}|${specTag(spec)}|seed=${key.seed}|episode=${key.index}`;
}

function checkKey(key: EpisodeKey): void {
  if (!Number.isSafeInteger(key.seed) || key.seed < 0) throw new UserError(`--seed must be a whole number ≥ 0, got ${key.seed}`, 'pass e.g. --seed 0');
  if (!Number.isSafeInteger(key.index) || key.index < 0) throw new RangeError(`episode index must be a whole number ≥ 0, got ${key.index}`);
}

/**
 * The first k entries of a uniformly random permutation of 0..n−1 (partial Fisher–Yates).
 * Swaps are kept in a map, so the cost is O(k), not O(n).
 */
function sampleWithoutReplacement(n: number, k: number, rng: () => number): number[] {
  const swapped = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rng() * (n - i));
    const atJ = swapped.get(j) ?? j;
    swapped.set(j, swapped.get(i) ?? i);
    out.push(atJ);
  }
  return out;
}

/**
 * Draw episode `key.index`: `way` distinct classes in random label order, then for each class
 * shot + query distinct items without replacement (first `shot` → support, rest → query), so
 * support and query never share an item. Pure: same inputs, same episode.
 */
export function sampleEpisode(split: ClassLayout, spec: EpisodeSpec, key: EpisodeKey): SampledEpisode {
  validateSpec(split, spec, `split "${key.splitName}"`);
  checkKey(key);
  return drawEpisode(split, spec, key);
}

/**
 * The stream (seed, split, spec) as a function of the episode index: the spec and seed are checked once, here,
 * not for every episode drawn (the trainer draws one per step). Episode i is `sampleEpisode(…, { index: i })`.
 */
export function episodeStream(split: ClassLayout, spec: EpisodeSpec, options: { seed: number; splitName: string }): (index: number) => SampledEpisode {
  validateSpec(split, spec, `split "${options.splitName}"`);
  checkKey({ ...options, index: 0 });
  return (index) => {
    if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`episode index must be a whole number ≥ 0, got ${index}`);
    return drawEpisode(split, spec, { ...options, index });
  };
}

/** sampleEpisode without the (already done) validation, for loops. */
function drawEpisode(split: ClassLayout, spec: EpisodeSpec, key: EpisodeKey): SampledEpisode {
  const rng = seedrandom(episodeRngKey(spec, key));
  const classes = sampleWithoutReplacement(split.itemsPerClass.length, spec.way, rng);
  const support = new Int32Array(spec.way * spec.shot);
  const query = new Int32Array(spec.way * spec.query);
  classes.forEach((c, label) => {
    const offset = split.classOffsets[c];
    const picks = sampleWithoutReplacement(split.itemsPerClass[c], spec.shot + spec.query, rng);
    for (let k = 0; k < spec.shot; k++) support[label * spec.shot + k] = offset + picks[k];
    for (let k = 0; k < spec.query; k++) query[label * spec.query + k] = offset + picks[spec.shot + k];
  });
  return { spec, classes, support, query };
}

/** Episodes first … first + count − 1 of the stream (seed, split, spec). */
export function sampleEpisodes(
  split: ClassLayout,
  spec: EpisodeSpec,
  options: { seed: number; splitName: string; count: number; first?: number; onProgress?: (done: number, total: number) => void },
): SampledEpisode[] {
  const { seed, splitName, count, first = 0, onProgress } = options;
  validateSpec(split, spec, `split "${splitName}"`);
  if (!Number.isSafeInteger(count) || count < 1) throw new UserError(`episode count must be a whole number ≥ 1, got ${count}`, 'pass e.g. --episodes 2000');
  checkKey({ seed, splitName, index: first });
  const episodes: SampledEpisode[] = [];
  for (let i = 0; i < count; i++) {
    episodes.push(drawEpisode(split, spec, { seed, splitName, index: first + i }));
    if (onProgress && ((i + 1) % 250 === 0 || i + 1 === count)) onProgress(i + 1, count);
  }
  return episodes;
}
