import { promises as fs } from 'node:fs';
import path from 'node:path';
import {
  cacheDirFor,
  DEFAULT_CACHE_ROOT,
  gatherImages,
  loadSplit,
  readCacheManifest,
  type CacheManifest,
  type LoadedSplit,
  type Normalization,
  type SplitName,
} from '../data/index.ts';
import { getDatasetProvider, resolveDataset, type ResolvedDataset } from '../data/providers/registry.ts';
import {
  checkEpisodesMatchSplit,
  EPISODES_DIR,
  episodeStream,
  readEpisodeFile,
  type EpisodeIndices,
  type EpisodeSpec,
  type ImageSource,
} from '../episodes/index.ts';
// The standard-file policy lives in episodes/; the experiment layer offers it beside the rest of the workspace.
export { defaultEpisodeFile, episodeFileFor } from '../episodes/standard.ts';
import type { EpisodeList } from '../eval/evaluator.ts';
import { UserError } from '../util/errors.ts';
import { silentReporter, type ExperimentReporter } from './reporter.ts';

/**
 * Where an experiment's data lives and how to open it: the cache folder per dataset and size, preparing
 * it on first use through the dataset's provider, and turning splits and episode files into the trainer's
 * and evaluator's inputs. Library code: no flags, no printing (messages go to the reporter).
 */
export const CACHE_ENV_VAR = 'FEWSHOT_CACHE';

/** Which dataset and where its source, cache and episode files are (the workspace part of `ExperimentOptions`). */
export interface WorkspaceOptions {
  /** Dataset provider id and its options (as in the config's `dataset` / `datasetOptions`). */
  dataset: string;
  datasetOptions?: Record<string, unknown>;
  /** Source location for providers that locate it (`--data`); else the provider's env var / default. */
  data?: string;
  /** Explicit cache folder; else `<$FEWSHOT_CACHE or .cache>/<dataset name>-<size>`. */
  cache?: string;
  /**
   * Folder of episode files. Default: a dataset's committed files are read from the package's own
   * `episodes/` (so an installed package finds them wherever it runs), and the files made for user datasets
   * go to `./episodes/<dataset>/` in the working directory.
   */
  episodesDir?: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** The dataset as the experiment resolved it (resolve.ts): used as it is instead of resolving `dataset` and its options again. */
  resolved?: ResolvedDataset;
}

export interface OpenedSplit {
  name: SplitName;
  loaded: LoadedSplit;
  source: ImageSource;
  splitFingerprint: string;
  cacheFingerprint: string;
}

export interface OpenedDataset {
  /** Provider, validated options and dataset name. */
  dataset: ResolvedDataset;
  cacheDir: string;
  manifest: CacheManifest;
  normalization: Normalization;
  /** The explicit episode folder, if one was given (else the package's / the working directory's, see `defaultEpisodeFile`). */
  episodesDir?: string;
  split(name: SplitName): Promise<OpenedSplit>;
}

/**
 * The dataset options with `--data` applied: for providers with a `sourceOption`, `data` fills that option
 * (absolute path) unless the options already set it.
 */
export function datasetOptionsWithData(dataset: string, options: Record<string, unknown> = {}, data?: string, cwd = process.cwd()): Record<string, unknown> {
  const key = getDatasetProvider(dataset).sourceOption;
  if (!key || data === undefined || options[key] !== undefined) return options;
  return { ...options, [key]: path.resolve(cwd, data) };
}

function resolveWorkspaceDataset(ws: WorkspaceOptions): ResolvedDataset {
  return ws.resolved ?? resolveDataset(ws.dataset, datasetOptionsWithData(ws.dataset, ws.datasetOptions, ws.data, ws.cwd));
}

async function hasCache(dir: string): Promise<boolean> {
  return fs.stat(path.join(dir, 'manifest.json')).then(
    () => true,
    () => false,
  );
}

/**
 * The image size a dataset is prepared at when none is given: its own where all its images have one (CIFAR-FS and
 * FC100: 32 px, so a cache is not upsampled to 84 px unasked), else 84 (the mini-ImageNet standard).
 */
export function defaultImageSize(dataset: string): number {
  return getDatasetProvider(dataset).nativeImageSize ?? 84;
}

export function resolveCacheDir(ws: Pick<WorkspaceOptions, 'cache' | 'env'>, datasetName: string, imageSize: number): string {
  if (ws.cache) return ws.cache;
  const root = (ws.env ?? process.env)[CACHE_ENV_VAR] ?? DEFAULT_CACHE_ROOT;
  return cacheDirFor(root, datasetName, imageSize);
}

