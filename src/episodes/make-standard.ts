import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describeSplit } from '../data/cache.ts';
import { episodeFileName, makeEpisodes, writeEpisodeFile } from './file.ts';
import { EPISODES_DIR, STANDARD_EPISODE_SETS } from './standard.ts';

export interface WrittenEpisodeFile {
  file: string;
  sha256: string;
  count: number;
}

/**
 * (Re)write the standard episode files from a prepared cache. The episodes depend only on the
 * split layout, the seed and the sampler, so any cache size (84 or 32) of the same data gives
 * byte-identical files; the cache supplies the split fingerprint recorded in them.
 */
export async function makeStandardEpisodeFiles(options: {
  cacheDir: string;
  outDir?: string;
  onWritten?: (w: WrittenEpisodeFile) => void;
}): Promise<WrittenEpisodeFile[]> {
  const { cacheDir, outDir = EPISODES_DIR, onWritten } = options;
  const written: WrittenEpisodeFile[] = [];
  for (const std of STANDARD_EPISODE_SETS) {
    const split = await describeSplit(cacheDir, std.split);
    const set = makeEpisodes({ split, spec: std.spec, seed: std.seed, count: std.count });
    const file = path.join(outDir, episodeFileName(set.header));
    const w = { file, sha256: await writeEpisodeFile(file, set), count: std.count };
    written.push(w);
    onWritten?.(w);
  }
  return written;
}

// `npx tsx src/episodes/make-standard.ts <cacheDir> [outDir]` regenerates the committed files. Only when run
// as the entry point, and without top-level await, so importing this module (a bundler, or a CommonJS plugin
// that requires fewshot's sources through tsx) runs nothing and compiles to either module format.
async function main(argv: string[]): Promise<void> {
  const [cacheDir, outDir] = argv;
  if (!cacheDir) {
    console.error('usage: tsx src/episodes/make-standard.ts <cacheDir> [outDir]');
    process.exit(2);
  }
  await makeStandardEpisodeFiles({ cacheDir, outDir, onWritten: (w) => console.log(`${w.file}  ${w.count} episodes  sha256 ${w.sha256}`) });
}

const invokedPath = process.argv[1];
if (invokedPath && typeof import.meta?.url === 'string' && import.meta.url === pathToFileURL(path.resolve(invokedPath)).href) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
