import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { replaceDirAtomic } from '../util/atomic.ts';
import { UserError } from '../util/errors.ts';
import { withPrepareLock } from './cache-lock.ts';
import { CACHE_FORMAT, CACHE_FORMAT_VERSION, cacheFingerprint, refuseForeignCacheDir, splitFingerprint, type CacheManifest, type CacheSplitEntry } from './cache.ts';
import { sha256File, sha256Hex } from './checksums.ts';
import { SPLIT_NAMES, type SplitName } from './csv.ts';
import { decodeImage, RESIZE_METHOD, resizeRawRgb } from './decode.ts';
import type { Normalization } from './normalize.ts';
import { toGrayRgb } from './pixels.ts';
import type { PrepareProgress } from './prepare.ts';
import { TaskPool } from './sources.ts';

// Moved to the pure pixels module (the browser page greys with it too); re-exported for existing importers.
export { toGrayRgb };

/** Quarter turns a class-augmented copy is rotated by (counter-clockwise). */
export type QuarterTurns = 0 | 1 | 2 | 3;

/** One cached item: an image file, optionally rotated (rotation class augmentation). */
export interface FileItem {
  /** Absolute path of the image file. */
  file: string;
  /** The item's name in the cache and fingerprints (a path relative to the dataset root, `@rot90` for rotated copies). */
  id: string;
  rotation?: QuarterTurns;
  /**
   * Pixels that do not come from an image file (e.g. records of an archive): when given, prepare calls it
   * instead of reading and decoding `file` (`file` then only names the item in errors).
   */
  raw?: () => Promise<{ pixels: Uint8Array; width: number; height: number; sha256: string }>;
}

export interface FileClass {
  name: string;
  items: FileItem[];
}

export interface FileSplit {
  split: SplitName;
  classes: FileClass[];
}

export interface PrepareFilesOptions {
  cacheDir: string;
  imageSize: number;
  dataset: string;
  provider: { id: string; options: Record<string, unknown> };
  splits: FileSplit[];
  /** Convert to grey (ITU-R BT.601 luma, replicated to the three channels) after decoding. */
  grayscale?: boolean;
  /** Fixed statistics, or `train`: computed from the train split's cached pixels and recorded. */
  normalization: (Normalization & { origin?: string }) | 'train';
  source: { kind: string; path: string; files?: Record<string, string> };
  maxInFlight?: number;
  onProgress?: (p: PrepareProgress) => void;
  signal?: AbortSignal;
}

/** Rotate an S×S RGB (HWC) image by k quarter turns counter-clockwise. */
export function rotateSquareRgb(src: Uint8Array, size: number, k: QuarterTurns): Uint8Array {
  if (k === 0) return src;
  const out = new Uint8Array(src.length);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      // Destination (y, x) takes the source pixel that rotates onto it.
      const [sy, sx] = k === 1 ? [x, size - 1 - y] : k === 2 ? [size - 1 - y, size - 1 - x] : [size - 1 - x, y];
      const d = (y * size + x) * 3;
      const s = (sy * size + sx) * 3;
      out[d] = src[s];
      out[d + 1] = src[s + 1];
      out[d + 2] = src[s + 2];
    }
  }
  return out;
}

/** Per-channel mean and std (population) of uint8 RGB pixels, in [0, 1] units. */
export function channelStatistics(pixels: Uint8Array): Normalization {
  const sum = [0, 0, 0];
  const sq = [0, 0, 0];
  for (let p = 0; p < pixels.length; p += 3) {
    for (let c = 0; c < 3; c++) {
      const v = pixels[p + c] / 255;
      sum[c] += v;
      sq[c] += v * v;
    }
  }
  const n = pixels.length / 3;
  const mean = sum.map((s) => s / n) as [number, number, number];
  // A constant channel (e.g. an all-black synthetic set) would divide by zero; fall back to std 1.
  const std = sq.map((s, c) => Math.sqrt(Math.max(0, s / n - mean[c] * mean[c])) || 1) as [number, number, number];
  return { mean, std };
}

