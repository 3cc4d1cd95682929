/**
 * Lists the images of tiered-ImageNet (Ren et al., ICLR 2018) from its class-folder distribution: one folder
 * per ILSVRC-2012 class, named by WordNet id, holding that class's images (the common release stores them
 * as 84×84 JPEGs). Two layouts are accepted:
 * - split folders: `<root>/train/<wnid>/`, `<root>/val/<wnid>/`, `<root>/test/<wnid>/`;
 * - flat: `<root>/<wnid>/` for all 608 classes (or `<root>/images/<wnid>/`); the split comes from the class
 *   lists alone, and folders of other classes (e.g. the rest of ILSVRC's 1,000) are ignored and reported.
 * The split lists are the 351 / 97 / 160 WordNet ids of `splits/tiered-imagenet/` (see splits.ts).
 * Decoding and resizing are left to the caller; this module only finds the files and checks the classes.
 */
import { promises as fs, type Dirent } from 'node:fs';
import path from 'node:path';
import { UserError } from '../../util/errors.ts';
import { isFolderEntry } from '../../util/dir-entry.ts';
import { BENCHMARK_SPLITS, tieredImagenetClasses, type BenchmarkSplit } from './splits.ts';

export type TieredLayout = 'split-folders' | 'flat';

export interface TieredClass {
  readonly wnid: string;
  /** Absolute path of the class folder. */
  readonly dir: string;
  /** Image file names in the folder, sorted by code unit. */
  readonly files: readonly string[];
}

export interface TieredImagenetListing {
  /** The folder that holds the class (or split) folders. */
  readonly root: string;
  readonly layout: TieredLayout;
  /** Classes per split, in the order of the split lists. */
  readonly splits: Readonly<Record<BenchmarkSplit, readonly TieredClass[]>>;
  /** Flat layout only: sub-folders that are not tiered-ImageNet classes, skipped. */
  readonly ignoredFolders: readonly string[];
}

export const TIERED_IMAGE_EXTENSIONS: readonly string[] = ['.jpeg', '.jpg', '.png'];

const LAYOUT_HELP =
  'put the tiered-ImageNet class folders (named by WordNet id, e.g. n01530575) either under <root>/train, <root>/val and <root>/test, or all directly under <root>';

async function readDir(dir: string): Promise<Dirent[]> {
  try {
    return await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new UserError(`cannot read folder ${dir} (${code})`, `check the path; ${LAYOUT_HELP}`);
  }
}

const visible = (e: Dirent): boolean => !e.name.startsWith('.');
const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

async function listClassFolder(wnid: string, dir: string): Promise<TieredClass> {
  const files: string[] = [];
  for (const e of (await readDir(dir)).filter(visible)) {
    const full = path.join(dir, e.name);
    if (isFolderEntry(dir, e))
      throw new UserError(`class folder ${dir} contains a sub-folder ${e.name}`, 'a class folder must hold only its image files; move the sub-folder out');
    if (!TIERED_IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) {
      throw new UserError(`${full} is not an image file (expected ${TIERED_IMAGE_EXTENSIONS.join(', ')})`, `remove it from the class folder ${dir}`);
    }
    files.push(e.name);
  }
  if (files.length === 0)
    throw new UserError(
      `class folder ${dir} (tiered-ImageNet class ${wnid}) holds no images`,
      'copy the class images into it, or use a complete tiered-ImageNet release',
    );
  files.sort(byCodeUnit);
  return { wnid, dir, files };
}

function listMissing(missing: string[], split: string): string {
  const shown = missing.slice(0, 5).join(', ') + (missing.length > 5 ? `, … (${missing.length} in all)` : '');
  return `tiered-ImageNet ${split} class${missing.length > 1 ? 'es' : ''} ${shown}`;
}

/**
 * List the images of every tiered-ImageNet class under `root`, checking that all 608 listed classes are
 * present, each in its own split. A missing class, a class folder under two split folders or under the
 * wrong one, an unknown class folder in a split folder, an empty class folder or a non-image file is a
 * `UserError` naming it.
 */
