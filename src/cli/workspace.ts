import { promises as fs } from 'node:fs';
import path from 'node:path';
import { cacheDirFor, DEFAULT_CACHE_ROOT, gatherImages, loadSplit, locateDataset, prepareDataset, readCacheManifest, type LoadedSplit, type SplitName } from '../data/index.ts';
import { checkEpisodesMatchSplit, episodeFileName, readEpisodeFile, sampleEpisode } from '../episodes/index.ts';
import type { EpisodeList } from '../eval/evaluator.ts';
import type { EpisodeIndices, EpisodeShape, ImageSource } from '../train/episode-images.ts';
import { startProgress } from '../util/progress.ts';
import { onStop } from '../util/signal.ts';
import { UserError } from '../util/errors.ts';

/**
 * Glue between the CLI and the data/episode layers: where the cache lives, preparing it on first use,
 * and turning splits and episode files into the trainer's and evaluator's inputs.
 */
export const CACHE_ENV_VAR = 'FEWSHOT_CACHE';

export interface OpenedSplit {
  name: SplitName;
  loaded: LoadedSplit;
  source: ImageSource;
  splitFingerprint: string;
  cacheFingerprint: string;
}

export interface OpenedDataset {
  cacheDir: string;
  split(name: SplitName): Promise<OpenedSplit>;
}

async function hasCache(dir: string): Promise<boolean> {
  return fs.stat(path.join(dir, 'manifest.json')).then(() => true, () => false);
}

export function resolveCacheDir(cache: string | undefined, imageSize: number): string {
  if (cache) return cache;
  const root = process.env[CACHE_ENV_VAR] ?? DEFAULT_CACHE_ROOT;
  return cacheDirFor(root, 'mini-imagenet', imageSize);
}

/** Prepare the cache with a progress bar (used by `data prepare` and by `run` on first use). */
export async function prepareWithProgress(source: string, cacheDir: string, imageSize: number): Promise<void> {
  process.stderr.write(`preparing mini-ImageNet from ${source} at ${imageSize}px into ${cacheDir} (once)\n`);
  let bar: ReturnType<typeof startProgress> | undefined;
  const t0 = performance.now();
  // Ctrl-C aborts cleanly: prepare removes its temp folder, the previous cache (if any) stays.
  const abort = new AbortController();
  const offStop = onStop(() => abort.abort());
  try {
    await prepareDataset({
      source, cacheDir, imageSize, signal: abort.signal,
      onProgress: (p) => {
        if (p.phase !== 'decode') return;
        bar ??= startProgress('decode', p.total);
        bar.update(p.done);
      },
    });
  } finally {
    offStop();
    bar?.stop();
  }
  process.stderr.write(`prepared in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}

export async function openDataset(opts: { data?: string; cache?: string; imageSize: number; autoPrepare: boolean }): Promise<OpenedDataset> {
  const cacheDir = resolveCacheDir(opts.cache, opts.imageSize);
  if (!(await hasCache(cacheDir))) {
    if (!opts.autoPrepare) throw new UserError(`no image cache at ${cacheDir}`, `run \`fewshot data prepare --image-size ${opts.imageSize}\``);
    await prepareWithProgress(locateDataset(opts.data), cacheDir, opts.imageSize);
  }
  const manifest = await readCacheManifest(cacheDir);
  if (manifest.imageSize !== opts.imageSize) {
    throw new UserError(`the cache at ${cacheDir} holds ${manifest.imageSize}px images, but ${opts.imageSize}px were asked for`, `use --image-size ${manifest.imageSize}, or point --cache at a ${opts.imageSize}px cache (or omit --cache to use the default one per size)`);
  }
  const opened = new Map<SplitName, Promise<OpenedSplit>>();
  return {
    cacheDir,
    split(name) {
      if (!opened.has(name)) {
        opened.set(
          name,
          loadSplit(cacheDir, name).then((loaded) => ({
            name, loaded,
            source: { imageSize: loaded.imageSize, gather: (items: ArrayLike<number>) => gatherImages(loaded, items) },
            splitFingerprint: loaded.splitFingerprint,
            cacheFingerprint: loaded.verifiedCacheFingerprint ?? loaded.cacheFingerprint,
          })),
        );
      }
      return opened.get(name)!;
    },
  };
}

/** The committed episode file for a split and spec, e.g. episodes/mini-imagenet/test_5w1s15q_seed0_2000.json */
export function defaultEpisodeFile(split: 'val' | 'test', spec: EpisodeShape): string {
  return path.join('episodes', episodeFileName({ dataset: 'mini-imagenet', split, spec, seed: 0, count: split === 'test' ? 2000 : 1000 }));
}

/** Read and verify an episode file against the loaded split and the expected task shape. */
export async function openEpisodeList(file: string, split: OpenedSplit, spec: EpisodeShape): Promise<EpisodeList & { sha256: string }> {
  const ep = await readEpisodeFile(file);
  checkEpisodesMatchSplit(ep, split.loaded);
  const s = ep.header.spec;
  if (s.way !== spec.way || s.shot !== spec.shot || s.query !== spec.query) {
    throw new UserError(
      `${file} holds ${s.way}-way ${s.shot}-shot ${s.query}-query episodes, but ${spec.way}-way ${spec.shot}-shot ${spec.query}-query was asked for`,
      `make a matching file with \`fewshot episodes make --split ${ep.header.split} --way ${spec.way} --shot ${spec.shot} --query ${spec.query}\` and pass it with --test-file/--val-file`,
    );
  }
  return { count: ep.episodes.length, shape: spec, sha256: ep.sha256, get: (i) => ep.episodes[i] };
}

/** Episode i of the training stream: depends only on (seed, split, spec, i). */
export function trainEpisodeSampler(split: OpenedSplit, spec: EpisodeShape, seed: number): (index: number) => EpisodeIndices {
  return (index) => sampleEpisode(split.loaded, spec, { seed, splitName: split.name, index });
}
