import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import seedrandom from 'seedrandom';
import { z } from 'zod';
import { UserError } from '../../util/errors.ts';
import { SPLIT_NAMES, type SplitName } from '../split-csv.ts';
import { CIFAR_FS_NORMALIZATION, MINI_IMAGENET_NORMALIZATION, type Normalization } from '../normalize.ts';
import { writeImageCache, type FileClass, type FileSplit, type QuarterTurns } from '../cache-writer.ts';
import { sha256Hex } from '../checksums.ts';
import { isFolderEntry } from '../../util/dir-entry.ts';
import type { DatasetProvider } from './contract.ts';

/** File extensions read as images; other files (except hidden ones) are an error, not silently skipped. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.bmp', '.gif', '.webp', '.tif', '.tiff'];

const fraction = z.number().min(0).max(1);
export const normalizationOption = z.union([
  z.enum(['train', 'imagenet', 'cifar']),
  z
    .object({ mean: z.tuple([z.number(), z.number(), z.number()]), std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]) })
    .strict(),
]);

/** Options every user dataset of labelled image files takes, whether listed by folders or by a CSV file. */
export const imageFileDatasetOptions = {
  /** Dataset name (cache, episode and results folders); default: the folder's (or CSV file's) name. */
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/)
    .optional(),
  /** Fractions of classes per split for a seeded random split (default 0.64/0.16/0.20, mini-ImageNet's 64/16/20). */
  fractions: z.object({ train: fraction, val: fraction, test: fraction }).strict().optional(),
  splitSeed: z.number().int().min(0).default(0),
  /** Convert images to grey (character datasets are usually grey already; colour sources are converted). */
  grayscale: z.boolean().default(false),
  /** Class augmentation by rotation: every class becomes 4 classes (0°, 90°, 180°, 270°), as for Omniglot. */
  rotations: z.boolean().default(false),
  /** Normalisation: statistics of the train split (default), the ImageNet/mini-ImageNet or CIFAR constants, or explicit values. */
  normalization: normalizationOption.default('train'),
};

const optionsSchema = z
  .object({
    /** The dataset folder (`--data` sets it). */
    root: z.string().min(1),
    /** `flat`: <class>/<image>; `nested`: <group>/<class>/<image> (class name `group/class`); `auto` tells them apart. */
    layout: z.enum(['auto', 'flat', 'nested']).default('auto'),
    /** How classes are split: `folders` (train/ val/ test/ at the top), `files` (splitFiles), `random` (seeded, by fractions). */
    split: z.enum(['auto', 'folders', 'files', 'random']).default('auto'),
    /** Text files listing one class per line (`class`, or `group/class` when nested), per split. */
    splitFiles: z.object({ train: z.string(), val: z.string(), test: z.string() }).strict().optional(),
    ...imageFileDatasetOptions,
  })
  .strict();
export type FolderOptions = z.infer<typeof optionsSchema>;

const isHidden = (name: string) => name.startsWith('.') || name === 'Thumbs.db' || name === 'desktop.ini';

function entries(dir: string): { dirs: string[]; files: string[] } {
  const dirs: string[] = [];
  const files: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (isHidden(e.name)) continue;
    (isFolderEntry(dir, e) ? dirs : files).push(e.name);
  }
  // Code-unit order: the same on every machine and locale.
  return { dirs: dirs.sort(), files: files.sort() };
}

const LAYOUT_HELP = 'lay the images out as <root>/<class>/<image> or <root>/<group>/<class>/<image>, optionally under <root>/train, val and test';

