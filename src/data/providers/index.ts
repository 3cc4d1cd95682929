export type { DatasetProvider, LocateContext, ProviderEpisodeSet, ProviderPrepareRequest } from './contract.ts';
export { getDatasetProvider, listDatasetProviders, registerDatasetProvider, resolveDataset, type ResolvedDataset } from './registry.ts';
export { MINI_IMAGENET_EPISODE_SETS, miniImageNetProvider } from './mini-imagenet.ts';