/** Checks every provider's file list must pass: no empty split, ≥ 2 images per class, no class or file in two splits. */
function checkFileSplits(splits: FileSplit[], root: string): void {
  const classOwner = new Map<string, SplitName>();
  const itemOwner = new Map<string, string>();
  for (const sp of splits) {
    if (sp.classes.length === 0) {
      throw new UserError(`the ${sp.split} split of ${root} has no classes`, 'give every split (train, val, test) at least one class folder');
    }
    for (const c of sp.classes) {
      const other = classOwner.get(c.name);
      if (other) throw new UserError(`class "${c.name}" is in both the ${other} and the ${sp.split} split of ${root}`, 'put each class in exactly one split (split files, folders or rows), so no test class is seen in training');
      classOwner.set(c.name, sp.split);
      if (c.items.length < 2) {
        throw new UserError(`class "${c.name}" of ${root} has ${c.items.length} image${c.items.length === 1 ? '' : 's'}; an episode needs at least shot + query ≥ 2 per class`, `add images to it or remove the class`);
      }
      for (const it of c.items) {
        const seen = itemOwner.get(it.id);
        if (seen) throw new UserError(`${it.id} is listed twice (classes ${seen} and ${c.name})`, 'list each image once');
        itemOwner.set(it.id, c.name);
      }
    }
  }
}

/**
 * Decode a list of image files (grouped by split and class) into the uint8 cache (layout in cache.ts),
 * in a temp folder swapped in only when complete: a bad image, a missing file or Ctrl-C leaves the
 * previous cache, or nothing. Shared by the `folder` and `csv` providers (and usable by plugins).
 */
