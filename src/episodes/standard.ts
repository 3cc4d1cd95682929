import { MINI_IMAGENET_EPISODE_SETS } from '../data/providers/mini-imagenet.ts';
import type { EpisodeSpec } from './spec.ts';

/**
 * A fixed episode set committed under `episodes/<dataset>/`: everyone evaluates on the same
 * episodes, so results are comparable. Test sets report accuracy; val sets pick checkpoints
 * (model selection uses 5-way val accuracy, docs/reference.md). Each dataset provider lists its sets.
 */
export interface StandardEpisodeSet {
  split: 'val' | 'test';
  spec: EpisodeSpec;
  seed: number;
  count: number;
}

/** mini-ImageNet's sets (the provider's `standardEpisodes`), kept under this name for existing callers. */
export const STANDARD_EPISODE_SETS: readonly StandardEpisodeSet[] = MINI_IMAGENET_EPISODE_SETS;

/** Folder of the committed episode files, relative to the repository root. */
export const EPISODES_DIR = 'episodes';
