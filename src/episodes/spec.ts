import { z } from 'zod';
import { UserError } from '../util/errors.ts';

/**
 * An N-way K-shot episode shape with Q query images per class: the one definition used by the
 * sampler, episode files, the training config and the evaluator.
 */
/** The smallest way, shot and query: an episode tells at least two classes apart. The one rule, everywhere. */
const SPEC_MINIMUM = { way: 2, shot: 1, query: 1 } as const;

export const episodeSpecSchema = z
  .object({
    way: z.number().int().min(SPEC_MINIMUM.way),
    shot: z.number().int().min(SPEC_MINIMUM.shot),
    query: z.number().int().min(SPEC_MINIMUM.query),
  })
  .strict();

/** The shape of an episode: way, shot and query count. */
export type EpisodeSpec = z.infer<typeof episodeSpecSchema>;

/**
 * A fixed episode set of a dataset (see standard.ts): the split, the spec, the seed of its episode stream and
 * how many episodes it holds.
 */
export interface StandardEpisodeSet {
  split: 'val' | 'test';
  spec: EpisodeSpec;
  seed: number;
  count: number;
}

/** How a split's items are grouped: items of class c are classOffsets[c] .. classOffsets[c] + itemsPerClass[c] − 1. */
export interface ClassLayout {
  classOffsets: ArrayLike<number>;
  itemsPerClass: ArrayLike<number>;
}

export function specLabel(spec: EpisodeSpec): string {
  return `${spec.way}-way ${spec.shot}-shot with ${spec.query} queries per class`;
}

/** `5w1s15q`: the compact form used in episode file names. */
export function specTag(spec: EpisodeSpec): string {
  return `${spec.way}w${spec.shot}s${spec.query}q`;
}

/** Throws a UserError naming the numbers when `spec` cannot be sampled from `layout`. */
export function validateSpec(layout: ClassLayout, spec: EpisodeSpec, splitName = 'the split'): void {
  for (const key of ['way', 'shot', 'query'] as const) {
    const v = spec[key];
    if (!Number.isInteger(v) || v < SPEC_MINIMUM[key]) {
      throw new UserError(`--${key} must be a whole number of at least ${SPEC_MINIMUM[key]}, got ${v}`, `pass e.g. --way 5 --shot 1 --query 15`);
    }
  }
  const nClasses = layout.itemsPerClass.length;
  if (spec.way > nClasses) {
    throw new UserError(`${specLabel(spec)} needs ${spec.way} distinct classes, but ${splitName} has only ${nClasses}`, `use --way ${nClasses} or less`);
  }
  let fewest = Infinity;
  let fewestClass = -1;
  for (let c = 0; c < nClasses; c++) {
    if (layout.itemsPerClass[c] < fewest) {
      fewest = layout.itemsPerClass[c];
      fewestClass = c;
    }
  }
  const need = spec.shot + spec.query;
  if (need > fewest) {
    throw new UserError(
      `${specLabel(spec)} needs ${need} distinct images per class (shot + query), but class #${fewestClass} of ${splitName} has only ${fewest}`,
      `lower --shot and --query so that shot + query is at most ${fewest}`,
    );
  }
}
