import type { Command } from 'commander';
import { intArg } from '../main.ts';
import { locateDataset } from '../../data/index.ts';
import { prepareWithProgress, resolveCacheDir } from '../workspace.ts';

export function registerDataCommands(program: Command): void {
  const data = program.command('data').description('dataset preparation');
  data
    .command('prepare')
    .description('decode mini-ImageNet once into a compact cache (images/ folder or .tar.gz archives + Ravi CSVs)')
    .option('--data <dir>', 'mini-ImageNet folder; else $FEWSHOT_DATA, else ./data/mini-imagenet')
    .option('--cache <dir>', 'cache folder (default: ./.cache/mini-imagenet-<size>, or under $FEWSHOT_CACHE)')
    .option('--image-size <px>', 'side of the cached square images', intArg('--image-size', 8), 84)
    .action(async (flags: { data?: string; cache?: string; imageSize: number }) => {
      const source = locateDataset(flags.data);
      const cacheDir = resolveCacheDir(flags.cache, flags.imageSize);
      await prepareWithProgress(source, cacheDir, flags.imageSize);
      process.stdout.write(`cache: ${cacheDir}\n`);
    });
}
