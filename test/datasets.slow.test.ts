import test from 'ava';
import { resolvePortablePath } from '../src/util/portable-path.ts';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import { buildFixture, type Fixture } from './fixtures/mini-imagenet.ts';
import { evaluateCheckpoint, openDataset, prepareCache, runExperiment, silentReporter } from '../src/experiment/index.ts';
import { readEpisodeFile, makeEpisodes, writeEpisodeFile } from '../src/episodes/index.ts';
import { loadSplit } from '../src/data/index.ts';
import { readResult } from '../src/reports/results.ts';
import { UserError } from '../src/util/errors.ts';
import '../src/builtin.ts';
import { tinyConfig } from './fixtures/configs.ts';

/**
 * Dataset providers end to end: a `folder` dataset cut from real mini-ImageNet images gives exactly the
 * per-episode accuracies of the same classes read by the `mini-imagenet` provider; a synthetic grey 28 px
 * character set with rotation class augmentation trains and evaluates; bad folders are clear errors.
 */
let fx: Fixture;
test.before(async () => {
  fx = await buildFixture(8);
});
test.after.always(async () => fx?.cleanup());

const baseConfig = (over: Record<string, unknown>) => tinyConfig({ way: 2, shot: 1, query: 3 }, { episodes: 3, ...over });

test.serial('folder provider on real mini-ImageNet images = mini-imagenet provider: same indices, same per-episode accuracies', async (t) => {
  // root/<split>/<class>/<file>.jpg, from the same real images the mini-ImageNet fixture holds.
  const root = path.join(fx.root, 'mini-as-folder');
  for (const split of ['train', 'val', 'test'] as const) {
    for (const r of fx.rows[split]) {
      await fs.mkdir(path.join(root, split, r.label), { recursive: true });
      await fs.writeFile(path.join(root, split, r.label, r.filename), fx.images.get(r.filename)!);
    }
  }
  const common = {
    backend: 'cpu',
    runs: path.join(fx.root, 'runs'),
    results: path.join(fx.root, 'results'),
    episodesDir: path.join(fx.root, 'episodes'),
    testEpisodes: 6,
  };

  // Generic path: prepare, default episode files made on first use, train, evaluate.
  const folderCfg = baseConfig({ dataset: 'folder', datasetOptions: { root, normalization: 'imagenet' } });
  const viaFolder = await runExperiment(folderCfg, { ...common, cache: path.join(fx.root, 'cache-folder'), name: 'folder' }, { reporter: silentReporter });
  tf.disposeVariables();
  t.is(viaFolder.record.data.dataset, 'mini-as-folder');
  t.is(viaFolder.record.data.provider?.id, 'folder');
  t.deepEqual(
    viaFolder.record.data.normalization?.mean.map((m) => Math.round(m * 255 * 1e6) / 1e6),
    [120.395864, 115.593614, 104.540127],
  );
  // results record portable paths (no absolute path of the machine); resolvePortablePath turns them back
  const folderTestFile = resolvePortablePath(viaFolder.record.episodes.file);
  const folderTest = await readEpisodeFile(folderTestFile);
  t.is(path.dirname(folderTestFile), path.join(fx.root, 'episodes', 'mini-as-folder'));

  // The same classes through the mini-ImageNet provider, episodes made with the same seed.
  const miniCache = path.join(fx.root, 'cache-mini');
  await prepareCache({ dataset: 'mini-imagenet', data: fx.folderDir, cache: miniCache }, 16);
  const files: Record<string, string> = {};
  for (const split of ['val', 'test'] as const) {
    const set = makeEpisodes({ split: await loadSplit(miniCache, split), spec: { way: 2, shot: 1, query: 3 }, seed: 0, count: 6 });
    files[split] = path.join(fx.root, `mini-${split}.json`);
    await writeEpisodeFile(files[split], set);
  }
  // The folder-trained checkpoint scored on the mini-ImageNet provider's cache and episodes.
  const viaMini = await evaluateCheckpoint(
    { checkpoint: viaFolder.checkpoint, dataset: 'mini-imagenet' },
    { ...common, cache: miniCache, name: 'mini', testFile: files.test },
  );
  const miniTest = await readEpisodeFile(files.test);

  // Same layout → same sampled indices; same pixels and normalisation → same accuracies, episode by episode.
  for (let i = 0; i < 6; i++) {
    t.deepEqual(Array.from(folderTest.episodes[i].support), Array.from(miniTest.episodes[i].support));
    t.deepEqual(Array.from(folderTest.episodes[i].query), Array.from(miniTest.episodes[i].query));
  }
  const a = await readResult(viaFolder.resultDir);
  const b = await readResult(viaMini.resultDir);
  t.is(b.record.data.dataset, 'mini-imagenet');
  t.deepEqual(a.record.inferenceModes, b.record.inferenceModes);
  for (const m of a.record.inferenceModes) t.deepEqual(Array.from(a.perEpisode[m]), Array.from(b.perEpisode[m]));
  t.is(a.perEpisode[a.record.inferenceModes[0]].length, 6);
  const folderTrain = await loadSplit(path.join(fx.root, 'cache-folder'), 'train');
  const miniTrain = await loadSplit(miniCache, 'train');
  t.true(Buffer.from(folderTrain.pixels).equals(Buffer.from(miniTrain.pixels)), 'decoded pixels are identical');
  t.not(folderTrain.splitFingerprint, miniTrain.splitFingerprint, 'the item names differ, so the fingerprints do');
  // No command was given, so none is recorded.
  t.is(a.record.command, undefined);
});

