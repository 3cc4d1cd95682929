import { registerBackbone } from './registry.ts';
import { conv4Factory } from './conv4.ts';
import { resnet12Factory, resnet12NarrowFactory } from './resnet12.ts';

registerBackbone(conv4Factory);
registerBackbone(resnet12Factory);
registerBackbone(resnet12NarrowFactory);
