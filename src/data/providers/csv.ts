import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { UserError } from '../../util/errors.ts';
import { sha256Hex } from '../checksums.ts';
import { isSplitName, parseCsvRecords, SPLIT_NAMES, type SplitName } from '../split-csv.ts';
import { writeImageCache, type FileClass } from '../cache-writer.ts';
import type { DatasetProvider } from './contract.ts';
import { fileSplitsOf, fixedNormalization, IMAGE_EXTENSIONS, imageFileDatasetOptions, randomClassSplit, recordedNormalization } from './folder.ts';

const optionsSchema = z
  .object({
    /** The CSV file (`--data` sets it). */
    file: z.string().min(1),
    /** Folder relative image paths are resolved against; default: the CSV file's folder. */
    imagesRoot: z.string().min(1).optional(),
    /** `fractions` and `splitSeed` apply when the rows have no split column. */
    ...imageFileDatasetOptions,
  })
  .strict();
export type CsvOptions = z.infer<typeof optionsSchema>;

const ROW_HELP =
  'one image per row: `path,label` or `path,label,split` (split = train, val or test), optionally under a header row `path,label[,split]`; fields may be quoted';

export interface CsvListing {
  /** Classes per split, in first-appearance order; items in row order. */
  splits: Record<SplitName, FileClass[]>;
  /** True when the rows named the split; false when it was drawn at random. */
  splitColumn: boolean;
}

/** Read a (path, label[, split]) CSV into classes per split. Every row is checked; errors name the line. */
export function readCsvListing(file: string, options: Pick<CsvOptions, 'imagesRoot' | 'fractions' | 'splitSeed'>): CsvListing {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`CSV file ${file} is missing or unreadable`, `pass the CSV with --data <file.csv>; ${ROW_HELP}`);
  }
  const records = parseCsvRecords(text, file, ROW_HELP);
  const head = records[0]?.fields.map((f) => f.toLowerCase());
  const hasHeader = head !== undefined && head[0] === 'path' && head[1] === 'label';
  const rows = hasHeader ? records.slice(1) : records;
  if (rows.length === 0) throw new UserError(`CSV file ${file} has no image rows`, ROW_HELP);
  const width = rows[0].fields.length;
  if (width !== 2 && width !== 3) throw new UserError(`${file} line ${rows[0].line} has ${width} fields`, ROW_HELP);
  const base = path.resolve(options.imagesRoot ?? path.dirname(file));
  const classes = new Map<string, { split?: SplitName; items: FileClass['items']; line: number }>();
  const seen = new Map<string, number>();
  for (const { line, fields } of rows) {
    if (fields.length !== width)
      throw new UserError(`${file} line ${line} has ${fields.length} fields, the first row ${width}`, `give every row the same columns; ${ROW_HELP}`);
    const [rel, label, split] = fields;
    if (!rel || !label) throw new UserError(`${file} line ${line} has an empty path or label`, ROW_HELP);
    if (split !== undefined && !isSplitName(split)) throw new UserError(`${file} line ${line} names split "${split}"`, `use train, val or test; ${ROW_HELP}`);
    const abs = path.resolve(base, rel);
    if (!IMAGE_EXTENSIONS.includes(path.extname(abs).toLowerCase())) {
      throw new UserError(
        `${file} line ${line}: ${abs} is not an image file (extension ${path.extname(abs) || 'none'})`,
        `list only images ending in ${IMAGE_EXTENSIONS.join(', ')}`,
      );
    }
    const first = seen.get(abs);
    if (first !== undefined) throw new UserError(`${file} lists ${abs} twice (lines ${first} and ${line})`, 'list each image once');
    seen.set(abs, line);
    let c = classes.get(label);
    if (!c) classes.set(label, (c = { split: split as SplitName | undefined, items: [], line }));
    if (c.split !== split) {
      throw new UserError(
        `class "${label}" is in both the ${c.split} split (line ${c.line}) and the ${split} split (line ${line}) of ${file}`,
        'put each class in exactly one split, so no test class is seen in training',
      );
    }
    c.items.push({ file: abs, id: path.relative(base, abs).split(path.sep).join('/') });
  }
  const all: (FileClass & { split?: SplitName })[] = [...classes].map(([name, c]) => ({ name, items: c.items, split: c.split }));
  if (width === 3) {
    const splits = Object.fromEntries(SPLIT_NAMES.map((s) => [s, all.filter((c) => c.split === s).map(({ name, items }) => ({ name, items }))])) as Record<
      SplitName,
      FileClass[]
    >;
    return { splits, splitColumn: true };
  }
  const sorted = all.map(({ name, items }) => ({ name, items })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { splits: randomClassSplit(sorted, options.fractions, options.splitSeed), splitColumn: false };
}

/** Images listed in a CSV of (path, label[, split]) rows; without a split column, a seeded random class split. */
export const csvProvider: DatasetProvider<CsvOptions> = {
  id: 'csv',
  description: 'images listed in a CSV of path,label[,split] rows (paths relative to the CSV file); without a split column a seeded random class split',
  optionsSchema,
  sourceOption: 'file',
  sourceHelp: ROW_HELP,
  name: (o) => o.name ?? path.basename(o.file, path.extname(o.file)),
  locate: (o) => {
    const file = path.resolve(o.file);
    if (!existsSync(file) || !statSync(file).isFile())
      throw new UserError(`CSV file ${file} does not exist`, `pass the CSV with --data <file.csv>; ${ROW_HELP}`);
    return file;
  },
  prepare: async (r) => {
    const listing = readCsvListing(r.source, r.options);
    return writeImageCache({
      cacheDir: r.cacheDir,
      imageSize: r.imageSize,
      dataset: r.dataset,
      provider: { id: 'csv', options: r.options },
      splits: fileSplitsOf(listing.splits, r.options.rotations),
      grayscale: r.options.grayscale,
      normalization: fixedNormalization(r.options.normalization),
      source: { kind: 'csv', path: r.source, files: { csv: sha256Hex(readFileSync(r.source)) } },
      signal: r.signal,
      onProgress: r.onProgress,
    });
  },
  normalization: (o) => recordedNormalization(o.normalization, 'csv'),
  defaultAugment: 'none',
  makesMissingEpisodeFiles: true,
};
