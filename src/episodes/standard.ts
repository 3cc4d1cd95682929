import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { ResolvedDataset } from '../data/providers/registry.ts';
import { packagedEpisodesDir } from '../util/package-root.ts';
import { episodeFileName, makeEpisodes, writeEpisodeFile, type SplitDescriptor } from './file.ts';
import { UserError } from '../util/errors.ts';
import { episodeSpecSchema, type EpisodeSpec, type StandardEpisodeSet } from './spec.ts';

/**
 * The standard episode file for (dataset, split, spec): everyone evaluates on the same fixed episodes, so
 * results are comparable. Test sets report accuracy; val sets pick checkpoints (model selection uses 5-way val
 * accuracy, docs/reference.md). This module is the one policy for them: which sets a dataset has, where its
 * file is (committed in the package, or made in ./episodes on first use) and making a missing one. Dataset
 * providers only say whether their files are committed (`makesMissingEpisodeFiles`) and, if they differ from
 * the usual protocol, list their sets (`registerStandardEpisodeSets`).
 */

/**
 * The usual protocol: 2,000 test and 1,000 validation episodes, 5-way 1- and 5-shot, 15 queries, seed 0. The
 * sets of every built-in dataset (mini-ImageNet's are committed under episodes/mini-imagenet/).
 */
export const STANDARD_EPISODE_SETS: readonly StandardEpisodeSet[] = [
  { split: 'test', spec: { way: 5, shot: 1, query: 15 }, seed: 0, count: 2000 },
  { split: 'test', spec: { way: 5, shot: 5, query: 15 }, seed: 0, count: 2000 },
  { split: 'val', spec: { way: 5, shot: 1, query: 15 }, seed: 0, count: 1000 },
  { split: 'val', spec: { way: 5, shot: 5, query: 15 }, seed: 0, count: 1000 },
];

/** Folder of the committed episode files (relative to the package root), and of the files made for user datasets (relative to the working directory). */
export const EPISODES_DIR = 'episodes';

/** Sets listed by providers whose protocol differs from the usual one, by provider id. */
const listedSets = new Map<string, readonly StandardEpisodeSet[]>();

/**
 * A dataset provider's own fixed episode sets, for a dataset whose protocol differs from the usual one
 * (`STANDARD_EPISODE_SETS`); default episode files are then named after these. Called by the provider's module
 * at import time, beside `registerDatasetProvider`.
 */
export function registerStandardEpisodeSets(providerId: string, sets: readonly StandardEpisodeSet[]): void {
  if (listedSets.has(providerId)) {
    throw new UserError(
      `the standard episode sets of dataset provider "${providerId}" are listed twice`,
      'list them once, in the module that registers the provider',
    );
  }
  for (const set of sets) {
    if (set.split !== 'val' && set.split !== 'test')
      throw new UserError(`standard episode set of "${providerId}": split "${String(set.split)}" is not val or test`, 'use split "val" or "test"');
    if (!Number.isInteger(set.seed) || !Number.isInteger(set.count) || set.count < 1) {
      throw new UserError(
        `standard episode set of "${providerId}": seed ${set.seed} / count ${set.count} are not integers (count ≥ 1)`,
        'give an integer seed and a positive integer count',
      );
    }
    if (!episodeSpecSchema.safeParse(set.spec).success) {
      throw new UserError(
        `standard episode set of "${providerId}": spec ${JSON.stringify(set.spec)} is not an episode spec`,
        'give { way ≥ 2, shot ≥ 1, query ≥ 1 } as integers',
      );
    }
  }
  listedSets.set(
    providerId,
    sets.map((s) => ({ ...s, spec: { ...s.spec } })),
  );
}

/** The standard sets of a dataset: those its provider listed, else the usual protocol. */
export function standardEpisodeSets(providerId: string): readonly StandardEpisodeSet[] {
  return listedSets.get(providerId) ?? STANDARD_EPISODE_SETS;
}

/**
 * The default episode file for a split and spec: the dataset's standard set of that spec if it has one
 * (e.g. episodes/mini-imagenet/test_5w1s15q_seed0_2000.json), else seed 0 with the standard count. With no
 * explicit folder, a dataset with committed files (its provider makes none) reads them from the package's
 * episodes/ folder, whatever the working directory; others use ./episodes.
 */
export function defaultEpisodeFile(
  dataset: { dataset: ResolvedDataset; episodesDir?: string },
  split: 'val' | 'test',
  spec: EpisodeSpec,
): { file: string; seed: number; count: number } {
  const sets = standardEpisodeSets(dataset.dataset.provider.id);
  const std = sets.find((s) => s.split === split && s.spec.way === spec.way && s.spec.shot === spec.shot && s.spec.query === spec.query);
  const seed = std?.seed ?? 0;
  const count = std?.count ?? sets.find((s) => s.split === split)?.count ?? (split === 'test' ? 2000 : 1000);
  const name = episodeFileName({ dataset: dataset.dataset.name, split, spec, seed, count });
  if (dataset.episodesDir !== undefined) return { file: path.join(dataset.episodesDir, name), seed, count };
  const packaged = path.join(packagedEpisodesDir(), name);
  // A file `fewshot episodes make` wrote for a spec the package has no file for lives in ./episodes.
  const useLocal = dataset.dataset.provider.makesMissingEpisodeFiles || !existsSync(packaged);
  return { file: useLocal ? path.join(EPISODES_DIR, name) : packaged, seed, count };
}

/**
 * The episode file to use: `explicit` when given, else the default one. A missing default file is made
 * (atomically) for datasets whose provider allows it (user datasets have no committed files), from the split
 * `loadSplit` gives; `log` says so.
 */
export async function episodeFileFor(
  dataset: { dataset: ResolvedDataset; episodesDir?: string; split(name: 'val' | 'test'): Promise<{ loaded: SplitDescriptor }> },
  split: 'val' | 'test',
  spec: EpisodeSpec,
  explicit: string | undefined,
  reporter: { log(line: string): void } = { log: () => {} },
): Promise<string> {
  if (explicit) return explicit;
  const def = defaultEpisodeFile(dataset, split, spec);
  const exists = await fs.stat(def.file).then(
    () => true,
    () => false,
  );
  if (!exists && dataset.dataset.provider.makesMissingEpisodeFiles) {
    const set = makeEpisodes({ split: (await dataset.split(split)).loaded, spec, seed: def.seed, count: def.count });
    await writeEpisodeFile(def.file, set);
    reporter.log(`made ${def.file} (${def.count} ${split} episodes, seed ${def.seed}) for ${dataset.dataset.name}`);
  }
  return def.file;
}
