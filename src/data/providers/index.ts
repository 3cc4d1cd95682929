export type { DatasetProvider, LocateContext, ProviderPrepareRequest } from './contract.ts';
export { DEFAULT_DATASET, getDatasetProvider, listDatasetProviders, registerDatasetProvider, resolveDataset, type ResolvedDataset } from './registry.ts';
export { miniImageNetProvider } from './mini-imagenet.ts';
export { csvProvider, readCsvListing, type CsvListing, type CsvOptions } from './csv.ts';
export { CIFAR100_ENV_VAR, cifarFsProvider, fc100Provider, locateCifar100 } from './cifar.ts';
export { TIERED_ENV_VAR, tieredImagenetProvider } from './tiered-imagenet.ts';
export { folderProvider, randomClassSplit } from './folder.ts';
