import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { replaceDirAtomic } from '../util/atomic.ts';
import { crashPoint } from '../util/fault.ts';
import { UserError } from '../util/errors.ts';
import { withPrepareLock } from './cache-lock.ts';
import {
  CACHE_FORMAT,
  CACHE_FORMAT_VERSION,
  cacheFingerprint,
  refuseForeignCacheDir,
  splitFingerprint,
  type CacheManifest,
  type CacheSplitEntry,
} from './cache.ts';
import { sha256File, sha256Hex } from './checksums.ts';
import { SPLIT_NAMES, type SplitName } from './split-csv.ts';
import { decodeImage, RESIZE_METHOD, resizeRawRgb } from './decode.ts';
import type { Normalization } from './normalize.ts';
import { toGrayRgb } from './pixels.ts';
import { TaskPool } from './sources.ts';

/**
 * The one writer of the uint8 image cache (layout in cache.ts). Every dataset provider, built-in or plugin,
 * lists its items per split and class and hands them here; the writer decodes, checks, fingerprints and
 * swaps the cache in atomically, so the manifest and fingerprints mean the same thing for every dataset.
 */

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

/** Quarter turns a class-augmented copy is rotated by (counter-clockwise). */
export type QuarterTurns = 0 | 1 | 2 | 3;

/** The pixels of an item that is not an image file (e.g. a record of an archive), before resizing. */
export interface RawImage {
  /** RGB, HWC, `width × height × 3` bytes. */
  pixels: Uint8Array;
  width: number;
  height: number;
  /** sha256 of the item's source bytes: recorded per item and in the split fingerprint. */
  sha256: string;
}

/** One cached item: an image file, raw pixels, or (with `stream`) bytes the provider delivers by `id`. */
export interface FileItem {
  /** The item's name in the cache and fingerprints (a path relative to the dataset root, `@rot90` for rotated copies). */
  id: string;
  /** Absolute path of the image file (read and decoded unless `raw` is given; with `raw` it only names the item). */
  file?: string;
  /** Rotation class augmentation: the copy is rotated by this many quarter turns after resizing. */
  rotation?: QuarterTurns;
  /** Pixels that do not come from an image file: called instead of reading `file`. */
  raw?: () => Promise<RawImage>;
}

/** A class: its name (the label in the cache) and its items, in cache order. */
export interface FileClass {
  name: string;
  items: FileItem[];
}

/** The classes of one split, in cache order. */
export interface FileSplit {
  split: SplitName;
  classes: FileClass[];
}

/** Hands one item's encoded image bytes to the writer (see `CacheStream`). */
export type ItemSink = (id: string, bytes: Uint8Array, origin: string) => Promise<void>;

/**
 * Items delivered in any order (e.g. streamed out of archives): `read` calls `sink` for each item id, running
 * the calls as tasks of `pool` (which bounds memory and stops on the first failure). Ids not listed are ignored.
 */
export interface CacheStream {
  read(sink: ItemSink, pool: TaskPool): Promise<{ archives?: CacheManifest['source']['archives'] } | void>;
  /** The error when listed items never arrived (`missing`: `id (split)`, first ones first). */
  missing(missing: string[], total: number): UserError;
}

/** Options of `writeImageCache`: the items per split and class, where and at what size to cache them. */
export interface WriteImageCacheOptions {
  /** Cache folder to create or replace, e.g. `cacheDirFor('.cache', 'my-dataset', 84)`. */
  cacheDir: string;
  /** Side S of the cached S×S images. */
  imageSize: number;
  /** The dataset name recorded in the manifest and in episode files. */
  dataset: string;
  /** Recorded in the manifest: the provider that asked for this cache and its resolved options. */
  provider?: { id: string; options: Record<string, unknown> };
  /** The items: train, val and test, each a list of classes with their items. */
  splits: FileSplit[];
  /** Convert to grey (ITU-R BT.601 luma, replicated to the three channels) after decoding. */
  grayscale?: boolean;
  /** Fixed statistics, or `train`: computed from the train split's cached pixels and recorded. */
  normalization?: (Normalization & { origin?: string }) | 'train';
  /** Recorded in the manifest: the kind of source, its path and sha256 of its index files. */
  source: { kind: string; path: string; files?: Record<string, string> };
  /** How the cache orders items, recorded in the manifest's layout (default `items grouped by class`). */
  itemOrder?: string;
  /** Deliver items' bytes from a stream instead of reading each item's `file` / `raw`. */
  stream?: CacheStream;
  /** Images read/decoded concurrently (sharp decodes on libuv's thread pool). */
  maxInFlight?: number;
  onProgress?: (p: PrepareProgress) => void;
  /** Abort (e.g. on Ctrl-C): in-flight decodes finish, the temp folder is removed, the promise rejects with the reason. */
  signal?: AbortSignal;
}

