import type { Command } from 'commander';
import { intArg, jsonOption, printJson, pluginOption, dataOption, cacheOption } from '../options.ts';
import { loadPlugins } from '../context.ts';
import { DEFAULT_DATASET } from '../../experiment/defaults.ts';
import { datasetOption, datasetOptionsOption, parseDatasetOptions, type DatasetFlags } from '../dataset-flags.ts';

export function registerDataCommands(program: Command): void {
  const data = program.command('data').description('dataset preparation');
  registerDataPrepare(data);
  registerDataCheck(data);
}

type PrepareFlags = DatasetFlags & { data?: string; cache?: string; imageSize?: number; plugin?: string[] };

function registerDataPrepare(data: Command): void {
  data
    .command('prepare')
    .description('decode a dataset once into a compact uint8 cache (through its provider; `fewshot list` shows providers)')
    .addOption(datasetOption().default(DEFAULT_DATASET))
    .addOption(datasetOptionsOption())
    .addOption(dataOption("the dataset source: its folder or file, as the provider expects (else the provider's environment variable / default location)"))
    .addOption(cacheOption('cache folder (default: ./.cache/<dataset>-<size>, or under $FEWSHOT_CACHE)'))
    .option(
      '--image-size <px>',
      "side of the cached square images (default: the dataset's own size where all its images have one, 32 for cifar-fs and fc100; else 84)",
      intArg('--image-size', 8),
    )
    .addOption(pluginOption('modules that register extra dataset providers (repeat the flag for more)'))
    .action(dataPrepareAction);
}

async function dataPrepareAction(flags: PrepareFlags): Promise<void> {
  await loadPlugins(flags.plugin);
  const { prepareCache, defaultImageSize } = await import('../../experiment/index.ts');
  const { cliHooks } = await import('../reporter.ts');
  const hooks = cliHooks();
  try {
    const { cacheDir } = await prepareCache(
      { dataset: flags.dataset!, datasetOptions: parseDatasetOptions(flags.datasetOption), data: flags.data, cache: flags.cache },
      flags.imageSize ?? defaultImageSize(flags.dataset!),
      hooks,
    );
    process.stdout.write(`cache: ${cacheDir}\n`);
  } finally {
    hooks.done();
  }
}

type CheckFlags = DatasetFlags & { data?: string; plugin?: string[]; json?: boolean };

function registerDataCheck(data: Command): void {
  data
    .command('check')
    .description(
      "say exactly what is missing or corrupt in a dataset source (mini-ImageNet: split files, SHA256SUMS, every listed image, and whether it is the project's copy)",
    )
    .addOption(datasetOption().default(DEFAULT_DATASET))
    .addOption(datasetOptionsOption())
    .addOption(dataOption("the dataset source to check (else the provider's environment variable / default location, as `data prepare` looks)"))
    .addOption(pluginOption('modules that register extra dataset providers (repeat the flag for more)'))
    .addOption(jsonOption())
    .action(dataCheckAction);
}

async function dataCheckAction(flags: CheckFlags): Promise<void> {
  await loadPlugins(flags.plugin);
  const { checkData, dataCheckFailure } = await import('../../experiment/index.ts');
  const report = await checkData({ dataset: flags.dataset, datasetOptions: parseDatasetOptions(flags.datasetOption), data: flags.data });
  if (flags.json) printJson({ format: 'fewshot-data-check/1', ...report });
  else {
    process.stdout.write(`${report.dataset} at ${report.source} (from ${report.origin})\n`);
    for (const i of report.items) process.stdout.write(`${i.status.toUpperCase().padEnd(8)} ${i.item}: ${i.detail}\n`);
  }
  const failure = dataCheckFailure(report);
  if (failure) throw failure;
}
