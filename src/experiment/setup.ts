import { selectBackend, type SelectedBackend } from '../backend/select.ts';
import type { EpisodeList } from '../eval/evaluator.ts';
import { constructMethod, type ResolvedMethod } from '../methods/build.ts';
import type { EpisodicMethod } from '../methods/contract.ts';
import type { TrainConfig } from '../train/config.ts';
import { NumericalError, UserError } from '../util/errors.ts';
import { promises as fs } from 'node:fs';
import type { ExperimentOptions } from './options.ts';
import type { ExperimentReporter } from './reporter.ts';
import { loadedPlugins } from './software.ts';
import { episodeFileFor, openEpisodeList, type OpenedDataset, type OpenedSplit } from './workspace.ts';

/* What a training and an evaluation set up before their work: the backend and method, the named files, the test episodes. */

/** Load the backend (saying which one), then construct the method resolved before it (resolve.ts). */
export async function backendAndMethod(
  config: TrainConfig,
  resolved: ResolvedMethod,
  backendChoice: string,
  reporter: ExperimentReporter,
): Promise<{ backend: SelectedBackend; method: EpisodicMethod }> {
  const backend = await selectBackend(backendChoice);
  reporter.log(`backend: ${backend.choice} — ${backend.detail}`);
  const method = constructMethod(resolved, {
    imageSize: config.imageSize,
    way: Math.max(config.train.way, config.test.way),
    seed: config.seed,
    wrapperOptions: config.wrapperOptions,
  });
  return { backend, method };
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

/** Explicitly named input files must exist before any compute (backend loading, cache preparation, training). */
export async function requireFiles(files: [flag: string, file: string | undefined][]): Promise<void> {
  for (const [flag, file] of files) {
    if (file !== undefined && !(await exists(file))) {
      throw new UserError(
        `${flag} ${file} does not exist`,
        'check the path, or make the file with `fewshot episodes make` (or omit the flag to use the standard file)',
      );
    }
  }
}

/** An opened test episode file, checked against the data before any training. */
export interface TestEpisodes {
  file: string;
  split: OpenedSplit;
  list: EpisodeList & { sha256: string };
}

export async function openTestEpisodes(
  dataset: OpenedDataset,
  config: TrainConfig,
  options: ExperimentOptions,
  reporter: ExperimentReporter,
): Promise<TestEpisodes> {
  const split = await dataset.split('test');
  const file = await episodeFileFor(dataset, 'test', config.test, options.testFile, reporter);
  return { file, split, list: await openEpisodeList(file, split, config.test) };
}

/** A numerical error names the loaded plugins: one of them (a method, backbone or head) may have produced it. */
export function namingPlugins(err: unknown): unknown {
  const plugins = loadedPlugins().map((p) => p.module);
  if (!(err instanceof NumericalError) || plugins.length === 0) return err;
  return new NumericalError(`${err.message}; plugin${plugins.length > 1 ? 's' : ''} loaded: ${plugins.join(', ')}`);
}