export async function listTieredImagenet(root: string): Promise<TieredImagenetListing> {
  const lists = tieredImagenetClasses();
  const splitOf = new Map<string, BenchmarkSplit>();
  for (const split of BENCHMARK_SPLITS) for (const wnid of lists[split]) splitOf.set(wnid, split);

  const top = (await readDir(root)).filter((e) => visible(e) && isFolderEntry(root, e)).map((e) => e.name);
  const splitDirs = BENCHMARK_SPLITS.filter((s) => top.includes(s));

  if (splitDirs.length > 0) {
    const absentSplits = BENCHMARK_SPLITS.filter((s) => !top.includes(s));
    if (absentSplits.length > 0)
      throw new UserError(
        `${root} has ${splitDirs.map((s) => `${s}/`).join(' and ')} but no ${absentSplits.map((s) => `${s}/`).join(' or ')} folder`,
        LAYOUT_HELP,
      );
    const found = {} as Record<BenchmarkSplit, string[]>;
    for (const split of BENCHMARK_SPLITS) {
      found[split] = (await readDir(path.join(root, split))).filter((e) => visible(e) && isFolderEntry(path.join(root, split), e)).map((e) => e.name);
    }
    // A class in two split folders first (it is the cause of any "wrong split" below), then misplaced,
    // unknown and missing classes.
    const firstSeen = new Map<string, BenchmarkSplit>();
    for (const split of BENCHMARK_SPLITS) {
      for (const wnid of found[split]) {
        const prior = firstSeen.get(wnid);
        if (prior) {
          throw new UserError(
            `class ${wnid} is in two splits: ${path.join(root, prior, wnid)} and ${path.join(root, split, wnid)}`,
            `keep it only under ${path.join(root, splitOf.get(wnid) ?? prior)} (a class belongs to one split)`,
          );
        }
        firstSeen.set(wnid, split);
      }
    }
    const splits = {} as Record<BenchmarkSplit, TieredClass[]>;
    for (const split of BENCHMARK_SPLITS) {
      const dir = path.join(root, split);
      for (const wnid of found[split]) {
        const listed = splitOf.get(wnid);
        if (!listed)
          throw new UserError(
            `${path.join(dir, wnid)} is not a tiered-ImageNet class`,
            `remove it; the ${split} split holds the ${lists[split].length} listed classes only`,
          );
        if (listed !== split)
          throw new UserError(
            `class ${wnid} is under ${split}/ but tiered-ImageNet puts it in ${listed}`,
            `move ${path.join(dir, wnid)} to ${path.join(root, listed, wnid)}`,
          );
      }
      const present = new Set(found[split]);
      const missing = lists[split].filter((w) => !present.has(w));
      if (missing.length > 0)
        throw new UserError(
          `${dir} lacks ${listMissing(missing, split)}`,
          `add the missing class folders (a complete tiered-ImageNet has ${lists[split].length} ${split} classes)`,
        );
      splits[split] = await Promise.all(lists[split].map((wnid) => listClassFolder(wnid, path.join(dir, wnid))));
    }
    return { root, layout: 'split-folders', splits, ignoredFolders: [] };
  }

  // Flat: class folders directly under root, or under root/images as in the common release.
  let base = root;
  let names = top;
  if (!names.some((n) => splitOf.has(n)) && names.includes('images')) {
    base = path.join(root, 'images');
    names = (await readDir(base)).filter((e) => visible(e) && isFolderEntry(base, e)).map((e) => e.name);
  }
  const present = new Set(names);
  const splits = {} as Record<BenchmarkSplit, TieredClass[]>;
  for (const split of BENCHMARK_SPLITS) {
    const missing = lists[split].filter((w) => !present.has(w));
    if (missing.length > 0) throw new UserError(`${base} lacks ${listMissing(missing, split)}`, `add the missing class folders; ${LAYOUT_HELP}`);
  }
  for (const split of BENCHMARK_SPLITS) splits[split] = await Promise.all(lists[split].map((wnid) => listClassFolder(wnid, path.join(base, wnid))));
  const ignoredFolders = names.filter((n) => !splitOf.has(n)).sort(byCodeUnit);
  return { root: base, layout: 'flat', splits, ignoredFolders };
}
