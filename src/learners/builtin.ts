import { registerHead } from './registry.ts';
import { protonetFactory } from './protonet.ts';

registerHead(protonetFactory);
