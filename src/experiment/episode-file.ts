import path from 'node:path';
import { describeSplit, isSplitName } from '../data/index.ts';
import { resolveDataset } from '../data/providers/registry.ts';
import { episodeFileName, makeEpisodes, writeEpisodeFile, type EpisodeSet } from '../episodes/index.ts';
import { UserError } from '../util/errors.ts';
import { silentReporter } from './reporter.ts';
import type { ExperimentHooks } from './experiment.ts';
import { datasetOptionsWithData, localEpisodesDir, resolveCacheDir } from './workspace.ts';

/** `fewshot episodes make`: N-way K-shot episodes sampled from one split of a prepared cache, as a fixed file. */
export interface MakeEpisodeFileRequest {
  split: string;
  way: number;
  shot: number;
  query: number;
  /** Number of episodes. */
  count: number;
  seed: number;
  /** Which prepared cache to read the split from (indices do not depend on the size). */
  imageSize: number;
  dataset: string;
  datasetOptions?: Record<string, unknown>;
  /** The dataset source, for providers that name the dataset by it (folder, csv). */
  data?: string;
  cache?: string;
  /** Output file (default: episodes/<dataset>/<split>_<spec>_seed<seed>_<count>.json). */
  out?: string;
}

/** Sample the episodes and write the fingerprinted file; returns where it went. */
export async function makeEpisodeFile(request: MakeEpisodeFileRequest, hooks: ExperimentHooks = {}): Promise<{ out: string; file: EpisodeSet }> {
  const reporter = hooks.reporter ?? silentReporter;
  if (!isSplitName(request.split)) throw new UserError(`unknown split "${request.split}"`, 'use --split train, val or test');
  const ds = resolveDataset(request.dataset, datasetOptionsWithData(request.dataset, request.datasetOptions ?? {}, request.data));
  const split = await describeSplit(resolveCacheDir({ cache: request.cache }, ds.name, request.imageSize), request.split);
  const spec = { way: request.way, shot: request.shot, query: request.query };
  const bar = reporter.progress('episodes', request.count);
  const file = makeEpisodes({ split, spec, seed: request.seed, count: request.count, onProgress: (d: number) => bar.update(d) });
  bar.stop();
  const out = request.out ?? path.join(localEpisodesDir(), episodeFileName(file.header));
  await writeEpisodeFile(out, file);
  return { out, file };
}
