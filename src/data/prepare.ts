import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { replaceDirAtomic } from '../util/atomic.ts';
import { crashPoint } from '../util/fault.ts';
import { UserError } from '../util/errors.ts';
import { withPrepareLock } from './cache-lock.ts';
import { CACHE_FORMAT, CACHE_FORMAT_VERSION, cacheFingerprint, refuseForeignCacheDir, splitFingerprint, type CacheManifest, type CacheSplitEntry } from './cache.ts';
import { checksumMismatch, readSha256Sums, sha256File, sha256Hex } from './checksums.ts';
import { checkSplitsDisjoint, readSplitCsv, SPLIT_NAMES, type SplitItems, type SplitName } from './csv.ts';
import { decodeImage, RESIZE_METHOD } from './decode.ts';
import { DATASET_LAYOUT_HELP, inspectDatasetFolder } from './locate.ts';
import { readImagesFromArchive, readImagesFromFolder, TaskPool } from './sources.ts';

export interface PrepareProgress {
  /**
   * `decode`: images read+decoded so far; `hash`: split pixel files fingerprinted so far; `wait`: another
   * process is preparing the same cache (`holder` says which) and this one waits for it (done = total = 0).
   */
  phase: 'decode' | 'hash' | 'wait';
  done: number;
  total: number;
  holder?: string;
}

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

export interface PrepareResult {
  cacheDir: string;
  manifest: CacheManifest;
}

const ITEM_SLOT_EMPTY = '';

/**
 * Decode every image of the three splits into a compact uint8 cache (layout in cache.ts).
 * The cache is built in a temp folder and swapped in only when complete, so a failure
 * (bad image, truncated archive, Ctrl-C) leaves the previous cache, or nothing, behind.
 */