/** A character-like glyph: a few random strokes of class-specific shape, jittered per image. */
async function glyph(seed: number, jitter: number, size: number): Promise<Buffer> {
  let s = seed * 7919 + 13;
  const rnd = () => (s = (s * 16807) % 2147483647) / 2147483647;
  const pts = Array.from({ length: 4 }, () => [4 + rnd() * (size * 2 - 8), 4 + rnd() * (size * 2 - 8)]);
  const j = (v: number) => v + ((jitter * 37) % 5) - 2;
  const d = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${j(x).toFixed(1)},${j(y).toFixed(1)}`).join(' ');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size * 2}" height="${size * 2}"><rect width="100%" height="100%" fill="white"/><path d="${d}" stroke="black" stroke-width="4" fill="none"/></svg>`;
  return sharp(Buffer.from(svg)).greyscale().png().toBuffer();
}

test.serial('grey 28 px characters with rotation class augmentation (nested, random split) train and evaluate', async (t) => {
  const root = path.join(fx.root, 'chars');
  for (let a = 0; a < 2; a++) {
    for (let c = 0; c < 5; c++) {
      const dir = path.join(root, `alphabet${a}`, `char${c}`);
      await fs.mkdir(dir, { recursive: true });
      for (let k = 0; k < 4; k++) await fs.writeFile(path.join(dir, `${k}.png`), await glyph(a * 10 + c, k, 28));
    }
  }
  const datasetOptions = { root, split: 'random', fractions: { train: 0.6, val: 0.2, test: 0.2 }, rotations: true };
  const cfg = tinyConfig({ way: 3, shot: 1, query: 2 }, { imageSize: 28, dataset: 'folder', datasetOptions });
  const out = await runExperiment(cfg, {
    backend: 'wasm',
    cache: path.join(fx.root, 'cache-chars'),
    runs: path.join(fx.root, 'runs'),
    results: path.join(fx.root, 'results'),
    episodesDir: path.join(fx.root, 'episodes'),
    testEpisodes: 3,
    name: 'chars',
  });
  tf.disposeVariables();
  const opened = await openDataset({ dataset: 'folder', datasetOptions, cache: path.join(fx.root, 'cache-chars') }, 28, { autoPrepare: false });
  const train = await opened.split('train');
  // 10 characters: 6/2/2 by the fractions, each ×4 rotations.
  t.is(train.loaded.classes.length, 24);
  t.is((await opened.split('test')).loaded.classes.length, 8);
  t.regex(train.loaded.classes[0], /^alphabet\d\/char\d@rot0$/);
  t.is(opened.manifest.decode.sourceSizes['56x56'], 40, 'source size recorded (each file decoded once)');
  t.is(opened.manifest.decode.resized, 40);
  // Rotated copies: class @rot90 item k is item k of @rot0 turned a quarter.
  const s = 28;
  const px = train.loaded.pixels;
  const img = (item: number) => px.subarray(item * s * s * 3, (item + 1) * s * s * 3);
  const r0 = img(train.loaded.classOffsets[0]);
  const r90 = img(train.loaded.classOffsets[1]);
  let same = 0;
  for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) if (r90[(y * s + x) * 3] === r0[(x * s + (s - 1 - y)) * 3]) same++;
  t.is(same, s * s);
  for (let p = 0; p < r0.length; p += 3) if (r0[p] !== r0[p + 1] || r0[p] !== r0[p + 2]) return t.fail('not grey');
  t.is(out.record.episodes.evaluated, 3);
  // Seed 0 on plain wasm: the accuracy of this 2-episode training on its 3 test episodes, pinned (a change to the
  // sampler, the provider's split or the training shows here).
  t.deepEqual(out.record.inferenceModes, ['plain']);
  t.is(out.record.summary.plain.mean, 0.9444444444444445); // 17 of 18 queries over the 3 episodes
  t.deepEqual(out.record.data.provider?.options.rotations, true);
});

