// ava's settings for every test file: `npx ava test/<file>.test.ts` runs one file of either tier with these.
// `npm run test:fast` and `npm run test:slow` narrow them to a tier (ava.fast.config.js, ava.slow.config.js).
// The tier of a file is its name: *.slow.test.ts is slow, every other *.test.ts is fast (docs/testing.md).
export const TEST_FILES = ['test/**/*.test.ts', 'src/**/*.test.ts', 'plugins/**/*.test.ts'];
export const SLOW_FILES = ['test/**/*.slow.test.ts', 'src/**/*.slow.test.ts', 'plugins/**/*.slow.test.ts'];

export default {
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx', '--conditions=fewshot-source'],
  workerThreads: false,
  files: TEST_FILES,
  // ava's timeout is for inactivity: no test of any file finished for this long. The slowest slow test (a CLI
  // training and evaluation end-to-end) takes about a minute on a quiet 2-core machine; several times that when the
  // machine is shared.
  timeout: '5m',
  concurrency: 2,
};
