import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.ts';
import { SPLIT_NAMES } from './split-csv.ts';

export const DATA_ENV_VAR = 'FEWSHOT_DATA';
export const DEFAULT_DATA_DIR = path.join('data', 'mini-imagenet');

/** What a dataset folder holds; `problems` is empty when it can be prepared. */
export interface DatasetFolderInfo {
  dir: string;
  csvs: string[];
  missingCsvs: string[];
  hasImagesDir: boolean;
  /** `.tar.gz` / `.tgz` files directly in the folder, sorted by name. */
  archives: string[];
  hasChecksums: boolean;
  problems: string[];
}

export const ARCHIVE_RE = /\.(tar\.gz|tgz)$/i;

export function inspectDatasetFolder(dir: string): DatasetFolderInfo {
  const info: DatasetFolderInfo = { dir, csvs: [], missingCsvs: [], hasImagesDir: false, archives: [], hasChecksums: false, problems: [] };
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    info.problems.push(`${dir} does not exist or is not a folder`);
    return info;
  }
  for (const split of SPLIT_NAMES) {
    const csv = path.join(dir, `${split}.csv`);
    if (existsSync(csv)) info.csvs.push(csv);
    else info.missingCsvs.push(`${split}.csv`);
  }
  const images = path.join(dir, 'images');
  info.hasImagesDir = existsSync(images) && statSync(images).isDirectory();
  info.archives = readdirSync(dir)
    .filter((f) => ARCHIVE_RE.test(f))
    .sort()
    .map((f) => path.join(dir, f));
  info.hasChecksums = existsSync(path.join(dir, 'SHA256SUMS'));
  if (info.missingCsvs.length > 0) info.problems.push(`${dir} has no ${info.missingCsvs.join(', ')}`);
  if (!info.hasImagesDir && info.archives.length === 0) info.problems.push(`${dir} has neither an images/ folder nor .tar.gz archives of the images`);
  return info;
}

export const DATASET_LAYOUT_HELP =
  'mini-ImageNet must be a folder holding the Ravi & Larochelle split files train.csv, val.csv and test.csv ' +
  '(header `filename,label`) and the 60,000 images, either unpacked as images/<file>.jpg or as .tar.gz archives ' +
  'containing images/<file>.jpg (read straight from the archives, no need to unpack; a SHA256SUMS file beside them is checked)';

/** Where the mini-ImageNet folder is looked for (absolute), and which setting said so; not checked. */
export function datasetDirOf(
  flag?: string,
  env: Record<string, string | undefined> = process.env,
  cwd: string = process.cwd(),
): { dir: string; origin: string } {
  const fromEnv = env[DATA_ENV_VAR];
  const [dir, origin] =
    flag !== undefined && flag !== '' ? [flag, '--data'] : fromEnv ? [fromEnv, `$${DATA_ENV_VAR}`] : [DEFAULT_DATA_DIR, 'the default location'];
  return { dir: path.resolve(cwd, dir), origin };
}

/**
 * Find the mini-ImageNet folder: the `--data` flag, else $FEWSHOT_DATA, else ./data/mini-imagenet.
 * An explicitly named folder that is unusable is an error, not a reason to look elsewhere.
 */
export function locateDataset(flag?: string, env: Record<string, string | undefined> = process.env, cwd: string = process.cwd()): string {
  const { dir: abs, origin } = datasetDirOf(flag, env, cwd);
  const info = inspectDatasetFolder(abs);
  if (info.problems.length > 0) {
    throw new UserError(
      `no usable mini-ImageNet at ${abs} (from ${origin}): ${info.problems.join('; ')}`,
      `${DATASET_LAYOUT_HELP}. Point to it with --data <folder>, or set ${DATA_ENV_VAR}=<folder>, or put it at ./${DEFAULT_DATA_DIR}`,
    );
  }
  return abs;
}
