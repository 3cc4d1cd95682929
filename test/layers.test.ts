import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './fixtures/mini-imagenet.ts';

/*
 * The layer order that docs/layout.md writes down is the one the code follows: every relative import (static or
 * dynamic) of a file in src/<layer>/ names its own layer or one below it. The order is read from the doc's
 * `layers:` line, so the doc cannot drift from the code, nor the code from the doc.
 */
const SRC = path.join(REPO_ROOT, 'src');
const doc = readFileSync(path.join(REPO_ROOT, 'docs', 'layout.md'), 'utf8');
const layers = /^layers: (.+)$/m.exec(doc)?.[1].split(' → ') ?? [];

/** The rank of a path under src/ (its first segment), or undefined for what stands above the layers. */
function rankOf(relative: string): number | undefined {
  const first = relative.split(path.sep)[0];
  if (first === 'tf-gradients.ts' || first === 'vendor') return 0;
  if (first === 'builtin.ts') return layers.indexOf('methods') + 0.5;
  const i = layers.indexOf(first);
  return i < 0 ? undefined : i;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'vendor' ? [] : sourceFiles(p);
    return /\.(ts|mts)$/.test(e.name) && !/\.test\.ts$/.test(e.name) ? [p] : [];
  });
}

test('docs/layout.md names the layers from data up to cli, and every folder of src/ is placed', (t) => {
  t.deepEqual(layers, [
    'util',
    'backend',
    'data',
    'episodes',
    'transforms',
    'backbones',
    'learners',
    'losses',
    'methods',
    'eval',
    'train',
    'reports',
    'experiment',
    'cli',
  ]);
  const unplaced = readdirSync(SRC, { withFileTypes: true })
    .filter((e) => rankOf(e.name) === undefined)
    .map((e) => e.name)
    .sort();
  t.deepEqual(unplaced, ['browser', 'index.ts'], 'a new folder of src/ gets its place in docs/layout.md');
});

test('every import in src/ goes down the layers of docs/layout.md', (t) => {
  const upward: string[] = [];
  let checked = 0;
  for (const file of sourceFiles(SRC)) {
    const from = rankOf(path.relative(SRC, file));
    if (from === undefined) continue;
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = path.relative(SRC, path.resolve(path.dirname(file), m[1]));
      const to = rankOf(target);
      checked++;
      if (to === undefined || to > from) upward.push(`${path.relative(SRC, file)} imports ${m[1]}`);
    }
  }
  t.true(checked > 300, `only ${checked} imports found: the pattern no longer matches the code`);
  t.deepEqual(upward, []);
});
