// Registers the built-in dataset providers. Plugins register theirs the same way (registerDatasetProvider).
import { registerDatasetProvider } from './registry.ts';
import { miniImageNetProvider } from './mini-imagenet.ts';
import { folderProvider } from './folder.ts';
import { csvProvider } from './csv.ts';
import { cifarFsProvider, fc100Provider } from './cifar.ts';
import { tieredImagenetProvider } from './tiered-imagenet.ts';

registerDatasetProvider(miniImageNetProvider);
registerDatasetProvider(folderProvider);
registerDatasetProvider(csvProvider);
registerDatasetProvider(cifarFsProvider);
registerDatasetProvider(fc100Provider);
registerDatasetProvider(tieredImagenetProvider);
