import { parse as parseCsv } from 'csv-parse/sync';
import { UserError } from '../util/errors.ts';

/**
 * The split CSVs (`filename,label` rows) as data: parsing and the split's item order, with no Node built-ins, so
 * the browser page maps an episode file's item indices to image files exactly as the cache does (csv.ts reads
 * the files from disk through this).
 */
/** The three Ravi & Larochelle split files, in the order caches and fingerprints list them. */
export const SPLIT_NAMES = ['train', 'val', 'test'] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];

export function isSplitName(name: string): name is SplitName {
  return (SPLIT_NAMES as readonly string[]).includes(name);
}

/** One split's item list, grouped by class. Item i of the split is `filenames[i]`. */
export interface SplitItems {
  split: SplitName;
  /** Class labels (e.g. wnids) in order of first appearance in the CSV. */
  classes: string[];
  /** Number of items of class c. */
  itemsPerClass: number[];
  /** First item index of class c; items of class c are classOffsets[c] .. classOffsets[c] + itemsPerClass[c] - 1. */
  classOffsets: number[];
  /** Image file names (basenames) in item order. */
  filenames: string[];
  /** Class index of each item. */
  labels: Int32Array;
}

const HEADER = 'filename,label';
// A plain file name: no directory parts, nothing that could escape `images/`.
const FILENAME_RE = /^[A-Za-z0-9._-]+$/;
const LABEL_RE = /^[A-Za-z0-9._-]+$/;

/** One parsed CSV record with its 1-based line number in the file. */
export interface CsvRecord {
  line: number;
  fields: string[];
  /** The record's raw text (for error messages). */
  raw: string;
}

/**
 * Parse CSV text into records with csv-parse (RFC 4180: quoted fields, doubled quotes, CRLF, a BOM),
 * dropping blank lines; a malformed file (an unclosed quote, …) is a UserError naming the line.
 */
export function parseCsvRecords(text: string, where: string, fix: string): CsvRecord[] {
  let rows: { record: string[]; info: { lines: number; raw?: string } }[];
  try {
    rows = parseCsv(text, { bom: true, skip_empty_lines: true, relax_column_count: true, trim: true, info: true, raw: true }) as unknown as typeof rows;
  } catch (err) {
    const e = err as { message?: string; lines?: number };
    throw new UserError(`${where} is not valid CSV${e.lines ? ` (line ${e.lines})` : ''}: ${e.message ?? String(err)}`, fix);
  }
  return rows.map((r) => ({ line: r.info.lines, fields: r.record, raw: (r as { raw?: string }).raw ?? r.record.join(',') }));
}

/**
 * Parse a split CSV (`filename,label`, one image per row; fields may be quoted). Rows must name distinct
 * files; they are grouped by class (stably, by first appearance), which is the CSV order itself for the
 * standard files, whose rows are already grouped.
 */
export function parseSplitCsv(text: string, split: SplitName, where: string): SplitItems {
  const fix = `restore ${where.split(/[\\/]/).pop()} from the mini-ImageNet download (header \`${HEADER}\`, then one \`<file>.jpg,<class>\` row per image)`;
  if (text.replace(/^\uFEFF/, '').trim() === '') throw new UserError(`${where} is empty`, fix);
  const records = parseCsvRecords(text, where, fix);
  const header = records[0].fields.join(',');
  if (header !== HEADER) {
    throw new UserError(`${where} has header \`${header.slice(0, 80)}\`, expected \`${HEADER}\``, fix);
  }
  if (records.length === 1) throw new UserError(`${where} has a header but no rows`, fix);

  const byClass = new Map<string, string[]>();
  const seen = new Map<string, number>();
  for (const { line: lineNo, fields, raw } of records.slice(1)) {
    if (fields.length !== 2 || !FILENAME_RE.test(fields[0]) || !LABEL_RE.test(fields[1])) {
      throw new UserError(`${where} line ${lineNo} is not \`<file name>,<label>\`: \`${raw.trim().slice(0, 80)}\``, fix);
    }
    const [filename, label] = fields;
    const firstLine = seen.get(filename);
    if (firstLine !== undefined) {
      throw new UserError(`${where} lists ${filename} twice (lines ${firstLine} and ${lineNo})`, `remove the duplicate row; ${fix}`);
    }
    seen.set(filename, lineNo);
    let list = byClass.get(label);
    if (!list) byClass.set(label, (list = []));
    list.push(filename);
  }

  const classes = [...byClass.keys()];
  const itemsPerClass: number[] = [];
  const classOffsets: number[] = [];
  const filenames: string[] = [];
  const labels = new Int32Array(seen.size);
  classes.forEach((label, c) => {
    const files = byClass.get(label)!;
    classOffsets.push(filenames.length);
    itemsPerClass.push(files.length);
    labels.fill(c, filenames.length, filenames.length + files.length);
    filenames.push(...files);
  });
  return { split, classes, itemsPerClass, classOffsets, filenames, labels };
}
