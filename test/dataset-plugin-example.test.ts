import test from 'ava';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { loadPlugins, prepareCache } from '../src/experiment/index.ts';
import { loadSplit, readCacheManifest, splitFingerprint } from '../src/data/index.ts';
import { buildFixture, REPO_ROOT, type Fixture } from './fixtures/mini-imagenet.ts';
import '../src/builtin.ts';

/**
 * examples/named-files-dataset.ts, the README's one-file dataset plugin, on a small real folder: 7 real
 * mini-ImageNet classes × 4 JPEGs renamed to the Pets layout `<wnid>_<n>.jpg`. Its cache must hold exactly the
 * pixels the built-in mini-ImageNet provider caches for the same files (one writer, one decoder).
 */
const EXAMPLE = path.join(REPO_ROOT, 'examples', 'named-files-dataset.ts');
let fx: Fixture;
test.before(async () => {
  fx = await buildFixture(4);
});
test.after.always(async () => fx?.cleanup());

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('the example dataset plugin imports only fewshot (and node built-ins)', async (t) => {
  const source = await fs.readFile(EXAMPLE, 'utf8');
  const from = [...source.matchAll(/^import [^;]*? from '([^']+)';$/gm)].map((m) => m[1]);
  t.deepEqual(from, ['node:fs', 'node:path', 'fewshot']);
});

test('the example dataset plugin prepares a real image folder; its pixels equal the mini-imagenet provider’s', async (t) => {
  const pets = path.join(fx.root, 'pets');
  await fs.mkdir(pets);
  const rows = [...fx.rows.train, ...fx.rows.val, ...fx.rows.test];
  const renamed = new Map<string, string>();
  for (const r of rows) {
    const n = rows.filter((x) => x.label === r.label).indexOf(r);
    renamed.set(r.filename, `${r.label}_${n}.jpg`);
    await fs.writeFile(path.join(pets, `${r.label}_${n}.jpg`), fx.images.get(r.filename)!);
  }
  await loadPlugins([EXAMPLE]);
  const cache = path.join(fx.root, 'cache-named');
  const { manifest } = await prepareCache({ dataset: 'named-files', data: pets, cache }, 32);
  t.is(manifest.dataset, 'pets');
  t.is(manifest.provider?.id, 'named-files');
  t.is(manifest.decode.images, 28);
  const classes = [...new Set(rows.map((r) => r.label))].sort();
  // 7 classes sorted by name: round(7 × 0.64) = 4 train, round(7 × 0.16) = 1 val, 2 test.
  t.deepEqual(manifest.splits.train.classes, classes.slice(0, 4));
  t.deepEqual(manifest.splits.val.classes, classes.slice(4, 5));
  t.deepEqual(manifest.splits.test.classes, classes.slice(5));
  t.deepEqual(await readCacheManifest(cache), manifest);
  t.true(manifest.normalization!.origin!.startsWith('computed from the 16 cached train images'));

  const mini = path.join(fx.root, 'cache-mini');
  await prepareCache({ dataset: 'mini-imagenet', data: fx.folderDir, cache: mini }, 32);
  const miniPixels = new Map<string, Uint8Array>();
  for (const s of ['train', 'val', 'test'] as const) {
    const split = await loadSplit(mini, s);
    const names = (await fs.readFile(path.join(mini, `${s}.items.csv`), 'utf8'))
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(',')[0]);
    names.forEach((f, i) => miniPixels.set(renamed.get(f)!, split.pixels.subarray(i * 3072, (i + 1) * 3072)));
  }
  let compared = 0;
  for (const s of ['train', 'val', 'test'] as const) {
    const split = await loadSplit(cache, s);
    const lines = (await fs.readFile(path.join(cache, `${s}.items.csv`), 'utf8'))
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(','));
    t.is(lines.length, manifest.splits[s].numItems);
    lines.forEach(([id, label, itemSha], i) => {
      t.is(label, id.slice(0, id.lastIndexOf('_')));
      t.is(itemSha, sha(fx.images.get([...renamed].find(([, to]) => to === id)![0])!));
      t.is(sha(split.pixels.subarray(i * 3072, (i + 1) * 3072)), sha(miniPixels.get(id)!), `${id} pixels`);
      compared++;
    });
    t.is(
      manifest.splits[s].splitFingerprint,
      splitFingerprint(
        lines.map((l) => l[0]),
        lines.map((l) => l[1]),
        lines.map((l) => l[2]),
      ),
    );
  }
  t.is(compared, 28);
});