/** A written cache: its folder and its manifest. */
export interface PrepareResult {
  cacheDir: string;
  manifest: CacheManifest;
}

/** A UserError unless `imageSize` is a supported cache size (an integer from 8 to 1024). */
export function checkImageSize(imageSize: number): void {
  if (!Number.isInteger(imageSize) || imageSize < 8 || imageSize > 1024) {
    throw new UserError(
      `image size ${imageSize} is not supported`,
      'use an integer size from 8 to 1024, e.g. 84 (standard), 32 (fast CPU runs) or 28 (characters)',
    );
  }
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

/** Checks every provider's item list must pass: no empty split, ≥ 2 images per class, no class or item in two places. */
function checkFileSplits(splits: FileSplit[], root: string): void {
  const classOwner = new Map<string, SplitName>();
  const itemOwner = new Map<string, string>();
  for (const sp of splits) {
    if (sp.classes.length === 0) {
      throw new UserError(`the ${sp.split} split of ${root} has no classes`, 'give every split (train, val, test) at least one class folder');
    }
    for (const c of sp.classes) {
      const other = classOwner.get(c.name);
      if (other)
        throw new UserError(
          `class "${c.name}" is in both the ${other} and the ${sp.split} split of ${root}`,
          'put each class in exactly one split (split files, folders or rows), so no test class is seen in training',
        );
      classOwner.set(c.name, sp.split);
      if (c.items.length < 2) {
        throw new UserError(
          `class "${c.name}" of ${root} has ${c.items.length} image${c.items.length === 1 ? '' : 's'}; an episode needs at least shot + query ≥ 2 per class`,
          `add images to it or remove the class`,
        );
      }
      for (const it of c.items) {
        const seen = itemOwner.get(it.id);
        if (seen) throw new UserError(`${it.id} is listed twice (classes ${seen} and ${c.name})`, 'list each image once');
        itemOwner.set(it.id, c.name);
      }
    }
  }
}

/** A decoded, resized item before rotation, and the sha256 of its source bytes. */
interface DecodedItem {
  px: Uint8Array;
  sha: string;
}

/** The state of one cache being written: open split files, per-item hashes, decode statistics. */
class CacheBuild {
  readonly bytesPerImage: number;
  readonly items: (FileItem & { label: string })[][];
  readonly sha: string[][];
  readonly total: number;
  readonly stats = { done: 0, resized: 0, sizes: new Map<string, number>() };
  handles: FileHandle[] = [];

  constructor(
    readonly o: WriteImageCacheOptions,
    readonly splits: FileSplit[],
    readonly tmp: string,
  ) {
    this.bytesPerImage = o.imageSize * o.imageSize * 3;
    this.items = splits.map((sp) => sp.classes.flatMap((c) => c.items.map((it) => ({ ...it, label: c.name }))));
    this.sha = this.items.map((list) => new Array<string>(list.length).fill(''));
    this.total = this.items.reduce((n, list) => n + list.length, 0);
  }

  pixelsFile(s: number): string {
    return `${this.splits[s].split}.u8`;
  }

  recordSize(resized: boolean, width: number, height: number): void {
    if (resized) this.stats.resized++;
    const key = `${width}x${height}`;
    this.stats.sizes.set(key, (this.stats.sizes.get(key) ?? 0) + 1);
  }

  /** Decode an image file's bytes to the cache size (grey when asked). */
  async decodeBytes(bytes: Uint8Array, name: string, origin: string): Promise<DecodedItem> {
    const decoded = await decodeImage(bytes, this.o.imageSize, name, origin);
    this.recordSize(decoded.resized, decoded.sourceWidth, decoded.sourceHeight);
    return { px: this.o.grayscale ? toGrayRgb(decoded.pixels) : decoded.pixels, sha: sha256Hex(bytes) };
  }

  /** Read and decode one listed item (its `raw` pixels or its `file`). */
  async decodeItem(it: FileItem): Promise<DecodedItem> {
    if (it.raw) {
      const r = await it.raw();
      const out = await resizeRawRgb(r.pixels, r.width, r.height, this.o.imageSize);
      this.recordSize(out.resized, r.width, r.height);
      return { px: this.o.grayscale ? toGrayRgb(out.pixels) : out.pixels, sha: r.sha256 };
    }
    if (it.file === undefined) throw new Error(`item ${it.id} has neither a file nor raw pixels, and the cache has no stream`);
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(it.file);
    } catch {
      throw new UserError(`image ${it.file} is missing or unreadable`, 'check the path (and permissions), or remove it from the dataset');
    }
    return this.decodeBytes(bytes, it.id, this.o.source.path);
  }

  /** Store item `i` of split `s` (rotated when it is a rotated copy) at its place in the split's pixel file. */
  async store(s: number, i: number, d: DecodedItem): Promise<void> {
    const it = this.items[s][i];
    const px = rotateSquareRgb(d.px, this.o.imageSize, it.rotation ?? 0);
    this.sha[s][i] = d.sha;
    await this.handles[s].write(px, 0, this.bytesPerImage, i * this.bytesPerImage);
    this.stats.done++;
    if (this.o.onProgress && (this.stats.done % 200 === 0 || this.stats.done === this.total))
      this.o.onProgress({ phase: 'decode', done: this.stats.done, total: this.total });
  }
}

