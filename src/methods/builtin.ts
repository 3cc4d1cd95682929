import { registerWrapper } from './registry.ts';
import { plainWrapper } from './plain.ts';
import { slaWrapper } from './sla.ts';
import { slaSdWrapper } from './sla-sd.ts';
import { daWrapper } from './da.ts';
import { mtWrapper } from './mt.ts';

registerWrapper(plainWrapper);
registerWrapper(slaWrapper);
registerWrapper(slaSdWrapper);
registerWrapper(daWrapper);
registerWrapper(mtWrapper);
