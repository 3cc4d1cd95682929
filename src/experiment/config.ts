import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DEFAULT_DATASET, getDatasetProvider } from '../data/providers/registry.ts';
import type { TrainConfig } from '../train/config.ts';
import { UserError } from '../util/errors.ts';
import { packageRoot } from '../util/package-root.ts';
import { deepMerge } from './reproduce/plan.ts';
import { validateConfig } from './validate.ts';

/**
 * One experiment config from an experiment file (optional) and overrides (a command line's flags, a script's
 * fields): defaults ← the file (after its `extends` chain) ← overrides, validated. Defaults are the ProtoNet paper's
 * protocol at train way = test way.
 */
export interface ConfigOverrides {
  /** The method; wins over the file's. */
  method?: string;
  backbone?: string;
  imageSize?: number;
  /** Test episode shape; the training shape defaults to it. */
  way?: number;
  shot?: number;
  query?: number;
  trainWay?: number;
  trainShot?: number;
  trainQuery?: number;
  episodes?: number;
  episodesPerStep?: number;
  /** Base learning rate (the file's optimizer, else Adam). */
  lr?: number;
  seed?: number;
  valEvery?: number;
  valEpisodes?: number;
  /** SLA/DA/MT transformation set. */
  transform?: string;
  slaLoss?: string;
  augment?: 'none' | 'metaoptnet';
  /** Replaces the file's dataset (and, when it differs, the file's dataset options). */
  dataset?: string;
  /** Added to / overriding the dataset options. */
  datasetOptions?: Record<string, unknown>;
}

type Json = Record<string, any>;

/** The fix for an unreadable experiment file: the experiment files that exist (shipped with the package), by path. */
export async function configSuggestion(): Promise<string> {
  const dir = path.join(packageRoot(), 'experiments');
  const files = (await fs.readdir(dir).catch(() => [] as string[]))
    .filter((f) => f.endsWith('.json'))
    .sort((a, b) => Number(b.startsWith('protonet')) - Number(a.startsWith('protonet')) || a.localeCompare(b));
  if (files.length === 0) return 'pass an existing JSON experiment config (see the README, "Command reference")';
  const rel = path.relative(process.cwd(), dir);
  const shown = (rel && !rel.startsWith('..') ? rel : dir) + path.sep;
  return `pass an existing JSON file; the package ships: ${files
    .slice(0, 8)
    .map((f) => shown + f)
    .join(', ')}${files.length > 8 ? `, … (${files.length} in ${shown})` : ''}`;
}

async function readJsonFile(file: string, extendedBy?: string): Promise<Json> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    if (extendedBy)
      throw new UserError(`cannot read ${file}, which ${extendedBy} extends`, 'fix the "extends" path (it is relative to the file that names it)');
    throw new UserError(`cannot read config file ${file}`, await configSuggestion());
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UserError(`config file ${file} is not valid JSON: ${(err as Error).message}`, 'fix the JSON syntax');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new UserError(`config file ${file} is not a JSON object`, 'write the experiment as one JSON object of config fields');
  // Keys starting with "//" are comments (JSON has none); they are dropped before validation.
  for (const k of Object.keys(parsed)) if (k.startsWith('//')) delete (parsed as Json)[k];
  return parsed as Json;
}

/**
 * An experiment file with its `extends` chain merged in: `"extends": "protocols/metaoptnet.json"` (relative to the
 * file) takes every field of that file, and this file's fields win (objects are merged, arrays replaced). So a
 * protocol (optimizer, schedule, augmentation, validation) is written once and each experiment names only its own.
 */
export async function readExperimentFile(file: string, chain: string[] = []): Promise<Json> {
  const resolved = path.resolve(file);
  if (chain.includes(resolved)) {
    throw new UserError(
      `experiment file ${file} extends itself (${[...chain, resolved].map((f) => path.basename(f)).join(' → ')})`,
      'remove the loop from the "extends" chain',
    );
  }
  const { extends: parent, ...own } = await readJsonFile(file, chain.length ? chain[chain.length - 1] : undefined);
  if (parent === undefined) return own;
  if (typeof parent !== 'string' || parent === '')
    throw new UserError(`"extends" in ${file} is not a file path`, 'write "extends": "<path of another experiment file, relative to this one>"');
  const base = await readExperimentFile(path.resolve(path.dirname(file), parent), [...chain, resolved]);
  return deepMerge(base, own);
}

/** Resolve an experiment config: defaults ← `file` (with its `extends`) ← `overrides`; validated (a UserError names the field). */
export async function loadExperimentConfig(file: string | undefined, overrides: ConfigOverrides = {}): Promise<TrainConfig> {
  const base: Json = file ? await readExperimentFile(file) : {};
  const o = overrides;
  const way = o.way ?? base.test?.way ?? 5;
  const shot = o.shot ?? base.test?.shot ?? 1;
  const query = o.query ?? base.test?.query ?? 15;
  const raw: Json = {
    ...base,
    method: o.method ?? base.method,
    backbone: o.backbone ?? base.backbone,
    imageSize: o.imageSize ?? base.imageSize,
    test: { way, shot, query },
    train: {
      way: o.trainWay ?? base.train?.way ?? way,
      shot: o.trainShot ?? base.train?.shot ?? shot,
      query: o.trainQuery ?? base.train?.query ?? query,
    },
    episodes: o.episodes ?? base.episodes ?? 20000,
    episodesPerStep: o.episodesPerStep ?? base.episodesPerStep,
    seed: o.seed ?? base.seed,
  };
  // A new dataset replaces the file's dataset (and its options); dataset options add to / override the options.
  const dataset: string = o.dataset ?? base.dataset ?? DEFAULT_DATASET;
  const fileOptions = o.dataset !== undefined && o.dataset !== base.dataset ? {} : (base.datasetOptions ?? {});
  raw.dataset = dataset;
  raw.datasetOptions = { ...fileOptions, ...(o.datasetOptions ?? {}) };
  // Neither the file nor an override chose: the dataset's own image size (CIFAR's 32 px, not an upsampled 84) and its
  // default training augmentation (the training log line says which augmentation a run uses).
  raw.imageSize ??= getDatasetProvider(dataset).nativeImageSize;
  raw.augment = o.augment ?? base.augment ?? getDatasetProvider(dataset).defaultAugment;
  if (o.lr !== undefined) raw.optimizer = { ...(base.optimizer ?? { type: 'adam' }), lr: o.lr };
  if (o.valEvery !== undefined || o.valEpisodes !== undefined) {
    raw.validation = {
      ...(base.validation ?? {}),
      ...(o.valEvery !== undefined ? { every: o.valEvery } : {}),
      ...(o.valEpisodes !== undefined ? { episodes: o.valEpisodes } : {}),
    };
  }
  const wrapperOptions = { ...(base.wrapperOptions ?? {}) };
  if (o.transform) wrapperOptions.transform = o.transform;
  if (o.slaLoss) wrapperOptions.slaLoss = o.slaLoss;
  raw.wrapperOptions = wrapperOptions;
  for (const k of Object.keys(raw)) if (raw[k] === undefined) delete raw[k];
  return validateConfig(raw);
}
