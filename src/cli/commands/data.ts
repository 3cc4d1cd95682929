import type { Command } from 'commander';
import { intArg } from '../main.ts';
import { loadPlugins } from '../context.ts';
import { prepareCache } from '../../experiment/index.ts';
import { cliHooks } from '../reporter.ts';
import { datasetOption, datasetOptionsOption, parseDatasetOptions, type DatasetFlags } from '../dataset-flags.ts';

export function registerDataCommands(program: Command): void {
  const data = program.command('data').description('dataset preparation');
  data
    .command('prepare')
    .description('decode a dataset once into a compact uint8 cache (through its provider; `fewshot list` shows providers)')
    .addOption(datasetOption().default('mini-imagenet'))
    .addOption(datasetOptionsOption())
    .option('--data <path>', 'the dataset source (mini-imagenet: its folder, else $FEWSHOT_DATA, else ./data/mini-imagenet; folder/csv: their root or file)')
    .option('--cache <dir>', 'cache folder (default: ./.cache/<dataset>-<size>, or under $FEWSHOT_CACHE)')
    .option('--image-size <px>', 'side of the cached square images', intArg('--image-size', 8), 84)
    .option('--plugin <module...>', 'modules that register extra dataset providers')
    .action(async (flags: DatasetFlags & { data?: string; cache?: string; imageSize: number; plugin?: string[] }) => {
      await loadPlugins(flags.plugin);
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
