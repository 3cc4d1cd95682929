import type { Command } from 'commander';
import { intArg, pluginOption, dataOption, cacheOption } from '../options.ts';
import { loadPlugins } from '../context.ts';
import { datasetOption, datasetOptionsOption, parseDatasetOptions, type DatasetFlags } from '../dataset-flags.ts';
import { DEFAULT_DATASET } from '../../experiment/defaults.ts';
import type { MakeEpisodeFileRequest } from '../../experiment/episode-file.ts';

/** The request's fields, one flag each; --dataset and --dataset-option as typed. */
interface EpisodeFlags extends DatasetFlags, Omit<MakeEpisodeFileRequest, 'dataset' | 'datasetOptions'> {
  plugin?: string[];
}

export function registerEpisodeCommands(program: Command): void {
  const episodes = program.command('episodes').description('fixed episode files');
  episodes
    .command('make')
    .description('sample N-way K-shot episodes from a split into a fixed, fingerprinted episode file')
    .requiredOption('--split <name>', 'train, val or test')
    .option('--way <n>', 'classes per episode', intArg('--way', 2), 5)
    .option('--shot <n>', 'support images per class', intArg('--shot'), 1)
    .option('--query <n>', 'query images per class', intArg('--query'), 15)
    .option('--count <n>', 'number of episodes', intArg('--count'), 2000)
    .option('--seed <n>', 'sampler seed', intArg('--seed', 0), 0)
    .option('--image-size <px>', 'which prepared cache to read the split from (any size works: indices do not depend on it)', intArg('--image-size', 8), 84)
    .addOption(datasetOption().default(DEFAULT_DATASET))
    .addOption(datasetOptionsOption())
    .addOption(dataOption('the dataset source, for providers that name the dataset by it (folder, csv)'))
    .addOption(cacheOption('cache folder'))
    .addOption(pluginOption('modules that register extra dataset providers (repeat the flag for more)'))
    .option('--out <file>', 'output file (default: episodes/<dataset>/<split>_<spec>_seed<seed>_<count>.json)')
    .action(async (flags: EpisodeFlags) => {
      await loadPlugins(flags.plugin);
      const [{ makeEpisodeFile }, { cliHooks }] = await Promise.all([import('../../experiment/episode-file.ts'), import('../reporter.ts')]);
      const { split, way, shot, query, count, seed, imageSize, data, cache, out } = flags;
      const hooks = cliHooks();
      try {
        const made = await makeEpisodeFile(
          {
            split,
            way,
            shot,
            query,
            count,
            seed,
            imageSize,
            dataset: flags.dataset!,
            datasetOptions: parseDatasetOptions(flags.datasetOption),
            data,
            cache,
            out,
          },
          hooks,
        );
        process.stdout.write(`wrote ${made.out}\n`);
      } finally {
        hooks.done();
      }
    });
}
