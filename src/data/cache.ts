import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { parse as parseCsv } from 'csv-parse/sync';
import { UserError } from '../util/errors.ts';
import { SPLIT_NAMES, type SplitName } from './split-csv.ts';

/**
 * Cache layout (one folder per dataset × image size, e.g. `.cache/mini-imagenet-84/`):
 *   manifest.json        this schema
 *   <split>.u8           raw uint8 pixels [n, S, S, 3], NHWC RGB, items in split order
 *   <split>.items.csv    `filename,label,sha256` per item, same order (sha256 of the source image file)
 * Split order = classes in CSV order of first appearance, CSV row order within a class (= the CSV
 * order itself for the standard split files, which are grouped by class).
 * Bump CACHE_FORMAT_VERSION whenever the layout or the decode/resize rule changes.
 */
export const CACHE_FORMAT = 'fewshot-image-cache';
export const CACHE_FORMAT_VERSION = 1;

export const DEFAULT_CACHE_ROOT = '.cache';

/** `<root>/<dataset>-<size>`, e.g. `.cache/mini-imagenet-84`. */
export function cacheDirFor(root: string, dataset: string, imageSize: number): string {
  return path.join(root, `${dataset}-${imageSize}`);
}

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

const splitEntrySchema = z.object({
  numItems: z.number().int().positive(),
  classes: z.array(z.string().min(1)).min(1),
  itemsPerClass: z.array(z.number().int().positive()),
  classOffsets: z.array(z.number().int().nonnegative()),
  pixelsFile: z.string(),
  pixelsBytes: z.number().int().positive(),
  pixelsSha256: sha256Hex,
  itemsFile: z.string(),
  splitFingerprint: sha256Hex,
});
export type CacheSplitEntry = z.infer<typeof splitEntrySchema>;

export const cacheManifestSchema = z.object({
  format: z.literal(CACHE_FORMAT),
  formatVersion: z.literal(CACHE_FORMAT_VERSION),
  dataset: z.string().min(1),
  imageSize: z.number().int().positive(),
  layout: z.string(),
  resize: z.string(),
  decoder: z.record(z.string(), z.string()),
  createdAt: z.string(),
  /** Which provider prepared the cache, with its resolved options (absent in caches made before providers). */
  provider: z.object({ id: z.string().min(1), options: z.record(z.string(), z.unknown()) }).optional(),
  /** Per-channel mean/std (in [0, 1] units) the images are normalised with when gathered. */
  normalization: z
    .object({ mean: z.tuple([z.number(), z.number(), z.number()]), std: z.tuple([z.number(), z.number(), z.number()]), origin: z.string().optional() })
    .optional(),
  source: z
    .object({
      /** `folder` / `archives` (mini-ImageNet), `class-folders`, `csv`, or what a plugin provider writes. */
      kind: z.string().min(1),
      path: z.string(),
      archives: z.array(z.object({ file: z.string(), sha256: sha256Hex, checkedAgainstSha256Sums: z.boolean() })),
      csvSha256: z.record(z.string(), sha256Hex),
    })
    .loose(),
  decode: z.object({
    images: z.number().int().nonnegative(),
    wallSeconds: z.number().nonnegative(),
    imagesPerSecond: z.number().nonnegative(),
    resized: z.number().int().nonnegative(),
    sourceSizes: z.record(z.string(), z.number().int()),
  }),
  splits: z.object({ train: splitEntrySchema, val: splitEntrySchema, test: splitEntrySchema }),
  cacheFingerprint: sha256Hex,
});
/** A prepared cache's `manifest.json`: format, dataset, provider, normalisation, decode record, splits and fingerprints. */
export type CacheManifest = z.infer<typeof cacheManifestSchema>;

/**
 * Split fingerprint: sha256 over the lines `<filename>,<label>,<sha256 of the image file>\n` in item
 * order. It identifies the exact item list (so item indices in episode files mean the same images)
 * and the source content, independent of the cache's image size or decoder.
 */
export function splitFingerprint(filenames: readonly string[], labels: readonly string[], imageSha256: readonly string[]): string {
  const hash = createHash('sha256');
  for (let i = 0; i < filenames.length; i++) hash.update(`${filenames[i]},${labels[i]},${imageSha256[i]}\n`);
  return hash.digest('hex');
}

