import { registerHead } from './registry.ts';
import { protonetFactory } from './protonet/index.ts';
import { metaOptNetSvmFactory } from './metaoptnet/svm.ts';
import { metaOptNetRrFactory } from './metaoptnet/rr.ts';

registerHead(protonetFactory);
registerHead(metaOptNetSvmFactory);
registerHead(metaOptNetRrFactory);
