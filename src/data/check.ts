import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.ts';
import { sha256File, readSha256Sums, sha256Hex } from './checksums.ts';
import { splitFingerprint } from './cache.ts';
import { SPLIT_NAMES, type SplitItems, type SplitName } from './split-csv.ts';
import { readSplitCsv } from './csv.ts';
import { inspectDatasetFolder, type DatasetFolderInfo } from './locate.ts';
import { readImagesFromArchive, TaskPool } from './sources.ts';

/**
 * `fewshot data check`: what a mini-ImageNet folder holds against what the provider reads, item by item, with
 * the same readers `data prepare` uses (split CSVs, SHA256SUMS, images/ or the .tar.gz archives), but without
 * decoding: every problem is listed (not only the first), and each split's fingerprint (file names, labels and
 * the sha256 of every image file) is compared with the one the committed episode files and results were made
 * with, so a user learns whether their copy is byte-identical to the project's.
 */
export type CheckStatus = 'ok' | 'missing' | 'corrupt' | 'differs';

export interface CheckItem {
  /** What was checked: `train.csv`, `SHA256SUMS: images-val.tar.gz`, `images of test`, ... */
  item: string;
  status: CheckStatus;
  detail: string;
}

export interface DatasetCheck {
  dir: string;
  items: CheckItem[];
  /** No item missing or corrupt (`differs` is a warning: usable, but not the project's copy). */
  ok: boolean;
}

/**
 * The standard mini-ImageNet (Ravi & Larochelle split) as this project holds it: rows and classes per split
 * file, and each split's fingerprint (`splitFingerprint`: file names, labels and image sha256s). The val and
 * test fingerprints are those in the headers of the committed episode files (episodes/mini-imagenet/), the
 * train one is recorded in every committed result (`training.trainData`); test/data-check.slow.test.ts checks both.
 */
export const MINI_IMAGENET_REFERENCE: Record<SplitName, { rows: number; classes: number; splitFingerprint: string }> = {
  train: { rows: 38_400, classes: 64, splitFingerprint: 'b7fd02eed950c961966d767519501848be5403431857a578ecd6504c6ff5dfc9' },
  val: { rows: 9_600, classes: 16, splitFingerprint: '917f27b482108cc25c19ba954ddf456aed8336eb199f8a22bafaf1a7ff98045f' },
  test: { rows: 12_000, classes: 20, splitFingerprint: '73d692395dddf9041400cbaf1cff3989b6d8f22133d6e00d5becb2703520255e' },
};

const n = (x: number) => x.toLocaleString('en-US');
const listSome = (names: string[], max = 5) => `${names.slice(0, max).join(', ')}${names.length > max ? `, … (${n(names.length)} in all)` : ''}`;

/** Records one checked item of the report. */
type AddCheckItem = (item: string, status: CheckStatus, detail: string) => void;

/** Every file SHA256SUMS lists, hashed and compared; returns the listed sums and the hashes computed. */
async function checkListedChecksums(
  dir: string,
  hasChecksums: boolean,
  add: AddCheckItem,
): Promise<{ sums: Map<string, string>; hashed: Map<string, string> }> {
  let sums = new Map<string, string>();
  try {
    sums = await readSha256Sums(dir);
    if (!hasChecksums) add('SHA256SUMS', 'ok', 'absent (optional: lets `data prepare` and this check verify each download)');
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    add('SHA256SUMS', 'corrupt', err.problem);
  }
  const hashed = new Map<string, string>();
  for (const [name, expected] of sums) {
    const file = path.join(dir, name);
    const actual = await sha256File(file).catch(() => undefined);
    if (actual === undefined) add(`SHA256SUMS: ${name}`, 'missing', `listed in SHA256SUMS but ${file} is missing`);
    else if (actual !== expected) add(`SHA256SUMS: ${name}`, 'corrupt', `sha256 ${actual}, SHA256SUMS says ${expected}: corrupt, truncated or another version`);
    else add(`SHA256SUMS: ${name}`, 'ok', `sha256 ${actual}`);
    if (actual) hashed.set(name, actual);
  }
  return { sums, hashed };
}

/** The split files (train.csv, val.csv, test.csv): present, well-formed, the standard number of rows and classes. */
async function checkSplitFiles(dir: string, add: AddCheckItem): Promise<Map<SplitName, SplitItems>> {
  const splits = new Map<SplitName, SplitItems>();
  for (const split of SPLIT_NAMES) {
    const file = path.join(dir, `${split}.csv`);
    const ref = MINI_IMAGENET_REFERENCE[split];
    if (
      !(await fs.stat(file).then(
        () => true,
        () => false,
      ))
    ) {
      add(`${split}.csv`, 'missing', `the ${split} split file (Ravi & Larochelle: ${n(ref.rows)} rows \`filename,label\`, ${ref.classes} classes)`);
      continue;
    }
    try {
      const items = await readSplitCsv(file, split);
      splits.set(split, items);
      const rows = items.filenames.length;
      const standard = rows === ref.rows && items.classes.length === ref.classes;
      add(
        `${split}.csv`,
        standard ? 'ok' : 'differs',
        `${n(rows)} images of ${items.classes.length} classes${standard ? '' : ` (the standard split has ${n(ref.rows)} of ${ref.classes})`}`,
      );
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      add(`${split}.csv`, 'corrupt', err.problem);
    }
  }
  return splits;
}

