// Registers the built-in dataset providers. Plugins register theirs the same way (registerDatasetProvider).
import { registerDatasetProvider } from './registry.ts';
import { miniImageNetProvider } from './mini-imagenet.ts';

registerDatasetProvider(miniImageNetProvider);
import { folderProvider } from './folder.ts';

registerDatasetProvider(folderProvider);
