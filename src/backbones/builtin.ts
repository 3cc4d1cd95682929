import { registerBackbone } from './registry.ts';
import { conv4Factory } from './conv4.ts';

registerBackbone(conv4Factory);
