import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { UserError } from '../../util/errors.ts';
import { SPLIT_NAMES } from '../split-csv.ts';
import { MINI_IMAGENET_NORMALIZATION } from '../normalize.ts';
import { writeImageCache, type FileSplit } from '../cache-writer.ts';
import { listTieredImagenet } from '../readers/tiered-imagenet.ts';
import type { DatasetProvider } from './contract.ts';

export const TIERED_ENV_VAR = 'FEWSHOT_TIERED_IMAGENET';

const SOURCE_HELP = `the tiered-ImageNet class folders (one per WordNet id, e.g. n01530575/, holding its images): <root>/train|val|test/<wnid>/ or all 608 under <root>/ (or <root>/images/); pass <root> with --data or $${TIERED_ENV_VAR}`;

const optionsSchema = z.object({}).strict();

/** tiered-ImageNet (Ren et al., ICLR 2018): 351/97/160 ILSVRC classes in 20/6/8 high-level categories. */
export const tieredImagenetProvider: DatasetProvider<z.infer<typeof optionsSchema>> = {
  id: 'tiered-imagenet',
  description: 'tiered-ImageNet from its class-folder distribution: 351/97/160 classes (by high-level category)',
  optionsSchema,
  sourceHelp: SOURCE_HELP,
  name: () => 'tiered-imagenet',
  locate: (_o, ctx) => {
    const given = ctx.flag ?? ctx.env[TIERED_ENV_VAR];
    const root = path.resolve(ctx.cwd, given ?? path.join('data', 'tiered-imagenet'));
    if (!existsSync(root) || !statSync(root).isDirectory())
      throw new UserError(`tiered-ImageNet folder ${root} does not exist or is not a folder`, `put ${SOURCE_HELP}`);
    return root;
  },
  prepare: async (r) => {
    const listing = await listTieredImagenet(r.source);
    const fileSplits: FileSplit[] = SPLIT_NAMES.map((s) => ({
      split: s,
      classes: listing.splits[s].map((c) => ({ name: c.wnid, items: c.files.map((f) => ({ file: path.join(c.dir, f), id: `${c.wnid}/${f}` })) })),
    }));
    return writeImageCache({
      cacheDir: r.cacheDir,
      imageSize: r.imageSize,
      dataset: r.dataset,
      provider: { id: 'tiered-imagenet', options: r.options },
      splits: fileSplits,
      normalization: { ...MINI_IMAGENET_NORMALIZATION, origin: 'MetaOptNet loader constants (ImageNet statistics), as for mini-ImageNet' },
      source: { kind: `tiered-imagenet-${listing.layout}`, path: listing.root },
      signal: r.signal,
      onProgress: r.onProgress,
    });
  },
  normalization: () => MINI_IMAGENET_NORMALIZATION,
  defaultAugment: 'metaoptnet',
  makesMissingEpisodeFiles: true,
};
