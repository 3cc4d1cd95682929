import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors.ts';
import { parseSplitCsv, type SplitItems, type SplitName } from './split-csv.ts';

// Reading split files from disk; parsing them is split-csv.ts (no Node built-ins: the browser page parses them too).

export async function readSplitCsv(csvPath: string, split: SplitName): Promise<SplitItems> {
  let text: string;
  try {
    text = await fs.readFile(csvPath, 'utf8');
  } catch {
    throw new UserError(
      `split file ${csvPath} is missing or unreadable`,
      `put the mini-ImageNet split CSVs (train.csv, val.csv, test.csv; Ravi & Larochelle split) in ${path.dirname(csvPath)}`,
    );
  }
  return parseSplitCsv(text, split, csvPath);
}

/** Splits must not share images or classes: that would leak test data into training. */
export function checkSplitsDisjoint(splits: SplitItems[]): void {
  const fileOwner = new Map<string, SplitName>();
  const classOwner = new Map<string, SplitName>();
  for (const s of splits) {
    for (const f of s.filenames) {
      const other = fileOwner.get(f);
      if (other) {
        throw new UserError(
          `${f} is listed in both ${other}.csv and ${s.split}.csv`,
          'use the standard Ravi & Larochelle split CSVs, whose splits share no images',
        );
      }
      fileOwner.set(f, s.split);
    }
    for (const c of s.classes) {
      const other = classOwner.get(c);
      if (other) {
        throw new UserError(
          `class ${c} appears in both ${other}.csv and ${s.split}.csv`,
          'use the standard Ravi & Larochelle split CSVs, whose splits share no classes',
        );
      }
      classOwner.set(c, s.split);
    }
  }
}
