import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import { collectingReporter, openDataset, prepareCache, runExperiment } from '../src/experiment/index.ts';
import { resolveTrainConfig } from '../src/cli/config.ts';
import { runCli } from './fixtures/run-cli.ts';
import { loadSplit, readCacheManifest } from '../src/data/index.ts';
import { CIFAR_FS_NORMALIZATION, MINI_IMAGENET_NORMALIZATION } from '../src/data/normalize.ts';
import { cifarBenchmarkClasses, PUBLISHED_SPLIT_SIZES, tieredImagenetClasses } from '../src/data/readers/index.ts';
import { UserError } from '../src/util/errors.ts';
import { resolvePortablePath } from '../src/util/portable-path.ts';
import { FINE_NAMES, binaryMembers, makePart, packArchive, pythonMembers, workdir, type FixturePart, type Workdir } from './fixtures/cifar100.ts';
import { buildFixture, type Fixture } from './fixtures/mini-imagenet.ts';
import '../src/builtin.ts';
import { tinyConfig } from './fixtures/configs.ts';

/**
 * The csv, cifar-fs, fc100 and tiered-imagenet providers on small sources in the real layouts: CIFAR-100
 * archives of both kinds with every fine class (3 train + 1 test image each), a fake tiered-ImageNet tree
 * with all 608 classes (2 images each), and a CSV over real mini-ImageNet images.
 */
let wd: Workdir;
// Fine label of image n: n mod 100, so every class has 3 train images and 1 test image.
const TRAIN = makePart(
  3,
  Array.from({ length: 300 }, (_, n) => n % 100),
);
const TEST = makePart(
  4,
  Array.from({ length: 100 }, (_, n) => n),
);
let pythonArchive: string;
let binaryArchive: string;
test.before(async () => {
  wd = await workdir();
  pythonArchive = await packArchive(path.join(wd.dir, 'cifar-100-python.tar.gz'), pythonMembers(TRAIN, TEST));
  binaryArchive = await packArchive(path.join(wd.dir, 'cifar-100-binary.tar.gz'), binaryMembers(TRAIN, TEST));
});
test.after.always(async () => wd?.cleanup());

const image = (part: FixturePart, n: number) => Buffer.from(part.nhwc.subarray(n * 3072, (n + 1) * 3072));

for (const benchmark of ['cifar-fs', 'fc100'] as const) {
  test(`${benchmark}: both archive kinds → the same cache; published class counts; train+test merged; CIFAR normalisation`, async (t) => {
    const caches: string[] = [];
    for (const archive of [pythonArchive, binaryArchive]) {
      const cache = path.join(wd.dir, `cache-${benchmark}-${path.basename(archive)}`);
      const { manifest } = await prepareCache({ dataset: benchmark, data: archive, cache }, 32);
      caches.push(cache);
      t.is(manifest.dataset, benchmark);
      t.deepEqual(manifest.normalization?.mean, [...CIFAR_FS_NORMALIZATION.mean]);
      t.deepEqual(manifest.normalization?.std, [...CIFAR_FS_NORMALIZATION.std]);
      t.is(manifest.decode.resized, 0);
      const lists = cifarBenchmarkClasses(benchmark);
      for (const s of ['train', 'val', 'test'] as const) {
        t.is(manifest.splits[s].classes.length, PUBLISHED_SPLIT_SIZES[benchmark][s]);
        t.deepEqual(manifest.splits[s].classes, [...lists[s]]);
        t.true(manifest.splits[s].itemsPerClass.every((n) => n === 4));
      }
      // The first test class: its 3 train-part images (fine label f at n = f, f+100, f+200), then its test image n = f.
      const split = await loadSplit(cache, 'test');
      const f = FINE_NAMES.indexOf(lists.test[0]);
      const got = (k: number) => Buffer.from(split.pixels.subarray(k * 3072, (k + 1) * 3072));
      t.true(got(0).equals(image(TRAIN, f)));
      t.true(got(1).equals(image(TRAIN, f + 100)));
      t.true(got(2).equals(image(TRAIN, f + 200)));
      t.true(got(3).equals(image(TEST, f)));
    }
    const [a, b] = await Promise.all(caches.map(readCacheManifest));
    t.is(a.cacheFingerprint, b.cacheFingerprint, 'python and binary archives give bit-identical caches');
    t.not(a.source.kind, b.source.kind);
  });
}