/**
 * Cache fingerprint: sha256 over `imageSize=<S>\n` then, per split in train/val/test order,
 * `<split>,<splitFingerprint>,<sha256 of the split's .u8 pixel file>\n`. Two caches with the same
 * fingerprint hold bit-identical decoded pixels for the same items.
 */
export function cacheFingerprint(imageSize: number, splits: Record<SplitName, { splitFingerprint: string; pixelsSha256: string }>): string {
  const hash = createHash('sha256');
  hash.update(`imageSize=${imageSize}\n`);
  for (const s of SPLIT_NAMES) hash.update(`${s},${splits[s].splitFingerprint},${splits[s].pixelsSha256}\n`);
  return hash.digest('hex');
}

const PREPARE_HINT = 'run `fewshot data prepare` (with --data <mini-ImageNet folder> or $FEWSHOT_DATA) to build it';

/**
 * Preparing replaces the cache folder as a whole (a complete new version, then the link swapped; see
 * replaceDirAtomic), so a folder given as the cache must be one: absent, empty, a link to a cache version, or a
 * plain folder holding a cache (manifest.json). Anything else, e.g. the parent of a cache or a data folder
 * (`--cache .cache` instead of `--cache .cache/mini-imagenet-32`), is refused before any work: it would be deleted.
 */
export async function refuseForeignCacheDir(cacheDir: string): Promise<void> {
  const st = await fs.lstat(cacheDir).catch(() => undefined);
  if (!st || st.isSymbolicLink()) return;
  if (!st.isDirectory()) {
    throw new UserError(`the image cache path ${cacheDir} is a file, not a folder`, 'pass a folder of its own as the cache (it is created if missing)');
  }
  const entries = await fs.readdir(cacheDir);
  if (entries.length === 0 || entries.includes('manifest.json')) return;
  const shown = entries.slice(0, 3).join(', ') + (entries.length > 3 ? `, … (${entries.length} entries)` : '');
  throw new UserError(
    `${cacheDir} is not an image cache (no manifest.json; it holds ${shown}), and preparing replaces the cache folder as a whole`,
    `pass a folder of the cache's own, e.g. ${path.join(cacheDir, path.basename(cacheDir) === '.cache' ? 'mini-imagenet-32' : 'cache')} (created if missing); nothing was changed`,
  );
}

/** Reads and validates a prepared cache's `manifest.json`; a UserError when it is missing or not a cache. */
export async function readCacheManifest(cacheDir: string): Promise<CacheManifest> {
  const file = path.join(cacheDir, 'manifest.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new UserError(missing ? `no prepared image cache at ${cacheDir} (${file} is missing)` : `${file} is not valid JSON`, PREPARE_HINT);
  }
  const header = z.object({ format: z.string(), formatVersion: z.number() }).safeParse(raw);
  if (!header.success || header.data.format !== CACHE_FORMAT) {
    throw new UserError(`${file} is not a fewshot image-cache manifest`, PREPARE_HINT);
  }
  if (header.data.formatVersion !== CACHE_FORMAT_VERSION) {
    throw new UserError(
      `the image cache at ${cacheDir} has format version ${header.data.formatVersion}, this fewshot reads version ${CACHE_FORMAT_VERSION}`,
      `rebuild it: ${PREPARE_HINT}`,
    );
  }
  const parsed = cacheManifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw new UserError(`${file} is damaged: ${z.prettifyError(parsed.error).split('\n').slice(0, 3).join('; ')}`, `rebuild it: ${PREPARE_HINT}`);
  }
  return parsed.data;
}

/** One split of a prepared cache, without pixels (cheap: manifest only). */
export interface SplitInfo {
  dataset: string;
  split: SplitName;
  imageSize: number;
  numItems: number;
  classes: string[];
  itemsPerClass: number[];
  classOffsets: number[];
  /** Class index of each item. */
  labels: Int32Array;
  splitFingerprint: string;
  cacheFingerprint: string;
}

/** One split of a prepared cache, pixels in memory. Item indices are row indices of `pixels`. */
export interface LoadedSplit extends SplitInfo {
  /** uint8 [numItems, S, S, 3], NHWC RGB. */
  pixels: Uint8Array;
  /**
   * The cache fingerprint recomputed from the sha256 of the pixels actually loaded (this split) and
   * the manifest's hashes of the others; set when pixels were verified. Results record this one.
   */
  verifiedCacheFingerprint?: string;
}