/** Classes under `dir` (flat or nested); `prefix` is the path of `dir` relative to the dataset root. */
function readClasses(dir: string, prefix: string, layout: FolderOptions['layout'], root: string): FileClass[] {
  const top = entries(dir);
  if (top.files.length > 0) {
    throw new UserError(`${path.join(dir, top.files[0])} is a file where class folders were expected`, `${LAYOUT_HELP}; remove or move the stray file`);
  }
  const classes: FileClass[] = [];
  const readClass = (classDir: string, name: string, rel: string) => {
    const { dirs, files } = entries(classDir);
    if (dirs.length > 0)
      throw new UserError(
        `class folder ${classDir} holds a sub-folder (${dirs[0]})`,
        `${LAYOUT_HELP}; use --dataset-option layout=nested for <group>/<class>/<image>`,
      );
    for (const f of files) {
      if (!IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase())) {
        throw new UserError(
          `${path.join(classDir, f)} is not an image file (extension ${path.extname(f) || 'none'})`,
          `remove it; images must end in ${IMAGE_EXTENSIONS.join(', ')}`,
        );
      }
    }
    classes.push({ name, items: files.map((f) => ({ file: path.join(classDir, f), id: path.posix.join(rel, f) })) });
  };
  let nested = layout === 'nested';
  if (layout === 'auto' && top.dirs.length > 0) {
    const first = entries(path.join(dir, top.dirs[0]));
    nested = first.files.length === 0 && first.dirs.length > 0;
  }
  for (const d of top.dirs) {
    if (!nested) {
      readClass(path.join(dir, d), d, path.posix.join(prefix, d));
      continue;
    }
    const group = entries(path.join(dir, d));
    if (group.files.length > 0)
      throw new UserError(
        `${path.join(dir, d, group.files[0])} is a file in a group folder`,
        `${LAYOUT_HELP}; in the nested layout a group folder holds only class folders`,
      );
    for (const c of group.dirs) readClass(path.join(dir, d, c), `${d}/${c}`, path.posix.join(prefix, d, c));
  }
  if (classes.length === 0) throw new UserError(`${dir} holds no class folders`, LAYOUT_HELP);
  void root;
  return classes;
}