test('cifar-fs: --image-size resizes (area averaging), recorded in the manifest', async (t) => {
  const { manifest } = await prepareCache({ dataset: 'cifar-fs', data: binaryArchive, cache: path.join(wd.dir, 'cache-cifar-16') }, 16);
  t.is(manifest.imageSize, 16);
  t.is(manifest.decode.resized, 400);
  t.deepEqual(manifest.decode.sourceSizes, { '32x32': 400 });
});

test('cifar-fs without --image-size: `data prepare` caches the 32 px images as they are (not upsampled to 84); `run` defaults to 32 px and says which augmentation it uses', async (t) => {
  const cache = path.join(wd.dir, 'cache-cifar-native');
  const out = await runCli(['data', 'prepare', '--dataset', 'cifar-fs', '--data', binaryArchive, '--cache', cache]);
  t.is(out.code, 0, out.stderr);
  t.regex(out.stderr, /preparing cifar-fs \(cifar-fs\) from \S+ at 32px/);
  const manifest = await readCacheManifest(cache);
  t.is(manifest.imageSize, 32);
  t.is(manifest.decode.resized, 0);
  // The same defaults for a training config: the dataset's own size and its augmentation, unless a flag or the
  // config says otherwise; mini-ImageNet keeps 84 px and no augmentation.
  t.like(await resolveTrainConfig('protonet', { dataset: 'cifar-fs' }), { imageSize: 32, augment: 'metaoptnet' });
  t.like(await resolveTrainConfig('protonet', { dataset: 'cifar-fs', imageSize: 84, augment: 'none' }), { imageSize: 84, augment: 'none' });
  t.like(await resolveTrainConfig('protonet', { dataset: 'mini-imagenet' }), { imageSize: 84, augment: 'none' });
  const help = await runCli(['run', '--help']);
  t.regex(help.stdout, /--augment <name>\s+training augmentation: none, or metaoptnet/);
});

test('cifar-fs: a tiny train + eval through runExperiment', async (t) => {
  const cfg = tinyConfig(undefined, { imageSize: 32, dataset: 'cifar-fs', augment: 'metaoptnet' });
  const reporter = collectingReporter();
  const out = await runExperiment(
    cfg,
    {
      backend: 'cpu',
      data: pythonArchive,
      cache: path.join(wd.dir, 'cache-cifar-run'),
      runs: path.join(wd.dir, 'runs'),
      results: path.join(wd.dir, 'results'),
      episodesDir: path.join(wd.dir, 'episodes'),
      testEpisodes: 3,
      name: 'cifar',
    },
    { reporter },
  );
  tf.disposeVariables();
  // The training line names the augmentation (CIFAR-FS's default differs from mini-ImageNet's).
  t.true(
    reporter.lines.some((l) =>
      /^training protonet \(conv4, 32px, cifar-fs, train 2w1s2q, augmentation metaoptnet \(random crop \+ colour jitter \+ flip\)\)/.test(l),
    ),
    reporter.lines.join('\n'),
  );
  t.is(out.record.data.dataset, 'cifar-fs');
  t.is(out.record.episodes.evaluated, 3);
  // Results record portable paths (`<tmp>/…`); resolved, it is the episodes folder given.
  t.is(path.dirname(resolvePortablePath(out.record.episodes.file)), path.join(wd.dir, 'episodes', 'cifar-fs'));
  // Seed 0 on the cpu backend: the accuracy of this 2-episode training on its 3 test episodes, pinned.
  t.deepEqual(out.record.inferenceModes, ['plain']);
  t.is(out.record.summary.plain.mean, 0.5833333333333334); // 7 of 12 queries over the 3 episodes
});