/**
 * Reads every image `wanted` lists, from images/ or the .tar.gz archives, and records the sha256 of its bytes in
 * `wanted` (an image not found keeps ''); an unreadable archive, or no images at all, is an item.
 */
async function hashListedImages(
  dir: string,
  info: DatasetFolderInfo,
  wanted: Map<string, string>,
  sums: Map<string, string>,
  hashed: Map<string, string>,
  add: AddCheckItem,
): Promise<void> {
  const pool = new TaskPool(32);
  const sink = async (filename: string, bytes: Uint8Array) => {
    wanted.set(filename, sha256Hex(bytes));
  };
  if (info.hasImagesDir) {
    const imagesDir = path.join(dir, 'images');
    for (const filename of wanted.keys()) {
      await pool.capacity();
      pool.submit(async () => {
        const bytes = await fs.readFile(path.join(imagesDir, filename)).catch(() => undefined);
        if (bytes) await sink(filename, bytes);
      });
    }
    await pool.drain();
  } else if (info.archives.length === 0) {
    add(
      'images',
      'missing',
      'neither an images/ folder nor .tar.gz archives of the images (images-train-part1.tar.gz, images-train-part2.tar.gz, images-val.tar.gz, images-test.tar.gz)',
    );
  } else {
    for (const archive of info.archives) {
      const name = path.basename(archive);
      try {
        // A checksum already compared above is not compared again (its item says so).
        const expected = hashed.has(name) ? undefined : sums.get(name);
        const read = await readImagesFromArchive(
          archive,
          expected,
          (f) => wanted.has(f),
          new TaskPool(32),
          (f, bytes) => sink(f, bytes),
        );
        add(name, 'ok', `readable, ${n(read.entries)} files`);
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        add(name, 'corrupt', err.problem);
      }
    }
  }
}

/** One split's images: all present (`wanted`: file name → sha256, '' when not found), and its fingerprint against the project's. */
function checkSplitImages(split: SplitName, sp: SplitItems, wanted: Map<string, string>, where: string, add: AddCheckItem): void {
  const missing = sp.filenames.filter((f) => !wanted.get(f));
  if (missing.length) {
    add(
      `images of ${split}`,
      'missing',
      `${n(missing.length)} of the ${n(sp.filenames.length)} images ${split}.csv lists are not ${where}: ${listSome(missing)}`,
    );
    return;
  }
  const labels = sp.filenames.map((_, i) => sp.classes[sp.labels[i]]);
  const fingerprint = splitFingerprint(
    sp.filenames,
    labels,
    sp.filenames.map((f) => wanted.get(f)!),
  );
  const ref = MINI_IMAGENET_REFERENCE[split].splitFingerprint;
  add(
    `images of ${split}`,
    fingerprint === ref ? 'ok' : 'differs',
    fingerprint === ref
      ? `all ${n(sp.filenames.length)} present, byte-identical to the copy the committed episode files and results were made with`
      : `all ${n(sp.filenames.length)} present, but not byte-identical to the project's copy (split fingerprint ${fingerprint.slice(0, 12)}…, the project's ${ref.slice(0, 12)}…)${
          split === 'train'
            ? ': usable for training, with numbers not exactly comparable to the committed ones'
            : `: the committed ${split} episode files refuse it; make your own with \`fewshot episodes make --split ${split}\` and pass --${split}-file`
        }`,
  );
}

export async function checkMiniImageNetFolder(dir: string): Promise<DatasetCheck> {
  const items: CheckItem[] = [];
  const add = (item: string, status: CheckStatus, detail: string) => items.push({ item, status, detail });
  const info = inspectDatasetFolder(dir);
  if (
    info.problems.length &&
    !(await fs.stat(dir).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  ) {
    add(dir, 'missing', 'the folder does not exist');
    return { dir, items, ok: false };
  }

  // 1. The split files: present, well-formed, the standard number of rows and classes.
  const splits = await checkSplitFiles(dir, add);

  // 2. SHA256SUMS, when present: every file it lists.
  const { sums, hashed } = await checkListedChecksums(dir, info.hasChecksums, add);

  // 3. The images every split file lists: present (images/ or the archives) and, per split, the fingerprint.
  const wanted = new Map<string, string>(); // file name → sha256 of its bytes, once seen
  for (const sp of splits.values()) for (const f of sp.filenames) wanted.set(f, '');
  if (wanted.size === 0) return { dir, items, ok: !items.some((i) => i.status === 'missing' || i.status === 'corrupt') };
  await hashListedImages(dir, info, wanted, sums, hashed, add);
  const where = info.hasImagesDir ? 'in images/' : 'in the archives';
  for (const [split, sp] of splits) checkSplitImages(split, sp, wanted, where, add);
  return { dir, items, ok: !items.some((i) => i.status === 'missing' || i.status === 'corrupt') };
}
