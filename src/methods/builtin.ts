import { registerWrapper } from './registry.ts';
import { plainWrapper } from './plain.ts';

registerWrapper(plainWrapper);