/** Decode the listed items split by split; rotated copies of one file decode it once per split. */
async function decodeListedItems(b: CacheBuild, pool: TaskPool): Promise<void> {
  for (let s = 0; s < b.items.length; s++) {
    // Memoised only when there are rotated copies, so plain datasets keep no decoded copies.
    const memo = b.items[s].some((it) => it.rotation !== undefined) ? new Map<string, Promise<DecodedItem>>() : undefined;
    for (let i = 0; i < b.items[s].length; i++) {
      await pool.capacity();
      const it = b.items[s][i];
      const key = it.file ?? it.id;
      pool.submit(async () => {
        const d = memo?.get(key) ?? b.decodeItem(it);
        memo?.set(key, d);
        await b.store(s, i, await d);
      });
    }
    await pool.drain();
    b.o.signal?.throwIfAborted();
  }
}

/** Take items from the provider's stream in any order, each to its listed place. */
async function decodeStreamedItems(b: CacheBuild, stream: CacheStream, pool: TaskPool): Promise<CacheManifest['source']['archives']> {
  const slotOf = new Map<string, { s: number; i: number }>();
  b.items.forEach((list, s) => list.forEach((it, i) => slotOf.set(it.id, { s, i })));
  const sink: ItemSink = async (id, bytes, origin) => {
    const slot = slotOf.get(id);
    if (!slot) return;
    if (b.sha[slot.s][slot.i] !== '') {
      throw new UserError(
        `image ${id} occurs twice in the archives (again in ${origin})`,
        'keep each image in exactly one archive (the standard four archives hold each image once)',
      );
    }
    b.sha[slot.s][slot.i] = 'pending';
    await b.store(slot.s, slot.i, await b.decodeBytes(bytes, id, origin));
  };
  const read = await stream.read(sink, pool);
  await pool.drain();
  b.o.signal?.throwIfAborted();
  if (b.stats.done !== b.total) {
    const missing: string[] = [];
    b.items.forEach((list, s) => list.forEach((it, i) => b.sha[s][i] === '' && missing.push(`${it.id} (${b.splits[s].split})`)));
    throw stream.missing(missing, b.total);
  }
  return read?.archives ?? [];
}

/** The items CSV of each split and its manifest entry (pixel file hash, split fingerprint). */
async function writeSplitEntries(b: CacheBuild): Promise<Record<SplitName, CacheSplitEntry>> {
  const quote = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const entries = {} as Record<SplitName, CacheSplitEntry>;
  for (let s = 0; s < b.splits.length; s++) {
    const sp = b.splits[s];
    const items = b.items[s];
    const pixelsFile = b.pixelsFile(s);
    const itemsFile = `${sp.split}.items.csv`;
    await fs.writeFile(
      path.join(b.tmp, itemsFile),
      `filename,label,sha256\n${items.map((it, i) => `${quote(it.id)},${quote(it.label)},${b.sha[s][i]}`).join('\n')}\n`,
    );
    const itemsPerClass = sp.classes.map((c) => c.items.length);
    const classOffsets: number[] = [];
    itemsPerClass.reduce((acc, n) => (classOffsets.push(acc), acc + n), 0);
    entries[sp.split] = {
      numItems: items.length,
      classes: sp.classes.map((c) => c.name),
      itemsPerClass,
      classOffsets,
      pixelsFile,
      pixelsBytes: items.length * b.bytesPerImage,
      pixelsSha256: await sha256File(path.join(b.tmp, pixelsFile)),
      itemsFile,
      splitFingerprint: splitFingerprint(
        items.map((it) => it.id),
        items.map((it) => it.label),
        b.sha[s],
      ),
    };
    b.o.onProgress?.({ phase: 'hash', done: s + 1, total: b.splits.length });
  }
  return entries;
}

