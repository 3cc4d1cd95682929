import type { EpisodeSpec } from './spec.ts';

/**
 * The fixed episode sets committed under `episodes/<dataset>/`: everyone evaluates on the same
 * episodes, so results are comparable. Test sets report accuracy; val sets pick checkpoints
 * (model selection uses 5-way 5-shot val accuracy, REFERENCE.md §4.6).
 */
export interface StandardEpisodeSet {
  split: 'val' | 'test';
  spec: EpisodeSpec;
  seed: number;
  count: number;
}

export const STANDARD_EPISODE_SETS: readonly StandardEpisodeSet[] = [
  { split: 'test', spec: { way: 5, shot: 1, query: 15 }, seed: 0, count: 2000 },
  { split: 'test', spec: { way: 5, shot: 5, query: 15 }, seed: 0, count: 2000 },
  { split: 'val', spec: { way: 5, shot: 1, query: 15 }, seed: 0, count: 1000 },
  { split: 'val', spec: { way: 5, shot: 5, query: 15 }, seed: 0, count: 1000 },
];

/** Folder of the committed episode files, relative to the repository root. */
export const EPISODES_DIR = 'episodes';
