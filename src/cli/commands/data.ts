import type { Command } from 'commander';
import { intArg } from '../options.ts';
import { loadPlugins } from '../context.ts';
import { DEFAULT_DATASET } from '../../data/providers/registry.ts';
import { datasetOption, datasetOptionsOption, parseDatasetOptions, type DatasetFlags } from '../dataset-flags.ts';

export function registerDataCommands(program: Command): void {
  const data = program.command('data').description('dataset preparation');
  data
    .command('prepare')
    .description('decode a dataset once into a compact uint8 cache (through its provider; `fewshot list` shows providers)')
    .addOption(datasetOption().default(DEFAULT_DATASET))
    .addOption(datasetOptionsOption())
    .option('--data <path>', 'the dataset source: its folder or file, as the provider expects (else the provider\'s environment variable / default location)')
    .option('--cache <dir>', 'cache folder (default: ./.cache/<dataset>-<size>, or under $FEWSHOT_CACHE)')
    .option('--image-size <px>', 'side of the cached square images', intArg('--image-size', 8), 84)
    .option('--plugin <module...>', 'modules that register extra dataset providers')
    .action(async (flags: DatasetFlags & { data?: string; cache?: string; imageSize: number; plugin?: string[] }) => {
      await loadPlugins(flags.plugin);
      const { prepareCache } = await import('../../experiment/index.ts');
      const { cliHooks } = await import('../reporter.ts');
      const hooks = cliHooks();
      try {
        const { cacheDir } = await prepareCache(
          { dataset: flags.dataset!, datasetOptions: parseDatasetOptions(flags.datasetOption), data: flags.data, cache: flags.cache },
          flags.imageSize,
          hooks,
        );
        process.stdout.write(`cache: ${cacheDir}\n`);
      } finally {
        hooks.done();
      }
    });
}