export interface LoadSplitOptions {
  /**
   * Re-hash the pixel file against the manifest (default on): sha256 at about 1 ms per MB on one core,
   * i.e. ~0.12 s for the 32 px mini-ImageNet train split (118 MB) and ~0.8 s at 84 px (813 MB);
   * val+test add a third of that.
   */
  verifyPixels?: boolean;
}

function checkSplitEntry(entry: CacheSplitEntry, imageSize: number, where: string): void {
  const n = entry.classes.length;
  let offset = 0;
  const consistent =
    entry.itemsPerClass.length === n &&
    entry.classOffsets.length === n &&
    entry.itemsPerClass.every((count, c) => {
      const ok = entry.classOffsets[c] === offset;
      offset += count;
      return ok;
    }) &&
    offset === entry.numItems &&
    entry.pixelsBytes === entry.numItems * imageSize * imageSize * 3;
  if (!consistent) throw new UserError(`${where}: class counts, offsets and sizes disagree`, `rebuild it: ${PREPARE_HINT}`);
}

async function readWholeFile(file: string, expectedBytes: number, cacheDir: string): Promise<Uint8Array> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch {
    throw new UserError(`the image cache at ${cacheDir} is missing ${path.basename(file)}`, `rebuild it: ${PREPARE_HINT}`);
  }
  try {
    const { size } = await handle.stat();
    if (size !== expectedBytes) {
      throw new UserError(`${file} has ${size} bytes, the manifest says ${expectedBytes}`, `rebuild it: ${PREPARE_HINT}`);
    }
    // Chunked reads: fs.readFile refuses files over 2 GiB, and the train split at large sizes can exceed it.
    const out = new Uint8Array(size);
    const chunk = 1 << 26;
    for (let pos = 0; pos < size; ) {
      const { bytesRead } = await handle.read(out, pos, Math.min(chunk, size - pos), pos);
      if (bytesRead === 0) throw new UserError(`${file} ended early`, `rebuild it: ${PREPARE_HINT}`);
      pos += bytesRead;
    }
    return out;
  } finally {
    await handle.close();
  }
}

/** The rows of a split's items file (`filename,label,sha256`), parsed with csv-parse (ids may be quoted). */
async function readItemsFile(cacheDir: string, entry: CacheSplitEntry): Promise<{ file: string; rows: string[][] }> {
  const file = path.join(cacheDir, entry.itemsFile);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new UserError(`the image cache at ${cacheDir} is missing ${entry.itemsFile}`, `rebuild it: ${PREPARE_HINT}`);
  }
  try {
    return { file, rows: (parseCsv(text, { bom: true, skip_empty_lines: true, relax_column_count: true }) as string[][]).slice(1) };
  } catch (err) {
    throw new UserError(`${file} is not valid CSV: ${(err as Error).message}`, `rebuild it: ${PREPARE_HINT}`);
  }
}

/**
 * The class layout (classes, itemsPerClass, classOffsets) is what turns item indices into labels, yet the
 * manifest states it apart from the fingerprints. The split fingerprint covers each item's label (see
 * splitFingerprint), so the layout is checked against it: the items file must reproduce the fingerprint, and
 * the layout must be the one its labels give (each class one contiguous run, in order). A consistently edited
 * manifest that moves class boundaries is thereby refused, with the fingerprint definitions unchanged (caches,
 * episode files and results written before this check keep their fingerprints).
 */
async function checkLayoutAgainstFingerprint(cacheDir: string, split: SplitName, entry: CacheSplitEntry): Promise<void> {
  const { file, rows } = await readItemsFile(cacheDir, entry);
  const where = `${path.join(cacheDir, 'manifest.json')} (${split})`;
  if (
    rows.some((r) => r.length !== 3) ||
    splitFingerprint(
      rows.map((r) => r[0]),
      rows.map((r) => r[1]),
      rows.map((r) => r[2]),
    ) !== entry.splitFingerprint
  ) {
    throw new UserError(`${file} does not match the split fingerprint in ${where}: the cache was changed after it was prepared`, `rebuild it: ${PREPARE_HINT}`);
  }
  const classes: string[] = [];
  const counts: number[] = [];
  for (const [, label] of rows) {
    if (classes.at(-1) === label) counts[counts.length - 1]++;
    else {
      classes.push(label);
      counts.push(1);
    }
  }
  const same = classes.length === entry.classes.length && classes.every((c, i) => c === entry.classes[i] && counts[i] === entry.itemsPerClass[i]);
  if (!same) {
    const first = classes.findIndex((c, i) => c !== entry.classes[i] || counts[i] !== entry.itemsPerClass[i]);
    throw new UserError(
      `${where}: the class layout (classes, itemsPerClass, classOffsets) disagrees with the fingerprinted labels of ${entry.itemsFile} ` +
        `(class ${first}: ${JSON.stringify(classes[first])} with ${counts[first]} items there, ${JSON.stringify(entry.classes[first])} with ${entry.itemsPerClass[first]} in the manifest)`,
      `rebuild it: ${PREPARE_HINT}`,
    );
  }
}

