import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { buildFixture, type Fixture } from './fixtures/mini-imagenet.ts';
import { episodesMakeArgs, prepareCliFixture, runCliOneThread as runCli, tinyTrainingArgs } from './fixtures/run-cli.ts';
import { exists } from './fixtures/fs.ts';
import { describeSplit, loadSplit } from '../src/data/index.ts';
import { makeEpisodes, readEpisodeFile, writeEpisodeFile } from '../src/episodes/index.ts';
import { UserError } from '../src/util/errors.ts';

/**
 * A class layout edited consistently — every file still self-consistent, every fingerprint unchanged — must not
 * move class boundaries unnoticed (issue 26 #9): neither in a cache manifest (itemsPerClass/classOffsets, which
 * the fingerprints do not hash but the labels they do hash determine) nor in an episode file's header
 * (itemsPerClass, which the file's own checks use). Real caches and episode files, real CLI runs.
 */
const SIZE = '16';
let fx: Fixture;
let cache: string;

test.before(async () => {
  fx = await buildFixture(6);
  cache = await prepareCliFixture(fx, SIZE, runCli, { splits: [] });
});
test.after.always(async () => fx?.cleanup());

/** Move the boundary between classes 0 and 1 of a layout by one item (class 0 gains class 1's first item). */
const shifted = (counts: number[]) => counts.map((n, c) => (c === 0 ? n + 1 : c === 1 ? n - 1 : n));
const offsetsOf = (counts: number[]) => counts.map((_, c) => counts.slice(0, c).reduce((a, b) => a + b, 0));

test.serial('a cache manifest whose class layout was edited consistently is refused: loading and making episodes', async (t) => {
  const edited = path.join(fx.root, 'cache-edited');
  await fs.cp(await fs.realpath(cache), edited, { recursive: true });
  const file = path.join(edited, 'manifest.json');
  const manifest = JSON.parse(await fs.readFile(file, 'utf8'));
  const val = manifest.splits.val;
  val.itemsPerClass = shifted(val.itemsPerClass);
  val.classOffsets = offsetsOf(val.itemsPerClass); // self-consistent: counts, offsets and sizes agree
  await fs.writeFile(file, JSON.stringify(manifest, null, 2));

  const layout = {
    instanceOf: UserError,
    message:
      /manifest\.json \(val\): the class layout \(classes, itemsPerClass, classOffsets\) disagrees with the fingerprinted labels of val\.items\.csv \(class 0: .* with 6 items there, .* with 7 in the manifest\)/,
  };
  await t.throwsAsync(loadSplit(edited, 'val'), layout);
  await t.throwsAsync(describeSplit(edited, 'val'), layout);
  // the unedited splits of the same cache load
  t.is((await loadSplit(edited, 'train')).numItems, fx.rows.train.length);
  // the CLI: an episode file is not made from the edited layout
  const out = path.join(fx.root, 'from-edited.json');
  const made = await runCli(episodesMakeArgs({ split: 'val', size: SIZE, cache: edited, out }));
  t.is(made.code, 2, made.stderr);
  t.regex(made.stderr, /disagrees with the fingerprinted labels/);
  t.false(await exists(out));
});

test.serial('an episode file whose header layout was edited consistently (same fingerprint) is refused by run, before training', async (t) => {
  const split = await describeSplit(cache, 'val');
  // The same fingerprint, class 1's first image counted as class 0: episodes drawn under that layout are
  // valid for the edited header (the file's own checks pass), and wrong for the data.
  const lie = { ...split, itemsPerClass: shifted(split.itemsPerClass), classOffsets: offsetsOf(shifted(split.itemsPerClass)) };
  const valFile = path.join(fx.root, 'val-edited.json');
  await writeEpisodeFile(valFile, makeEpisodes({ split: lie, spec: { way: 2, shot: 1, query: 3 }, seed: 0, count: 4 }));
  t.is((await readEpisodeFile(valFile)).header.splitFingerprint, split.splitFingerprint);
  const testFile = path.join(fx.root, 'test.json');
  const made = await runCli(episodesMakeArgs({ split: 'test', size: SIZE, cache, out: testFile }));
  t.is(made.code, 0, made.stderr);
  const runs = path.join(fx.root, 'runs');
  const training = { command: 'run', method: 'protonet', size: SIZE, cache, root: fx.root, runs, results: path.join(fx.root, 'results'), episodes: 2 } as const;
  const run = await runCli(tinyTrainingArgs({ ...training, valFile, testFile }));
  t.is(run.code, 2, run.stderr);
  t.regex(
    run.stderr,
    /val-edited\.json: its class layout \(splitClasses\/itemsPerClass\) disagrees with the loaded mini-imagenet val split although the split fingerprints agree \(class 0: .* with 7 items in the file, .* with 6 in the split\): the file was edited/,
  );
  t.regex(run.stderr, /fix: restore the episode file/);
  t.false(await exists(path.join(runs, 'r', 'last')), 'nothing trained');
});
