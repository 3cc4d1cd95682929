import { resolveDataset, type ResolvedDataset } from '../data/providers/registry.ts';
import { resolveMethod, type ResolvedMethod } from '../methods/build.ts';
import type { TrainConfig } from '../train/config.ts';
import { validatedConfig } from './validate.ts';
import { datasetOptionsWithData } from './workspace.ts';

/**
 * An experiment config resolved against the registries, once, before the backend loads or any data is read:
 * the config validated (defaults filled in) with `--data` applied to the dataset's options, the dataset's
 * provider with its options validated, and the method (head, wrapper, head options, backbone). Every check of
 * the config runs here, each once; training and evaluation take the resolved parts instead of checking again.
 */
export interface ResolvedExperiment {
  config: TrainConfig;
  dataset: ResolvedDataset;
  method: ResolvedMethod;
}

export function resolveExperiment(raw: TrainConfig, data?: string): ResolvedExperiment {
  const validated = validatedConfig(raw);
  const config = { ...validated, datasetOptions: datasetOptionsWithData(validated.dataset, validated.datasetOptions, data) };
  const dataset = resolveDataset(config.dataset, config.datasetOptions);
  const method = resolveMethod({ name: config.method, backbone: config.backbone, headConfig: config.headConfig });
  return { config, dataset, method };
}
