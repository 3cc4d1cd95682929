// The fast tier (`npm run test:fast`, and first in `npm test`): every test file not named *.slow.test.ts.
// In-process checks of pure functions, registries, configs and bad input; under 2 minutes on 2 cores.
// The short inactivity timeout keeps it fast: a test that trains or waits on a subprocess for a minute belongs
// in the slow tier (name its file *.slow.test.ts).
import base, { SLOW_FILES, TEST_FILES } from './ava.config.js';

export default {
  ...base,
  files: [...TEST_FILES, ...SLOW_FILES.map((glob) => `!${glob}`)],
  timeout: '1m',
};