export async function prepareDataset(options: PrepareOptions): Promise<PrepareResult> {
  const { source, cacheDir, imageSize = 84, dataset = 'mini-imagenet', provider, normalization, prefer = 'auto', maxInFlight = 64, onProgress, signal } = options;
  if (!Number.isInteger(imageSize) || imageSize < 8 || imageSize > 1024) {
    throw new UserError(`image size ${imageSize} is not supported`, 'use an integer size from 8 to 1024, e.g. 84 (standard) or 32 (fast CPU runs)');
  }
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

  // filename -> (split, item) so images can arrive in any order (archives are not sorted).
  const slotOf = new Map<string, { s: number; item: number }>();
  splits.forEach((sp, s) => sp.filenames.forEach((f, item) => slotOf.set(f, { s, item })));
  const imageSha = splits.map((sp) => new Array<string>(sp.filenames.length).fill(ITEM_SLOT_EMPTY));
  const total = slotOf.size;
  const bytesPerImage = imageSize * imageSize * 3;

  const previousConcurrency = sharp.concurrency();
  // One libvips thread per image: the images are tiny, so parallelism comes from decoding many
  // images at once on libuv's pool (UV_THREADPOOL_SIZE, default 4 threads), which keeps both cores busy.
  sharp.concurrency(1);
  sharp.cache(false);

  // Under the cache's lock: a killed prepare's temp folder is removed first (once stale), and a second
  // prepare of the same cache waits for the first and reuses what it made (see cache-lock.ts).
  const lockOptions = { signal, onWait: (h: { pid: number; command: string }) => onProgress?.({ phase: 'wait' as const, done: 0, total: 0, holder: `process ${h.pid} (fewshot ${h.command})` }) };
  const request = { dataset, imageSize, provider, sourcePath: info.dir };
  let manifest: CacheManifest | undefined;
  try {
    manifest = await withPrepareLock(cacheDir, request, lockOptions, async () => {
      await replaceDirAtomic(cacheDir, async (tmp) => {
        const handles = await Promise.all(splits.map((sp) => fs.open(path.join(tmp, `${sp.split}.u8`), 'w')));
        const stats = { done: 0, resized: 0, sizes: new Map<string, number>() };
        const archives: CacheManifest['source']['archives'] = [];
        const pool = new TaskPool(maxInFlight, signal);
        const started = performance.now();
        try {
          const sink = async (filename: string, bytes: Buffer, origin: string): Promise<void> => {
            const slot = slotOf.get(filename);
            if (!slot) return;
            if (imageSha[slot.s][slot.item] !== ITEM_SLOT_EMPTY) {
              throw new UserError(`image ${filename} occurs twice in the archives (again in ${origin})`, 'keep each image in exactly one archive (the standard four archives hold each image once)');
            }
            imageSha[slot.s][slot.item] = sha256Hex(bytes);
            const decoded = await decodeImage(bytes, imageSize, filename, origin);
            if (decoded.resized) stats.resized++;
            const sizeKey = `${decoded.sourceWidth}x${decoded.sourceHeight}`;
            stats.sizes.set(sizeKey, (stats.sizes.get(sizeKey) ?? 0) + 1);
            await handles[slot.s].write(decoded.pixels, 0, bytesPerImage, slot.item * bytesPerImage);
            stats.done++;
            if (onProgress && (stats.done % 500 === 0 || stats.done === total)) onProgress({ phase: 'decode', done: stats.done, total });
          };

          if (useFolder) {
            const imagesDir = path.join(info.dir, 'images');
            await readImagesFromFolder(imagesDir, splits.flatMap((sp) => sp.filenames), pool, sink);
          } else {
            for (const archive of info.archives) {
              const expected = sums.get(path.basename(archive));
              const read = await readImagesFromArchive(archive, expected, (f) => slotOf.has(f), pool, sink);
              archives.push({ file: path.basename(archive), sha256: read.sha256, checkedAgainstSha256Sums: expected !== undefined });
            }
          }
          await pool.drain();
          signal?.throwIfAborted();
        } finally {
          await Promise.all(handles.map((h) => h.close()));
        }
        const wallSeconds = (performance.now() - started) / 1000;

        if (stats.done !== total) {
          const missing: string[] = [];
          splits.forEach((sp, s) => sp.filenames.forEach((f, item) => imageSha[s][item] === ITEM_SLOT_EMPTY && missing.push(`${f} (${sp.split})`)));
          throw new UserError(
            `${missing.length} of ${total} images listed in the split CSVs are not in the archives of ${info.dir}, e.g. ${missing.slice(0, 3).join(', ')}`,
            'put all images in the archives (as images/<file>.jpg) or unpack them into an images/ folder beside the CSVs, then run `fewshot data prepare` again',
          );
        }

        const splitEntries = {} as Record<SplitName, CacheSplitEntry>;
        for (let s = 0; s < splits.length; s++) {
          const sp = splits[s];
          const pixelsFile = `${sp.split}.u8`;
          const itemsFile = `${sp.split}.items.csv`;
          const labelNames = Array.from(sp.labels, (c) => sp.classes[c]);
          const rows = sp.filenames.map((f, i) => `${f},${labelNames[i]},${imageSha[s][i]}`);
          await fs.writeFile(path.join(tmp, itemsFile), `filename,label,sha256\n${rows.join('\n')}\n`);
          splitEntries[sp.split] = {
            numItems: sp.filenames.length,
            classes: sp.classes,
            itemsPerClass: sp.itemsPerClass,
            classOffsets: sp.classOffsets,
            pixelsFile,
            pixelsBytes: sp.filenames.length * bytesPerImage,
            pixelsSha256: await sha256File(path.join(tmp, pixelsFile)),
            itemsFile,
            splitFingerprint: splitFingerprint(sp.filenames, labelNames, imageSha[s]),
          };
          onProgress?.({ phase: 'hash', done: s + 1, total: splits.length });
        }

        manifest = {
          format: CACHE_FORMAT,
          formatVersion: CACHE_FORMAT_VERSION,
          dataset,
          ...(provider ? { provider } : {}),
          ...(normalization ? { normalization: { mean: [...normalization.mean] as [number, number, number], std: [...normalization.std] as [number, number, number], ...(normalization.origin ? { origin: normalization.origin } : {}) } } : {}),
          imageSize,
          layout: `uint8 [n, ${imageSize}, ${imageSize}, 3] NHWC RGB per split, items grouped by class in CSV order`,
          resize: RESIZE_METHOD,
          decoder: { sharp: sharp.versions.sharp ?? 'unknown', vips: sharp.versions.vips },
          createdAt: new Date().toISOString(),
          source: { kind: useFolder ? 'folder' : 'archives', path: info.dir, archives, csvSha256 },
          decode: {
            images: total,
            wallSeconds: Math.round(wallSeconds * 1000) / 1000,
            imagesPerSecond: Math.round(total / wallSeconds),
            resized: stats.resized,
            sourceSizes: Object.fromEntries([...stats.sizes].sort((a, b) => b[1] - a[1])),
          },
          splits: splitEntries,
          cacheFingerprint: cacheFingerprint(imageSize, splitEntries),
        };
        crashPoint('prepare:pixels-written');
        await fs.writeFile(path.join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
      }, 'prepare');
      return manifest!;
    });
  } finally {
    sharp.concurrency(previousConcurrency);
    sharp.cache(true);
  }
  return { cacheDir, manifest: manifest! };
}