export async function prepareFromFiles(o: PrepareFilesOptions): Promise<{ cacheDir: string; manifest: CacheManifest }> {
  const { cacheDir, imageSize, maxInFlight = 32, onProgress, signal } = o;
  if (!Number.isInteger(imageSize) || imageSize < 8 || imageSize > 1024) {
    throw new UserError(`image size ${imageSize} is not supported`, 'use an integer size from 8 to 1024, e.g. 84 (standard), 32 or 28 (characters)');
  }
  await refuseForeignCacheDir(cacheDir);
  const ordered = SPLIT_NAMES.map((name) => o.splits.find((s) => s.split === name) ?? { split: name, classes: [] });
  checkFileSplits(ordered, o.source.path);
  const bytesPerImage = imageSize * imageSize * 3;
  const total = ordered.reduce((n, s) => n + s.classes.reduce((m, c) => m + c.items.length, 0), 0);
  let manifest: CacheManifest | undefined;
  const previousConcurrency = sharp.concurrency();
  sharp.concurrency(1);
  sharp.cache(false);
  try {
    const lockOptions = { signal, onWait: (h: { pid: number; command: string }) => onProgress?.({ phase: 'wait' as const, done: 0, total: 0, holder: `process ${h.pid} (fewshot ${h.command})` }) };
    const request = { dataset: o.dataset, imageSize, provider: o.provider, sourcePath: o.source.path };
    // Under the cache's lock: a killed prepare's temp folder is removed first (once stale), and a second
    // prepare of the same cache waits for the first and reuses what it made (see cache-lock.ts).
    manifest = await withPrepareLock(cacheDir, request, lockOptions, async () => {
      await replaceDirAtomic(cacheDir, async (tmp) => {
        const stats = { done: 0, resized: 0, sizes: new Map<string, number>() };
        const started = performance.now();
        const splitEntries = {} as Record<SplitName, CacheSplitEntry>;
        let trainPixels: Uint8Array | undefined;
        // Decoded bytes per source file, so rotated copies decode the file once.
        for (const sp of ordered) {
          const items = sp.classes.flatMap((c) => c.items.map((it) => ({ ...it, label: c.name })));
          const pixels = new Uint8Array(items.length * bytesPerImage);
          const sha = new Array<string>(items.length);
          const decodedOnce = new Map<string, Promise<{ px: Uint8Array; sha: string }>>();
          // Rotated copies share a file: decode it once (memoised only then, so plain datasets keep no decoded copies).
          const memo = items.some((it) => it.rotation !== undefined);
          const decodeItem = (it: FileItem) => {
            let p = memo ? decodedOnce.get(it.file) : undefined;
            if (!p) {
              p = (async () => {
                if (it.raw) {
                  const r = await it.raw();
                  const out = await resizeRawRgb(r.pixels, r.width, r.height, imageSize);
                  if (out.resized) stats.resized++;
                  const key = `${r.width}x${r.height}`;
                  stats.sizes.set(key, (stats.sizes.get(key) ?? 0) + 1);
                  return { px: o.grayscale ? toGrayRgb(out.pixels) : out.pixels, sha: r.sha256 };
                }
                let bytes: Buffer;
                try {
                  bytes = await fs.readFile(it.file);
                } catch {
                  throw new UserError(`image ${it.file} is missing or unreadable`, 'check the path (and permissions), or remove it from the dataset');
                }
                const decoded = await decodeImage(bytes, imageSize, it.id, o.source.path);
                if (decoded.resized) stats.resized++;
                const key = `${decoded.sourceWidth}x${decoded.sourceHeight}`;
                stats.sizes.set(key, (stats.sizes.get(key) ?? 0) + 1);
                return { px: o.grayscale ? toGrayRgb(decoded.pixels) : decoded.pixels, sha: sha256Hex(bytes) };
              })();
              if (memo) decodedOnce.set(it.file, p);
            }
            return p;
          };
          const pool = new TaskPool(maxInFlight, signal);
          for (let i = 0; i < items.length; i++) {
            await pool.capacity();
            const it = items[i];
            pool.submit(async () => {
              const d = await decodeItem(it);
              pixels.set(rotateSquareRgb(d.px, imageSize, it.rotation ?? 0), i * bytesPerImage);
              sha[i] = d.sha;
              stats.done++;
              if (onProgress && (stats.done % 200 === 0 || stats.done === total)) onProgress({ phase: 'decode', done: stats.done, total });
            });
          }
          await pool.drain();
          signal?.throwIfAborted();
          if (sp.split === 'train') trainPixels = pixels;
          const pixelsFile = `${sp.split}.u8`;
          const itemsFile = `${sp.split}.items.csv`;
          await fs.writeFile(path.join(tmp, pixelsFile), pixels);
          const quote = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
          await fs.writeFile(path.join(tmp, itemsFile), `filename,label,sha256\n${items.map((it, i) => `${quote(it.id)},${quote(it.label)},${sha[i]}`).join('\n')}\n`);
          const itemsPerClass = sp.classes.map((c) => c.items.length);
          const classOffsets: number[] = [];
          itemsPerClass.reduce((acc, n) => (classOffsets.push(acc), acc + n), 0);
          splitEntries[sp.split] = {
            numItems: items.length,
            classes: sp.classes.map((c) => c.name),
            itemsPerClass,
            classOffsets,
            pixelsFile,
            pixelsBytes: pixels.length,
            pixelsSha256: sha256Hex(pixels),
            itemsFile,
            splitFingerprint: splitFingerprint(items.map((it) => it.id), items.map((it) => it.label), sha),
          };
        }
        const wallSeconds = (performance.now() - started) / 1000;
        const norm =
          o.normalization === 'train'
            ? { ...channelStatistics(trainPixels!), origin: `computed from the ${splitEntries.train.numItems} cached train images` }
            : o.normalization;
        manifest = {
          format: CACHE_FORMAT,
          formatVersion: CACHE_FORMAT_VERSION,
          dataset: o.dataset,
          provider: o.provider,
          normalization: { mean: [...norm.mean] as [number, number, number], std: [...norm.std] as [number, number, number], ...(norm.origin ? { origin: norm.origin } : {}) },
          imageSize,
          layout: `uint8 [n, ${imageSize}, ${imageSize}, 3] NHWC RGB per split, items grouped by class`,
          resize: RESIZE_METHOD + (o.grayscale ? '; then converted to grey (BT.601 luma)' : ''),
          decoder: { sharp: sharp.versions.sharp ?? 'unknown', vips: sharp.versions.vips },
          createdAt: new Date().toISOString(),
          source: { kind: o.source.kind, path: o.source.path, archives: [], csvSha256: o.source.files ?? {} },
          decode: {
            images: total,
            wallSeconds: Math.round(wallSeconds * 1000) / 1000,
            imagesPerSecond: Math.round(total / Math.max(wallSeconds, 1e-9)),
            resized: stats.resized,
            sourceSizes: Object.fromEntries([...stats.sizes].sort((a, b) => b[1] - a[1])),
          },
          splits: splitEntries,
          cacheFingerprint: cacheFingerprint(imageSize, splitEntries),
        };
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

// Re-used by providers for error messages.
export { sha256File };