/** The manifest of a written cache (field order is the format's: manifests are compared byte for byte). */
async function cacheManifest(
  b: CacheBuild,
  splits: Record<SplitName, CacheSplitEntry>,
  archives: CacheManifest['source']['archives'],
  wallSeconds: number,
): Promise<CacheManifest> {
  const { o } = b;
  const norm =
    o.normalization === 'train'
      ? {
          ...channelStatistics(await fs.readFile(path.join(b.tmp, splits.train.pixelsFile))),
          origin: `computed from the ${splits.train.numItems} cached train images`,
        }
      : o.normalization;
  return {
    format: CACHE_FORMAT,
    formatVersion: CACHE_FORMAT_VERSION,
    dataset: o.dataset,
    ...(o.provider ? { provider: o.provider } : {}),
    ...(norm
      ? {
          normalization: {
            mean: [...norm.mean] as [number, number, number],
            std: [...norm.std] as [number, number, number],
            ...(norm.origin ? { origin: norm.origin } : {}),
          },
        }
      : {}),
    imageSize: o.imageSize,
    layout: `uint8 [n, ${o.imageSize}, ${o.imageSize}, 3] NHWC RGB per split, ${o.itemOrder ?? 'items grouped by class'}`,
    resize: RESIZE_METHOD + (o.grayscale ? '; then converted to grey (BT.601 luma)' : ''),
    decoder: { sharp: sharp.versions.sharp ?? 'unknown', vips: sharp.versions.vips },
    createdAt: new Date().toISOString(),
    source: { kind: o.source.kind, path: o.source.path, archives, csvSha256: o.source.files ?? {} },
    decode: {
      images: b.total,
      wallSeconds: Math.round(wallSeconds * 1000) / 1000,
      imagesPerSecond: Math.round(b.total / Math.max(wallSeconds, 1e-9)),
      resized: b.stats.resized,
      sourceSizes: Object.fromEntries([...b.stats.sizes].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1))),
    },
    splits,
    cacheFingerprint: cacheFingerprint(o.imageSize, splits),
  };
}

/** Decode every item into the temp folder `tmp` and write the manifest last. */
async function buildCache(o: WriteImageCacheOptions, splits: FileSplit[], tmp: string): Promise<CacheManifest> {
  const b = new CacheBuild(o, splits, tmp);
  const pool = new TaskPool(o.maxInFlight ?? 32, o.signal);
  const started = performance.now();
  let archives: CacheManifest['source']['archives'] = [];
  b.handles = await Promise.all(splits.map((_, s) => fs.open(path.join(tmp, b.pixelsFile(s)), 'w')));
  try {
    if (o.stream) archives = await decodeStreamedItems(b, o.stream, pool);
    else await decodeListedItems(b, pool);
    o.signal?.throwIfAborted();
  } finally {
    await Promise.all(b.handles.map((h) => h.close()));
  }
  const wallSeconds = (performance.now() - started) / 1000;
  const manifest = await cacheManifest(b, await writeSplitEntries(b), archives, wallSeconds);
  crashPoint('prepare:pixels-written');
  await fs.writeFile(path.join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/**
 * Write a dataset's uint8 image cache: decode every listed item (image files, raw pixels, or bytes from
 * `stream`), check the listing, fingerprint each split and record everything in `manifest.json`. The cache is
 * built in a temp folder under the cache's lock and swapped in only when complete: a bad image, a missing file
 * or Ctrl-C leaves the previous cache, or nothing; a second prepare of the same cache waits and reuses it.
 * This is what a dataset provider's `prepare` calls.
 */
export async function writeImageCache(o: WriteImageCacheOptions): Promise<PrepareResult> {
  const { cacheDir, imageSize, onProgress, signal } = o;
  checkImageSize(imageSize);
  await refuseForeignCacheDir(cacheDir);
  const splits = SPLIT_NAMES.map((name) => o.splits.find((s) => s.split === name) ?? { split: name, classes: [] });
  checkFileSplits(splits, o.source.path);
  const previousConcurrency = sharp.concurrency();
  // One libvips thread per image: the images are tiny, so parallelism comes from decoding many
  // images at once on libuv's pool (UV_THREADPOOL_SIZE, default 4 threads), which keeps both cores busy.
  sharp.concurrency(1);
  sharp.cache(false);
  try {
    const lockOptions = {
      signal,
      onWait: (h: { pid: number; command: string }) =>
        onProgress?.({ phase: 'wait' as const, done: 0, total: 0, holder: `process ${h.pid} (fewshot ${h.command})` }),
    };
    const request = { dataset: o.dataset, imageSize, provider: o.provider, sourcePath: o.source.path };
    // Under the cache's lock: a killed prepare's temp folder is removed first (once stale), and a second
    // prepare of the same cache waits for the first and reuses what it made (see cache-lock.ts).
    const manifest = await withPrepareLock(cacheDir, request, lockOptions, async () => {
      let built: CacheManifest | undefined;
      await replaceDirAtomic(
        cacheDir,
        async (tmp) => {
          built = await buildCache(o, splits, tmp);
        },
        'prepare',
      );
      return built!;
    });
    return { cacheDir, manifest };
  } finally {
    sharp.concurrency(previousConcurrency);
    sharp.cache(true);
  }
}