function readSplitFile(file: string, root: string): string[] {
  const abs = path.resolve(root, file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch {
    throw new UserError(
      `split file ${abs} is missing or unreadable`,
      'give splitFiles as text files (relative to the root or absolute) listing one class per line',
    );
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Which classes go to which split, by the chosen rule. */
export function splitClasses(options: FolderOptions, root: string): { splits: Record<SplitName, FileClass[]>; files: Record<string, string> } {
  const hasSplitFolders = SPLIT_NAMES.every((s) => existsSync(path.join(root, s)) && statSync(path.join(root, s)).isDirectory());
  const rule = options.split === 'auto' ? (hasSplitFolders ? 'folders' : options.splitFiles ? 'files' : undefined) : options.split;
  if (!rule) {
    throw new UserError(
      `cannot tell how to split the classes of ${root} into train/val/test`,
      'put them under train/ val/ test/ folders, or pass --dataset-option split=random (optionally fractions={"train":0.64,"val":0.16,"test":0.2}), or splitFiles={"train":"train.txt","val":"val.txt","test":"test.txt"}',
    );
  }
  const files: Record<string, string> = {};
  if (rule === 'folders') {
    if (!hasSplitFolders) throw new UserError(`${root} has no train/, val/ and test/ folders`, 'create them, or choose split=random or split=files');
    return {
      splits: Object.fromEntries(SPLIT_NAMES.map((s) => [s, readClasses(path.join(root, s), s, options.layout, root)])) as Record<SplitName, FileClass[]>,
      files,
    };
  }
  const all = readClasses(root, '', options.layout, root);
  const byName = new Map(all.map((c) => [c.name, c]));
  if (rule === 'files') {
    if (!options.splitFiles)
      throw new UserError('split=files needs splitFiles', 'pass --dataset-option splitFiles={"train":"train.txt","val":"val.txt","test":"test.txt"}');
    const splits = {} as Record<SplitName, FileClass[]>;
    const owner = new Map<string, SplitName>();
    for (const s of SPLIT_NAMES) {
      const file = options.splitFiles[s];
      const names = readSplitFile(file, root);
      files[s] = sha256Hex(readFileSync(path.resolve(root, file)));
      splits[s] = names.map((n) => {
        const c = byName.get(n);
        if (!c)
          throw new UserError(
            `split file ${path.resolve(root, file)} names class "${n}", which is not a folder of ${root}`,
            'fix the name in the split file or add the class folder',
          );
        const other = owner.get(n);
        if (other) throw new UserError(`class "${n}" is listed in both the ${other} and the ${s} split files`, 'list each class in exactly one split file');
        owner.set(n, s);
        return c;
      });
    }
    return { splits, files };
  }
  return { splits: randomClassSplit(all, options.fractions, options.splitSeed), files };
}

/**
 * A seeded random class split: shuffle the classes' names in the given order (callers pass them sorted)
 * and cut by the fractions (default 0.64/0.16/0.20, mini-ImageNet's 64/16/20). Shared by `folder` and `csv`.
 */
export function randomClassSplit(
  all: FileClass[],
  fractions: { train: number; val: number; test: number } | undefined,
  seed: number,
): Record<SplitName, FileClass[]> {
  const fr = fractions ?? { train: 0.64, val: 0.16, test: 0.2 };
  const sum = fr.train + fr.val + fr.test;
  if (Math.abs(sum - 1) > 1e-9) throw new UserError(`fractions add up to ${sum}, not 1`, 'give train, val and test fractions that sum to 1');
  const byName = new Map(all.map((c) => [c.name, c]));
  const order = all.map((c) => c.name);
  const rng = seedrandom(`fewshot-folder-split|seed=${seed}`);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const nTrain = Math.round(fr.train * order.length);
  const nVal = Math.round(fr.val * order.length);
  const pick = (names: string[]) => names.sort().map((n) => byName.get(n)!);
  return { train: pick(order.slice(0, nTrain)), val: pick(order.slice(nTrain, nTrain + nVal)), test: pick(order.slice(nTrain + nVal)) };
}

/** Rotation class augmentation: class c becomes c@rot0, c@rot90, c@rot180, c@rot270 (in c's split). */
export function rotateClasses(classes: FileClass[]): FileClass[] {
  return classes.flatMap((c) =>
    ([0, 1, 2, 3] as QuarterTurns[]).map((k) => ({
      name: `${c.name}@rot${90 * k}`,
      items: c.items.map((it) => ({ ...it, id: `${it.id}@rot${90 * k}`, rotation: k })),
    })),
  );
}

/** The three splits as writeImageCache takes them, each class in its four rotations when asked for. */
export function fileSplitsOf(splits: Record<SplitName, FileClass[]>, rotations: boolean | undefined): FileSplit[] {
  return SPLIT_NAMES.map((s) => ({ split: s, classes: rotations ? rotateClasses(splits[s]) : splits[s] }));
}

/**
 * A prepared cache's normalisation for providers whose option is fixed: 'train' (statistics of the train split) is
 * recorded in the cache manifest at prepare time and read from there, so it never reaches this call.
 */
export function recordedNormalization(n: FolderOptions['normalization'], provider: string): Normalization & { origin: string } {
  const fixed = fixedNormalization(n);
  if (fixed === 'train') throw new Error(`${provider} cache without recorded normalisation`);
  return fixed;
}

export function fixedNormalization(n: FolderOptions['normalization']): (Normalization & { origin: string }) | 'train' {
  if (n === 'train') return 'train';
  if (n === 'imagenet') return { ...MINI_IMAGENET_NORMALIZATION, origin: 'ImageNet constants (as the mini-ImageNet loaders)' };
  if (n === 'cifar') return { ...CIFAR_FS_NORMALIZATION, origin: 'CIFAR-100 constants (as the CIFAR-FS/FC100 loaders)' };
  return { mean: n.mean, std: n.std, origin: 'given in the dataset options' };
}

/** Your own images as class folders: any size (resized, recorded), colour or grey, three ways to split. */
export const folderProvider: DatasetProvider<FolderOptions> = {
  id: 'folder',
  description:
    'image class folders: <root>/<class>/<img> or <root>/<group>/<class>/<img>; split by train/val/test folders, split files or a seeded random split',
  optionsSchema,
  sourceOption: 'root',
  sourceHelp: LAYOUT_HELP,
  name: (o) => o.name ?? path.basename(path.resolve(o.root)),
  locate: (o) => {
    const root = path.resolve(o.root);
    if (!existsSync(root) || !statSync(root).isDirectory())
      throw new UserError(`dataset folder ${root} does not exist or is not a folder`, `pass the folder with --data <folder>; ${LAYOUT_HELP}`);
    return root;
  },
  prepare: async (r) => {
    const { splits, files } = splitClasses(r.options, r.source);
    return writeImageCache({
      cacheDir: r.cacheDir,
      imageSize: r.imageSize,
      dataset: r.dataset,
      provider: { id: 'folder', options: r.options },
      splits: fileSplitsOf(splits, r.options.rotations),
      grayscale: r.options.grayscale,
      normalization: fixedNormalization(r.options.normalization),
      source: { kind: 'class-folders', path: r.source, files },
      signal: r.signal,
      onProgress: r.onProgress,
    });
  },
  normalization: (o) => recordedNormalization(o.normalization, 'folder'),
  defaultAugment: 'none',
  makesMissingEpisodeFiles: true,
};
