import { z } from 'zod';
import { DATASET_LAYOUT_HELP, locateDataset } from '../locate.ts';
import { MINI_IMAGENET_NORMALIZATION } from '../normalize.ts';
import { prepareDataset } from '../prepare.ts';
import type { DatasetProvider } from './contract.ts';

const optionsSchema = z
  .object({
    /** Read the unpacked images/ folder or the .tar.gz archives (auto: the folder when present). */
    prefer: z.enum(['auto', 'folder', 'archives']).optional(),
  })
  .strict();

/**
 * mini-ImageNet (Vinyals et al. 2016) with the Ravi & Larochelle (2017) class split: 64/16/20 classes of
 * 600 images. The cache, its fingerprints and the committed episode files are exactly those of the
 * pre-provider code (this provider only wraps it).
 */
export const miniImageNetProvider: DatasetProvider<z.infer<typeof optionsSchema>> = {
  id: 'mini-imagenet',
  description: 'mini-ImageNet, Ravi & Larochelle split (64/16/20 classes × 600 images)',
  optionsSchema,
  sourceHelp: DATASET_LAYOUT_HELP,
  name: () => 'mini-imagenet',
  locate: (_options, ctx) => locateDataset(ctx.flag, ctx.env, ctx.cwd),
  prepare: (r) =>
    prepareDataset({
      source: r.source,
      cacheDir: r.cacheDir,
      imageSize: r.imageSize,
      dataset: r.dataset,
      prefer: r.options.prefer ?? 'auto',
      provider: { id: 'mini-imagenet', options: r.options },
      normalization: { ...MINI_IMAGENET_NORMALIZATION, origin: 'MetaOptNet loader constants (ImageNet statistics)' },
      signal: r.signal,
      onProgress: r.onProgress,
    }),
  normalization: () => MINI_IMAGENET_NORMALIZATION,
  defaultAugment: 'none',
  // the standard sets' files are committed (episodes/mini-imagenet/): a missing one is an error, never made
  makesMissingEpisodeFiles: false,
};
