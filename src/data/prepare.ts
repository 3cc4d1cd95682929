import path from 'node:path';
import { UserError } from '../util/errors.ts';
import { refuseForeignCacheDir } from './cache.ts';
import { checkImageSize, writeImageCache, type FileSplit, type PrepareProgress, type PrepareResult } from './cache-writer.ts';
import { checksumMismatch, readSha256Sums, sha256File } from './checksums.ts';
import { SPLIT_NAMES, type SplitItems } from './split-csv.ts';
import { checkSplitsDisjoint, readSplitCsv } from './csv.ts';
import { DATASET_LAYOUT_HELP, inspectDatasetFolder } from './locate.ts';
import { readImagesFromArchive, readImagesFromFolder } from './sources.ts';

export interface PrepareOptions {
  /** The mini-ImageNet folder (see `locateDataset`). */
  source: string;
  /** Cache folder to create or replace, e.g. `cacheDirFor('.cache', 'mini-imagenet', 84)`. */
  cacheDir: string;
  /** Side S of the cached S×S images. */
  imageSize?: number;
  dataset?: string;
  /** Recorded in the manifest: the provider that asked for this cache and its resolved options. */
  provider?: { id: string; options: Record<string, unknown> };
  /** Recorded in the manifest: the normalisation gathered images use. */
  normalization?: { mean: readonly [number, number, number]; std: readonly [number, number, number]; origin?: string };
  /** `auto`: the images/ folder when present, else the archives. */
  prefer?: 'auto' | 'folder' | 'archives';
  /** Images read/decoded concurrently (sharp decodes on libuv's thread pool). */
  maxInFlight?: number;
  onProgress?: (p: PrepareProgress) => void;
  /** Abort (e.g. on Ctrl-C): in-flight decodes finish, the temp folder is removed, the promise rejects with the reason. */
  signal?: AbortSignal;
}

/** A split CSV's items as the cache writer takes them: classes in CSV order, each with its files. */
function fileSplitOf(sp: SplitItems): FileSplit {
  return {
    split: sp.split,
    classes: sp.classes.map((name, c) => ({
      name,
      items: sp.filenames.slice(sp.classOffsets[c], sp.classOffsets[c] + sp.itemsPerClass[c]).map((id) => ({ id })),
    })),
  };
}

/**
 * mini-ImageNet's source reader: checks the folder, the split CSVs and SHA256SUMS, then streams every image
 * of the three splits (from the images/ folder or straight out of the .tar.gz archives, in archive order)
 * into the cache writer. A failure (bad image, truncated archive, Ctrl-C) leaves the previous cache, or nothing.
 */
export async function prepareDataset(options: PrepareOptions): Promise<PrepareResult> {
  const { source, cacheDir, imageSize = 84, prefer = 'auto' } = options;
  checkImageSize(imageSize);
  await refuseForeignCacheDir(cacheDir);
  const info = inspectDatasetFolder(path.resolve(source));
  if (info.problems.length > 0) throw new UserError(`cannot prepare mini-ImageNet from ${source}: ${info.problems.join('; ')}`, DATASET_LAYOUT_HELP);
  const useFolder = prefer === 'folder' || (prefer === 'auto' && info.hasImagesDir);
  if (useFolder && !info.hasImagesDir) throw new UserError(`${source} has no images/ folder`, DATASET_LAYOUT_HELP);
  if (!useFolder && info.archives.length === 0) throw new UserError(`${source} has no .tar.gz archives`, DATASET_LAYOUT_HELP);

  const sums = await readSha256Sums(info.dir);
  const csvSha256: Record<string, string> = {};
  const splits: SplitItems[] = [];
  for (const split of SPLIT_NAMES) {
    const csvPath = path.join(info.dir, `${split}.csv`);
    splits.push(await readSplitCsv(csvPath, split));
    csvSha256[split] = await sha256File(csvPath);
    const expected = sums.get(`${split}.csv`);
    if (expected && expected !== csvSha256[split]) throw checksumMismatch(csvPath, expected, csvSha256[split]);
  }
  checkSplitsDisjoint(splits);
  const listed = new Set(splits.flatMap((sp) => sp.filenames));

  return writeImageCache({
    cacheDir,
    imageSize,
    dataset: options.dataset ?? 'mini-imagenet',
    provider: options.provider,
    normalization: options.normalization,
    splits: splits.map(fileSplitOf),
    source: { kind: useFolder ? 'folder' : 'archives', path: info.dir, files: csvSha256 },
    itemOrder: 'items grouped by class in CSV order',
    maxInFlight: options.maxInFlight ?? 64,
    onProgress: options.onProgress,
    signal: options.signal,
    stream: {
      read: async (sink, pool) => {
        if (useFolder)
          return readImagesFromFolder(
            path.join(info.dir, 'images'),
            splits.flatMap((sp) => sp.filenames),
            pool,
            sink,
          );
        const archives = [];
        for (const archive of info.archives) {
          const expected = sums.get(path.basename(archive));
          const read = await readImagesFromArchive(archive, expected, (f) => listed.has(f), pool, sink);
          archives.push({ file: path.basename(archive), sha256: read.sha256, checkedAgainstSha256Sums: expected !== undefined });
        }
        return { archives };
      },
      missing: (missing, total) =>
        new UserError(
          `${missing.length} of ${total} images listed in the split CSVs are not in the archives of ${info.dir}, e.g. ${missing.slice(0, 3).join(', ')}`,
          'put all images in the archives (as images/<file>.jpg) or unpack them into an images/ folder beside the CSVs, then run `fewshot data prepare` again',
        ),
    },
  });
}
