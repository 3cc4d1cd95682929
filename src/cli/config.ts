import type { ConfigOverrides } from '../experiment/config.ts';
import { parseDatasetOptions, type DatasetFlags } from './dataset-flags.ts';

/** Flags shared by `train` and `run` that override fields of the experiment config. */
export interface TrainFlags extends DatasetFlags, Omit<ConfigOverrides, 'method' | 'dataset' | 'datasetOptions'> {
  config?: string;
}

/**
 * The training config of `train`/`run`: the experiment file (`--config`, with its `extends`) ← the flags; the method
 * given on the command line wins over the file's. The experiment layer (tfjs-free module) does the merging.
 */
export async function resolveTrainConfig(method: string, flags: TrainFlags) {
  const { loadExperimentConfig } = await import('../experiment/config.ts');
  const { config, dataset, datasetOption, ...overrides } = flags;
  return loadExperimentConfig(config, { ...overrides, method, dataset, datasetOptions: parseDatasetOptions(datasetOption) });
}