async function splitEntry(cacheDir: string, split: SplitName): Promise<{ manifest: CacheManifest; entry: CacheSplitEntry }> {
  const manifest = await readCacheManifest(cacheDir);
  const entry = manifest.splits[split];
  if (!entry) throw new UserError(`the image cache at ${cacheDir} has no split "${split}"`, `use one of ${SPLIT_NAMES.join(', ')}`);
  checkSplitEntry(entry, manifest.imageSize, `${path.join(cacheDir, 'manifest.json')} (${split})`);
  await checkLayoutAgainstFingerprint(cacheDir, split, entry);
  return { manifest, entry };
}

function toSplitInfo(manifest: CacheManifest, split: SplitName, entry: CacheSplitEntry): SplitInfo {
  const labels = new Int32Array(entry.numItems);
  entry.classOffsets.forEach((start, c) => labels.fill(c, start, start + entry.itemsPerClass[c]));
  return {
    dataset: manifest.dataset,
    split,
    imageSize: manifest.imageSize,
    numItems: entry.numItems,
    classes: entry.classes,
    itemsPerClass: entry.itemsPerClass,
    classOffsets: entry.classOffsets,
    labels,
    splitFingerprint: entry.splitFingerprint,
    cacheFingerprint: manifest.cacheFingerprint,
  };
}

/** A split's classes, layout and fingerprints from the manifest (the layout checked against its items file), without reading pixels. */
export async function describeSplit(cacheDir: string, split: SplitName): Promise<SplitInfo> {
  const { manifest, entry } = await splitEntry(cacheDir, split);
  return toSplitInfo(manifest, split, entry);
}

/** Load one split's pixels (checks the manifest format and the pixel file's size; optionally its hash). */
export async function loadSplit(cacheDir: string, split: SplitName, options: LoadSplitOptions = {}): Promise<LoadedSplit> {
  const { manifest, entry } = await splitEntry(cacheDir, split);
  const file = path.join(cacheDir, entry.pixelsFile);
  const pixels = await readWholeFile(file, entry.pixelsBytes, cacheDir);
  let verifiedCacheFingerprint: string | undefined;
  if (options.verifyPixels ?? true) {
    const actual = createHash('sha256').update(pixels).digest('hex');
    if (actual !== entry.pixelsSha256) {
      throw new UserError(
        `${file} does not match its manifest (pixel sha256 ${actual}, expected ${entry.pixelsSha256}): the cache was changed after it was prepared`,
        `rebuild it: ${PREPARE_HINT}`,
      );
    }
    verifiedCacheFingerprint = cacheFingerprint(manifest.imageSize, { ...manifest.splits, [split]: { ...entry, pixelsSha256: actual } });
    if (verifiedCacheFingerprint !== manifest.cacheFingerprint) {
      throw new UserError(`${path.join(cacheDir, 'manifest.json')}: cacheFingerprint does not match the hashes it lists`, `rebuild it: ${PREPARE_HINT}`);
    }
  }
  return { ...toSplitInfo(manifest, split, entry), pixels, verifiedCacheFingerprint };
}

/** The per-item file names of a cached split (from `<split>.items.csv`), e.g. for reports. */
export async function loadSplitFilenames(cacheDir: string, split: SplitName): Promise<string[]> {
  const manifest = await readCacheManifest(cacheDir);
  // csv-parse, not a split on commas: ids holding a comma or a quote are written quoted (RFC 4180).
  return (await readItemsFile(cacheDir, manifest.splits[split])).rows.map((r) => r[0]);
}