test.serial('bad folders: one-image class, non-image file, split file naming a missing class, unknown dataset/option', async (t) => {
  const mk = async (name: string, layout: Record<string, number>, extra: Record<string, string> = {}) => {
    const root = path.join(fx.root, name);
    for (const [cls, n] of Object.entries(layout)) {
      await fs.mkdir(path.join(root, cls), { recursive: true });
      for (let k = 0; k < n; k++) await fs.writeFile(path.join(root, cls, `${k}.png`), await glyph(k, k, 10));
    }
    for (const [f, text] of Object.entries(extra)) await fs.writeFile(path.join(root, f), text);
    return root;
  };
  const expectError = async (ws: Parameters<typeof prepareCache>[0], re: RegExp) => {
    const cache = path.join(fx.root, `bad-cache-${Math.random().toString(16).slice(2)}`);
    const err = await t.throwsAsync(prepareCache({ ...ws, cache }, 16), { instanceOf: UserError });
    t.regex(err!.message, re);
    t.false(
      await fs.stat(cache).then(
        () => true,
        () => false,
      ),
      'nothing half-written',
    );
  };
  const one = await mk('one', { a: 3, b: 1, c: 3, d: 3 });
  await expectError({ dataset: 'folder', datasetOptions: { root: one, split: 'random' } }, /class "b" .* has 1 image/);
  const junk = await mk('junk', { a: 3, b: 3, c: 3, d: 3, e: 3 }, { 'a/notes.txt': 'x' });
  await expectError({ dataset: 'folder', datasetOptions: { root: junk, split: 'random' } }, /notes\.txt is not an image file/);
  const broken = await mk('broken', { a: 3, b: 3, c: 3, d: 3, e: 3 }, { 'a/zz.png': 'not a png' });
  await expectError({ dataset: 'folder', datasetOptions: { root: broken, split: 'random' } }, /zz\.png .*cannot be used/);
  const sf = await mk('sf', { a: 3, b: 3, c: 3 });
  const lists = async (tag: string, train: string, val: string, test: string) => {
    const f = (s: string) => path.join(fx.root, `${tag}-${s}.txt`);
    await fs.writeFile(f('train'), train);
    await fs.writeFile(f('val'), val);
    await fs.writeFile(f('test'), test);
    return { train: f('train'), val: f('val'), test: f('test') };
  };
  await expectError({ dataset: 'folder', datasetOptions: { root: sf, splitFiles: await lists('nope', 'a\n', 'b\n', 'nope\n') } }, /names class "nope"/);
  await expectError(
    { dataset: 'folder', datasetOptions: { root: sf, splitFiles: await lists('twice', 'a\n', 'b\n', 'a\nc\n') } },
    /class "a" is listed in both/,
  );
  await expectError({ dataset: 'folder', datasetOptions: { root: one } }, /cannot tell how to split/);
  await expectError({ dataset: 'no-such-data' }, /unknown dataset "no-such-data"[\s\S]*mini-imagenet/);
  await expectError({ dataset: 'folder', datasetOptions: { root: one, colour: true } }, /invalid options for dataset "folder".*colour/);
});
