import test from 'ava';
// @ts-expect-error: a plain .mjs script without type declarations
import { scan, longFunctions, allowance } from '../scripts/long-functions.mjs';
import path from 'node:path';
import { REPO_ROOT } from './fixtures/mini-imagenet.ts';

type Found = { file: string; name: string; line: number; lines: number; allowed?: string };

test('no function over 100 lines outside the kernels, the pickle interpreter and the allow-list (scripts/long-functions.mjs)', (t) => {
  const found: Found[] = scan(100);
  const bad = found.filter((f) => !f.allowed);
  t.deepEqual(
    bad.map((f) => `${f.file}:${f.line} ${f.name} (${f.lines} lines)`),
    [],
  );
});

test('the scanner measures real spans: the pickle interpreter is found, allowed, and a 40-line limit finds more', (t) => {
  const pickle: Found[] = longFunctions(path.join(REPO_ROOT, 'src/data/readers/pickle.ts'), 100);
  t.deepEqual(
    pickle.map((f) => f.name),
    ['unpickle'],
  );
  t.true(pickle[0].lines > 200);
  t.truthy(allowance(pickle[0]));
  t.is(allowance({ file: 'src/train/trainer.ts', name: 'train', line: 1, lines: 101 }), undefined);
  t.true(scan(40).filter((f: Found) => !f.allowed).length > 0);
});
