import { promises as fs } from 'node:fs';
import { validateConfig } from '../experiment/index.ts';
import { DEFAULT_DATASET, getDatasetProvider } from '../data/providers/registry.ts';
import type { TrainConfig } from '../train/config.ts';
import { UserError } from '../util/errors.ts';
import { packageRoot } from '../util/package-root.ts';
import path from 'node:path';

/** The fix for a missing --config: the experiment files that exist (shipped with the package), by path. */
export async function configSuggestion(): Promise<string> {
  const dir = path.join(packageRoot(), 'experiments');
  const files = (await fs.readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.json')).sort((a, b) => Number(b.startsWith('protonet')) - Number(a.startsWith('protonet')) || a.localeCompare(b));
  if (files.length === 0) return 'pass an existing JSON experiment config (see the README, "Command reference")';
  const rel = path.relative(process.cwd(), dir);
  const shown = (rel && !rel.startsWith('..') ? rel : dir) + path.sep;
  return `pass an existing JSON file; the package ships: ${files.slice(0, 8).map((f) => shown + f).join(', ')}${files.length > 8 ? `, … (${files.length} in ${shown})` : ''}`;
}
import { parseDatasetOptions, type DatasetFlags } from './dataset-flags.ts';

export { configHash, runName } from '../experiment/index.ts';

/** Flags shared by `train` and `run` that override fields of the experiment config. */
export interface TrainFlags extends DatasetFlags {
  config?: string;
  backbone?: string;
  imageSize?: number;
  way?: number;
  shot?: number;
  query?: number;
  trainWay?: number;
  trainShot?: number;
  trainQuery?: number;
  episodes?: number;
  episodesPerStep?: number;
  lr?: number;
  seed?: number;
  valEvery?: number;
  valEpisodes?: number;
  transform?: string;
  slaLoss?: string;
  augment?: 'none' | 'metaoptnet';
}

async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new UserError(`cannot read config file ${file}`, await configSuggestion());
  }
  try {
    // Keys starting with "//" are comments (JSON has none); they are dropped before validation.
    const parsed = JSON.parse(text);
    for (const k of Object.keys(parsed)) if (k.startsWith('//')) delete parsed[k];
    return parsed;
  } catch (err) {
    throw new UserError(`config file ${file} is not valid JSON: ${(err as Error).message}`, 'fix the JSON syntax');
  }
}

/**
 * Resolve the training config: defaults ← experiment file ← flags. The method given on the command line
 * wins over the file's. Defaults are the ProtoNet paper's protocol at train way = test way.
 */
export async function resolveTrainConfig(method: string, flags: TrainFlags): Promise<TrainConfig> {
  const base: Record<string, any> = flags.config ? await readConfigFile(flags.config) : {};
  const way = flags.way ?? base.test?.way ?? 5;
  const shot = flags.shot ?? base.test?.shot ?? 1;
  const query = flags.query ?? base.test?.query ?? 15;
  const raw: Record<string, any> = {
    ...base,
    method,
    backbone: flags.backbone ?? base.backbone,
    imageSize: flags.imageSize ?? base.imageSize,
    test: { way, shot, query },
    train: {
      way: flags.trainWay ?? base.train?.way ?? way,
      shot: flags.trainShot ?? base.train?.shot ?? shot,
      query: flags.trainQuery ?? base.train?.query ?? query,
    },
    episodes: flags.episodes ?? base.episodes ?? 20000,
    episodesPerStep: flags.episodesPerStep ?? base.episodesPerStep,
    seed: flags.seed ?? base.seed,
  };
  // --dataset replaces the file's dataset (and its options); --dataset-option adds to / overrides options.
  const dataset: string = flags.dataset ?? base.dataset ?? DEFAULT_DATASET;
  const fileOptions = flags.dataset !== undefined && flags.dataset !== base.dataset ? {} : (base.datasetOptions ?? {});
  raw.dataset = dataset;
  raw.datasetOptions = { ...fileOptions, ...parseDatasetOptions(flags.datasetOption) };
  // Neither the file nor a flag chose: the dataset's own image size (CIFAR's 32 px, not an upsampled 84) and its
  // default training augmentation (the training log line says which augmentation a run uses).
  raw.imageSize ??= getDatasetProvider(dataset).nativeImageSize;
  raw.augment = flags.augment ?? base.augment ?? getDatasetProvider(dataset).defaultAugment;
  if (flags.lr !== undefined) raw.optimizer = { ...(base.optimizer ?? { type: 'adam' }), lr: flags.lr };
  if (flags.valEvery !== undefined || flags.valEpisodes !== undefined) {
    raw.validation = { ...(base.validation ?? {}), ...(flags.valEvery !== undefined ? { every: flags.valEvery } : {}), ...(flags.valEpisodes !== undefined ? { episodes: flags.valEpisodes } : {}) };
  }
  const wrapperOptions = { ...(base.wrapperOptions ?? {}) };
  if (flags.transform) wrapperOptions.transform = flags.transform;
  if (flags.slaLoss) wrapperOptions.slaLoss = flags.slaLoss;
  raw.wrapperOptions = wrapperOptions;
  for (const k of Object.keys(raw)) if (raw[k] === undefined) delete raw[k];
  return validateConfig(raw);
}