test('cifar providers: wrong-kind and truncated archives are UserErrors naming the file; no cache is left', async (t) => {
  const other = await packArchive(path.join(wd.dir, 'cifar-10-python.tar.gz'), [['cifar-10-batches-py/data_batch_1', 'x']]);
  const full = await fs.readFile(pythonArchive);
  const truncated = path.join(wd.dir, 'truncated.tar.gz');
  await fs.writeFile(truncated, full.subarray(0, Math.floor(full.length / 2)));
  const folder = path.join(wd.dir, 'a-folder');
  await fs.mkdir(folder);
  for (const [file, re] of [
    [other, /CIFAR-10 archive/],
    [truncated, /truncated|damaged|incomplete/],
    [folder, /is a folder/],
    [path.join(wd.dir, 'none.tar.gz'), /no CIFAR-100 archive/],
  ] as const) {
    const cache = path.join(wd.dir, `bad-${path.basename(file)}`);
    const err = await t.throwsAsync(prepareCache({ dataset: 'fc100', data: file, cache }, 32), { instanceOf: UserError });
    t.regex(err!.message, re);
    t.true(err!.message.includes(file), err!.message);
    t.false(
      await fs.stat(cache).then(
        () => true,
        () => false,
      ),
    );
  }
  await t.throwsAsync(prepareCache({ dataset: 'cifar-fs', datasetOptions: { size: 3 }, data: pythonArchive, cache: path.join(wd.dir, 'x') }, 32), {
    instanceOf: UserError,
    message: /invalid options for dataset "cifar-fs": .*size/,
  });
});

test('tiered-imagenet: class folders → cache with 351/97/160 classes, images decoded and resized, ImageNet normalisation', async (t) => {
  const root = path.join(wd.dir, 'tiered');
  const png = await Promise.all(
    [0, 1].map((k) =>
      sharp({ create: { width: 12, height: 12, channels: 3, background: { r: 40 + 100 * k, g: 90, b: 200 - 100 * k } } })
        .png()
        .toBuffer(),
    ),
  );
  const lists = tieredImagenetClasses();
  for (const s of ['train', 'val', 'test'] as const) {
    for (const wnid of lists[s]) {
      const dir = path.join(root, s, wnid);
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, `${wnid}_0.png`), png[0]);
      await fs.writeFile(path.join(dir, `${wnid}_1.png`), png[1]);
    }
  }
  const cache = path.join(wd.dir, 'cache-tiered');
  const { manifest } = await prepareCache({ dataset: 'tiered-imagenet', data: root, cache }, 8);
  for (const s of ['train', 'val', 'test'] as const) {
    t.is(manifest.splits[s].classes.length, PUBLISHED_SPLIT_SIZES['tiered-imagenet'][s]);
    t.deepEqual(manifest.splits[s].classes, [...lists[s]]);
  }
  t.deepEqual(manifest.normalization?.mean, [...MINI_IMAGENET_NORMALIZATION.mean]);
  t.is(manifest.decode.resized, 1216);
  const val = await loadSplit(cache, 'val');
  t.deepEqual(Array.from(val.pixels.subarray(0, 3)), [40, 90, 200]);
  t.deepEqual(Array.from(val.pixels.subarray(8 * 8 * 3, 8 * 8 * 3 + 3)), [140, 90, 100]);
  // A missing class folder is named.
  await fs.rm(path.join(root, 'test', lists.test[3]), { recursive: true });
  const err = await t.throwsAsync(prepareCache({ dataset: 'tiered-imagenet', data: root, cache: path.join(wd.dir, 'cache-tiered-bad') }, 8), {
    instanceOf: UserError,
  });
  t.true(err!.message.includes(lists.test[3]));
});

// ------------------------------------------------------------------ csv

let fx: Fixture;
test.serial.before(async () => {
  fx = await buildFixture(4);
});
test.after.always(async () => fx?.cleanup());

