// The slow tier (`npm run test:slow`, second in `npm test`): the files named *.slow.test.ts. Real training, the
// CLI end-to-end through subprocesses, the wasm and native kernels against the cpu backend, the queue (redis),
// the browser page (chromium).
import base, { SLOW_FILES } from './ava.config.js';

export default {
  ...base,
  files: SLOW_FILES,
};