/** Prepare (or rebuild) the cache of a dataset at one image size; returns its folder and manifest. */
export async function prepareCache(
  ws: WorkspaceOptions,
  imageSize: number,
  opts: { reporter?: ExperimentReporter; signal?: AbortSignal } = {},
): Promise<{ cacheDir: string; manifest: CacheManifest; dataset: ResolvedDataset }> {
  const reporter = opts.reporter ?? silentReporter;
  const dataset = resolveWorkspaceDataset(ws);
  const source = dataset.provider.locate(dataset.options, { flag: ws.data, env: ws.env ?? process.env, cwd: ws.cwd ?? process.cwd() });
  const cacheDir = resolveCacheDir(ws, dataset.name, imageSize);
  reporter.log(`preparing ${dataset.name} (${dataset.provider.id}) from ${source} at ${imageSize}px into ${cacheDir} (once)`);
  let bar: ReturnType<ExperimentReporter['progress']> | undefined;
  const t0 = performance.now();
  try {
    const { manifest } = await dataset.provider.prepare({
      source,
      cacheDir,
      imageSize,
      options: dataset.options,
      dataset: dataset.name,
      signal: opts.signal,
      onProgress: (p) => {
        if (p.phase === 'wait') reporter.log(`waiting for ${p.holder ?? 'another process'}, which is preparing ${cacheDir}`);
        if (p.phase !== 'decode') return;
        bar ??= reporter.progress('decode', p.total);
        bar.update(p.done);
      },
    });
    reporter.log(`prepared in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return { cacheDir, manifest, dataset };
  } finally {
    bar?.stop();
  }
}

function sameOptions(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const norm = (o: Record<string, unknown>) =>
    JSON.stringify(
      Object.keys(o)
        .sort()
        .map((k) => [k, o[k]]),
    );
  return norm(a) === norm(b);
}

/** Open a dataset's cache (preparing it first when missing and `autoPrepare`), checking it is that dataset's. */
export async function openDataset(
  ws: WorkspaceOptions,
  imageSize: number,
  opts: { autoPrepare: boolean; reporter?: ExperimentReporter; signal?: AbortSignal },
): Promise<OpenedDataset> {
  const dataset = resolveWorkspaceDataset(ws);
  const cacheDir = resolveCacheDir(ws, dataset.name, imageSize);
  if (!(await hasCache(cacheDir))) {
    if (!opts.autoPrepare) {
      throw new UserError(`no image cache at ${cacheDir}`, `run \`fewshot data prepare --dataset ${dataset.provider.id} --image-size ${imageSize}\``);
    }
    await prepareCache(ws, imageSize, opts);
  }
  const manifest = await readCacheManifest(cacheDir);
  if (manifest.imageSize !== imageSize) {
    throw new UserError(
      `the cache at ${cacheDir} holds ${manifest.imageSize}px images, but ${imageSize}px were asked for`,
      `use --image-size ${manifest.imageSize}, or point --cache at a ${imageSize}px cache (or omit --cache to use the default one per size)`,
    );
  }
  if (
    manifest.dataset !== dataset.name ||
    (manifest.provider && (manifest.provider.id !== dataset.provider.id || !sameOptions(manifest.provider.options, dataset.options)))
  ) {
    const had = manifest.provider ? `${manifest.provider.id} ${JSON.stringify(manifest.provider.options)}` : 'no recorded provider';
    throw new UserError(
      `the cache at ${cacheDir} holds dataset "${manifest.dataset}" (${had}), but "${dataset.name}" (${dataset.provider.id} ${JSON.stringify(dataset.options)}) was asked for`,
      "point --cache at this dataset's cache, or omit --cache (each dataset has its own default cache), or prepare it again with `fewshot data prepare`",
    );
  }
  const normalization = manifest.normalization ?? dataset.provider.normalization(dataset.options, manifest);
  const opened = new Map<SplitName, Promise<OpenedSplit>>();
  return {
    dataset,
    cacheDir,
    manifest,
    normalization,
    episodesDir: ws.episodesDir,
    split(name) {
      if (!opened.has(name)) {
        opened.set(
          name,
          loadSplit(cacheDir, name).then((loaded) => ({
            name,
            loaded,
            source: { imageSize: loaded.imageSize, gather: (items: ArrayLike<number>) => gatherImages(loaded, items, normalization) },
            splitFingerprint: loaded.splitFingerprint,
            // the fingerprint of the pixels as verified on load, not the one the manifest claims
            cacheFingerprint: loaded.verifiedCacheFingerprint ?? loaded.cacheFingerprint,
          })),
        );
      }
      return opened.get(name)!;
    },
  };
}

/** Where episode files made for user datasets go: `./episodes` of the working directory. */
export function localEpisodesDir(): string {
  return EPISODES_DIR;
}

/** Read and verify an episode file against the loaded split and the expected task shape. */
export async function openEpisodeList(file: string, split: OpenedSplit, spec: EpisodeSpec): Promise<EpisodeList & { sha256: string }> {
  const ep = await readEpisodeFile(file);
  checkEpisodesMatchSplit(ep, split.loaded);
  const s = ep.header.spec;
  if (s.way !== spec.way || s.shot !== spec.shot || s.query !== spec.query) {
    throw new UserError(
      `${file} holds ${s.way}-way ${s.shot}-shot ${s.query}-query episodes, but ${spec.way}-way ${spec.shot}-shot ${spec.query}-query was asked for`,
      `make a matching file with \`fewshot episodes make --split ${ep.header.split} --way ${spec.way} --shot ${spec.shot} --query ${spec.query}\` and pass it with --test-file/--val-file`,
    );
  }
  return { count: ep.episodes.length, spec, sha256: ep.sha256, get: (i) => ep.episodes[i] };
}

/** Episode i of the training stream: depends only on (seed, split, spec, i). */
export function trainEpisodeSampler(split: OpenedSplit, spec: EpisodeSpec, seed: number): (index: number) => EpisodeIndices {
  return episodeStream(split.loaded, spec, { seed, splitName: split.name });
}