test.serial('csv provider: quoted path,label,split rows over real images; without a split column a seeded random split', async (t) => {
  const file = path.join(fx.root, 'my-set.csv');
  const rows = (['train', 'val', 'test'] as const).flatMap((s) => fx.rows[s].map((r) => `"images/${r.filename}","${r.label}",${s}`));
  await fs.writeFile(file, `path,label,split\n${rows.join('\r\n')}\n`);
  await fs.cp(path.join(fx.folderDir, 'images'), path.join(fx.root, 'images'), { recursive: true });
  const { manifest } = await prepareCache({ dataset: 'csv', data: file, cache: path.join(fx.root, 'cache-csv') }, 16);
  t.is(manifest.dataset, 'my-set');
  t.is(manifest.source.kind, 'csv');
  for (const s of ['train', 'val', 'test'] as const) t.deepEqual(manifest.splits[s].classes, [...new Set(fx.rows[s].map((r) => r.label))]);
  t.deepEqual(manifest.splits.train.itemsPerClass, [4, 4, 4]);
  // No split column, no header: 7 classes cut 0.6/0.2/0.2 at random (seeded; round(4.2)=4, round(1.4)=1, the rest 2): the same every time.
  const plain = path.join(fx.root, 'plain.csv');
  await fs.writeFile(plain, (['train', 'val', 'test'] as const).flatMap((s) => fx.rows[s].map((r) => `images/${r.filename},${r.label}`)).join('\n'));
  const opts = { fractions: { train: 0.6, val: 0.2, test: 0.2 } };
  const a = await prepareCache({ dataset: 'csv', datasetOptions: opts, data: plain, cache: path.join(fx.root, 'cache-plain') }, 16);
  const b = await prepareCache({ dataset: 'csv', datasetOptions: opts, data: plain, cache: path.join(fx.root, 'cache-plain2') }, 16);
  t.deepEqual([a.manifest.splits.train.classes.length, a.manifest.splits.val.classes.length, a.manifest.splits.test.classes.length], [4, 1, 2]);
  t.is(a.manifest.cacheFingerprint, b.manifest.cacheFingerprint);
  const opened = await openDataset({ dataset: 'csv', datasetOptions: opts, data: plain, cache: path.join(fx.root, 'cache-plain') }, 16, { autoPrepare: false });
  t.is(opened.dataset.name, 'plain');
  // Bad rows: a class in two splits, a non-image, a missing image, an unknown split, an unclosed quote.
  const r0 = fx.rows.train[0];
  const r1 = fx.rows.train[1];
  const bad: [string, RegExp][] = [
    [
      `images/${r0.filename},${r0.label},train\nimages/${r1.filename},${r0.label},test\n`,
      /class "n\w+" is in both the train split \(line 1\) and the test split \(line 2\)/,
    ],
    [`notes.txt,A\nimages/${r0.filename},A\n`, /line 1: .*notes\.txt is not an image file/],
    [
      `images/missing.jpg,A,train\n${fx.rows.train
        .slice(0, 3)
        .map((r, k) => `images/${r.filename},${'ABC'[k]},${['train', 'val', 'test'][k]}`)
        .join('\n')}\n${fx.rows.val
        .slice(0, 3)
        .map((r, k) => `images/${r.filename},${'ABC'[k]},${['train', 'val', 'test'][k]}`)
        .join('\n')}\n`,
      /missing\.jpg is missing or unreadable/,
    ],
    [`images/${r0.filename},A,testing\n`, /line 1 names split "testing"/],
    [`"images/${r0.filename},A\n`, /not valid CSV/],
  ];
  for (const [i, [text, re]] of bad.entries()) {
    const f = path.join(fx.root, `bad${i}.csv`);
    await fs.writeFile(f, text);
    const cache = path.join(fx.root, `cache-bad${i}`);
    await t.throwsAsync(
      prepareCache({ dataset: 'csv', datasetOptions: { fractions: { train: 0.5, val: 0, test: 0.5 } }, data: f, cache }, 16),
      { instanceOf: UserError, message: re },
      text,
    );
    t.false(
      await fs.stat(cache).then(
        () => true,
        () => false,
      ),
    );
  }
});
