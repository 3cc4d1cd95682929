import type { z } from 'zod';
import type { CacheManifest } from '../cache.ts';
import type { Normalization } from '../normalize.ts';
import type { PrepareProgress } from '../cache-writer.ts';
// Type only: a provider lists its episode sets in the episode layer's own type; it runs nothing of that layer.

/** Where a provider looks for its source: the `--data` flag, the environment, the working directory. */
export interface LocateContext {
  /** `--data` (or the `data` experiment option); a provider may also take the location from its options. */
  flag?: string;
  env: Record<string, string | undefined>;
  cwd: string;
}

/** What a dataset provider's `prepare` is given: the located source, the cache folder, the image size and its options. */
export interface ProviderPrepareRequest<O> {
  /** What `locate` returned. */
  source: string;
  cacheDir: string;
  imageSize: number;
  options: O;
  /** The dataset name (`name(options)`), recorded in the manifest and in episode files. */
  dataset: string;
  signal?: AbortSignal;
  onProgress?: (p: PrepareProgress) => void;
}

/**
 * A dataset provider: how one kind of source becomes the toolkit's uint8 image cache (cache.ts). Everything
 * downstream (episodes, training, evaluation, results) reads only the cache, so a provider is the one place
 * that knows a dataset's files. Built-ins are registered in providers/builtin.ts; a plugin module calls
 * `registerDatasetProvider` at import time (load it with `--plugin`).
 */
export interface DatasetProvider<O extends Record<string, unknown> = Record<string, unknown>> {
  /** `--dataset <id>`: lowercase letters, digits, dashes. */
  id: string;
  description: string;
  /** Strict schema of the provider's options (`datasetOptions` in an experiment config); unknown keys are errors. */
  optionsSchema: z.ZodType<O, any>;
  /**
   * For providers whose source location is part of the dataset's identity (user folders, CSV files): the
   * option that holds it. `--data <path>` then sets this option (as an absolute path), so the config, the
   * cache check and the records all carry it. Benchmarks identified by content (mini-ImageNet) leave it out.
   */
  sourceOption?: string;
  /** One line for `--help` and error messages: what the source looks like and how to point at it. */
  sourceHelp: string;
  /**
   * The dataset's name for these options: names the cache folder (`<cache root>/<name>-<size>`), the
   * episode-file folder (`episodes/<name>/`) and the results folder (`results/<name>/`), and is recorded
   * in episode files, so episodes of one dataset are never used on another.
   */
  name(options: O): string;
  /** Resolve the source location (absolute path); an unusable location is a UserError naming it. */
  locate(options: O, ctx: LocateContext): string;
  /** Decode the source once into `cacheDir` (atomically: a failure leaves nothing half-written). */
  prepare(request: ProviderPrepareRequest<O>): Promise<{ manifest: CacheManifest }>;
  /** Normalisation for a prepared cache (constants, or what prepare computed and recorded in the manifest). */
  normalization(options: O, manifest: CacheManifest): Normalization;
  /** Training augmentation used when the config does not say (`augment`); the training log line names it. */
  defaultAugment: 'none' | 'metaoptnet';
  /**
   * The side of the source images when they all have one (CIFAR-100: 32 px): the default cache and training size
   * when neither a flag nor the config gives one, so small images are not upsampled to 84 px unasked.
   */
  nativeImageSize?: number;
  /**
   * (A dataset whose fixed episode sets differ from the usual protocol lists them with the episode layer's
   * `registerStandardEpisodeSets(id, sets)`: the episode is the episode layer's, and data sits below it.)
   *
   * True when a missing default episode file may be made on first use (user datasets, which have no
   * committed files). False for benchmarks whose files are committed: a missing one is an error.
   */
  makesMissingEpisodeFiles: boolean;
}
