import test from 'ava';
import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import sharp from 'sharp';
import * as tar from 'tar';
import {
  CACHE_FORMAT_VERSION,
  DATA_ENV_VAR,
  describeSplit,
  loadSplit,
  loadSplitFilenames,
  locateDataset,
  prepareDataset,
  readCacheManifest,
  type PrepareProgress,
} from '../src/data/index.ts';
import { UserError } from '../src/util/errors.ts';
import { buildFixture, copyDataset, listDir, writeSha256Sums, type Fixture } from './fixtures/mini-imagenet.ts';

let fx: Fixture;
let caches: string;

test.before(async () => {
  fx = await buildFixture(20);
  caches = path.join(fx.root, 'caches');
  await fs.mkdir(caches);
});
test.after.always(async () => {
  await fx?.cleanup();
});

/** Scratch folders live inside the fixture root, so `after.always` removes them even when a test fails. */
async function mkTmp(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(fx.root, `${prefix}-`));
}

let cacheCounter = 0;
/** A fresh cache dir inside its own empty parent, so "nothing left behind" can be checked exactly. */
async function freshCacheDir(): Promise<{ parent: string; dir: string }> {
  const parent = path.join(caches, `p${cacheCounter++}`);
  await fs.mkdir(parent);
  return { parent, dir: path.join(parent, 'cache') };
}

async function rawDecode(bytes: Buffer): Promise<Buffer> {
  return sharp(bytes).raw().toBuffer();
}

function sha(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

test('prepare from the images/ folder and from .tar.gz archives gives the same fingerprints', async (t) => {
  const a = await freshCacheDir();
  const b = await freshCacheDir();
  const progress: PrepareProgress[] = [];
  const fromFolder = await prepareDataset({ source: fx.folderDir, cacheDir: a.dir, onProgress: (p) => progress.push(p) });
  const fromArchives = await prepareDataset({ source: fx.archiveDir, cacheDir: b.dir });
  t.is(fromFolder.manifest.source.kind, 'folder');
  t.is(fromArchives.manifest.source.kind, 'archives');
  t.deepEqual(
    fromArchives.manifest.source.archives.map((x) => [x.file, x.checkedAgainstSha256Sums]),
    [
      ['images-part1.tar.gz', true],
      ['images-part2.tar.gz', true],
    ],
  );
  t.is(fromFolder.manifest.cacheFingerprint, fromArchives.manifest.cacheFingerprint);
  for (const s of ['train', 'val', 'test'] as const) {
    t.is(fromFolder.manifest.splits[s].splitFingerprint, fromArchives.manifest.splits[s].splitFingerprint);
  }
  t.is(fromFolder.manifest.decode.images, 140);
  t.deepEqual(fromFolder.manifest.decode.sourceSizes, { '84x84': 140 });
  t.is(fromFolder.manifest.formatVersion, CACHE_FORMAT_VERSION);
  // The last progress report says everything was decoded.
  const lastDecode = progress.filter((p) => p.phase === 'decode').at(-1);
  t.deepEqual(lastDecode, { phase: 'decode', done: 140, total: 140 });
  // Only the cache (a link to its one complete version), no temp dirs, in the parents.
  t.deepEqual(await listDir(a.parent), ['.cache.v1', 'cache']);
  t.deepEqual(await listDir(a.dir), ['manifest.json', 'test.items.csv', 'test.u8', 'train.items.csv', 'train.u8', 'val.items.csv', 'val.u8']);
});

test('loadSplit round trip: layout, order and pixels match an independent decode; fingerprints follow their definition', async (t) => {
  const { dir } = await freshCacheDir();
  await prepareDataset({ source: fx.folderDir, cacheDir: dir, imageSize: 84 });
  const train = await loadSplit(dir, 'train', { verifyPixels: true });
  t.is(train.split, 'train');
  t.is(train.imageSize, 84);
  t.is(train.numItems, 60);
  t.deepEqual(train.classes, [...new Set(fx.rows.train.map((r) => r.label))]);
  t.deepEqual(train.itemsPerClass, [20, 20, 20]);
  t.deepEqual(train.classOffsets, [0, 20, 40]);
  t.is(train.pixels.length, 60 * 84 * 84 * 3);
  t.deepEqual(Array.from(train.labels.subarray(18, 23)), [0, 0, 1, 1, 1]);
  t.deepEqual(
    await loadSplitFilenames(dir, 'train'),
    fx.rows.train.map((r) => r.filename),
  );
  for (const item of [0, 21, 59]) {
    const expected = await rawDecode(fx.images.get(fx.rows.train[item].filename)!);
    t.true(Buffer.from(train.pixels.subarray(item * 21168, (item + 1) * 21168)).equals(expected), `item ${item}`);
  }
  // Split fingerprint = sha256 over "<file>,<label>,<sha256 of file bytes>\n" in item order.
  const lines = fx.rows.test.map((r) => `${r.filename},${r.label},${sha(fx.images.get(r.filename)!)}\n`).join('');
  const testInfo = await describeSplit(dir, 'test');
  t.is(testInfo.splitFingerprint, sha(lines));
  // Cache fingerprint = sha256 over imageSize + per split (fingerprint, pixel sha256).
  const manifest = await readCacheManifest(dir);
  const pixelSha = async (s: string) => sha(await fs.readFile(path.join(dir, `${s}.u8`)));
  const fpText =
    `imageSize=84\n` +
    (await Promise.all(['train', 'val', 'test'].map(async (s) => `${s},${manifest.splits[s as 'train'].splitFingerprint},${await pixelSha(s)}\n`))).join('');
  t.is(train.cacheFingerprint, sha(fpText));
});

test('a 32 px cache holds the exact area average of each image and the same split fingerprints', async (t) => {
  const big = await freshCacheDir();
  const small = await freshCacheDir();
  const m84 = (await prepareDataset({ source: fx.archiveDir, cacheDir: big.dir, imageSize: 84 })).manifest;
  const m32 = (await prepareDataset({ source: fx.archiveDir, cacheDir: small.dir, imageSize: 32 })).manifest;
  t.is(m32.splits.val.splitFingerprint, m84.splits.val.splitFingerprint);
  t.not(m32.cacheFingerprint, m84.cacheFingerprint);
  t.is(m32.decode.resized, 140);
  const val = await loadSplit(small.dir, 'val');
  t.is(val.pixels.length, 40 * 32 * 32 * 3);
  // Reference: 84/32 = 21/8, so split every source pixel into 8×8 sub-pixels and average 21×21
  // blocks of them: exact area averaging in integers (no ties are possible since 441 is odd).
  const item = 27;
  const src = await rawDecode(fx.images.get(fx.rows.val[item].filename)!);
  const got = val.pixels.subarray(item * 3072, (item + 1) * 3072);
  let mismatches = 0;
  for (let oy = 0; oy < 32; oy++) {
    for (let ox = 0; ox < 32; ox++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let sy = oy * 21; sy < oy * 21 + 21; sy++) {
          for (let sx = ox * 21; sx < ox * 21 + 21; sx++) sum += src[(Math.floor(sy / 8) * 84 + Math.floor(sx / 8)) * 3 + c];
        }
        const expected = Math.floor((2 * sum + 441) / 882);
        if (got[(oy * 32 + ox) * 3 + c] !== expected) mismatches++;
      }
    }
  }
  t.is(mismatches, 0);
});

test('grey, RGBA and non-84×84 source images are accepted: converted to RGB, resized, sizes counted in the manifest', async (t) => {
  const root = await mkTmp('odd');
  const ds = await copyDataset(fx.folderDir, path.join(root, 'ds'));
  const [greyName, oddName, alphaName] = [fx.rows.train[0].filename, fx.rows.test[3].filename, fx.rows.train[25].filename];
  // A PNG with alpha under a .jpg name: the content, not the extension, decides how it is read.
  await fs.writeFile(path.join(ds, 'images', alphaName), await sharp(fx.images.get(alphaName)!).ensureAlpha(0.5).png().toBuffer());
  const greyBytes = await sharp(fx.images.get(greyName)!).toColourspace('b-w').jpeg().toBuffer();
  t.is((await sharp(greyBytes).metadata()).channels, 1);
  await fs.writeFile(path.join(ds, 'images', greyName), greyBytes);
  await fs.writeFile(path.join(ds, 'images', oddName), await sharp(fx.images.get(oddName)!).resize(100, 60, { fit: 'fill' }).jpeg().toBuffer());
  const { dir } = await freshCacheDir();
  const { manifest } = await prepareDataset({ source: ds, cacheDir: dir });
  t.is(manifest.decode.resized, 1);
  t.deepEqual(manifest.decode.sourceSizes, { '84x84': 139, '100x60': 1 });
  const train = await loadSplit(dir, 'train');
  const grey = train.pixels.subarray(0, 21168);
  let unequal = 0;
  for (let p = 0; p < grey.length; p += 3) if (grey[p] !== grey[p + 1] || grey[p] !== grey[p + 2]) unequal++;
  t.is(unequal, 0, 'a grey image becomes R = G = B');
  const alpha = train.pixels.subarray(25 * 21168, 26 * 21168);
  t.true(Buffer.from(alpha).equals(await rawDecode(fx.images.get(alphaName)!)), 'alpha is dropped, colours kept');
  await fs.rm(root, { recursive: true, force: true });
});

async function expectUserError(t: import('ava').ExecutionContext, run: Promise<unknown>, ...mustMention: (string | RegExp)[]): Promise<UserError> {
  const err = await t.throwsAsync(run, { instanceOf: UserError });
  for (const m of mustMention) {
    if (typeof m === 'string') t.true(err!.message.includes(m), `message should mention ${m}: ${err!.message}`);
    else t.regex(err!.message, m);
  }
  return err as UserError;
}

test('a cache path that is some other folder (e.g. the parent of a cache) is refused before any work, nothing deleted', async (t) => {
  const { parent } = await freshCacheDir();
  // What `--cache .cache` looks like when .cache holds a cache: a versioned folder and its link, no manifest.
  const good = path.join(parent, 'mini-imagenet-84');
  await prepareDataset({ source: fx.folderDir, cacheDir: good });
  const before = (await listDir(parent)).sort();
  const err = await expectUserError(t, prepareDataset({ source: fx.folderDir, cacheDir: parent }), parent, 'not an image cache', 'manifest.json');
  t.regex(err.fix, /nothing was changed/);
  t.deepEqual((await listDir(parent)).sort(), before);
  t.truthy(await readCacheManifest(good));
  // A user's own files are refused the same way.
  const mine = await mkTmp('mine');
  await fs.writeFile(path.join(mine, 'notes.txt'), 'keep me');
  await expectUserError(t, prepareDataset({ source: fx.folderDir, cacheDir: mine }), 'notes.txt');
  t.is(await fs.readFile(path.join(mine, 'notes.txt'), 'utf8'), 'keep me');
  // An existing cache (plain folder or link) and an empty folder are fine: preparing again replaces the cache.
  const empty = await mkTmp('empty');
  await prepareDataset({ source: fx.folderDir, cacheDir: empty });
  t.truthy(await readCacheManifest(empty));
  await prepareDataset({ source: fx.folderDir, cacheDir: good });
  t.truthy(await readCacheManifest(good));
});

test('a CSV row whose image is missing: UserError naming the file, nothing left behind', async (t) => {
  const root = await mkTmp('missing');
  const ds = await copyDataset(fx.folderDir, path.join(root, 'ds'));
  const victim = fx.rows.val[5].filename;
  await fs.rm(path.join(ds, 'images', victim));
  const { parent, dir } = await freshCacheDir();
  await expectUserError(t, prepareDataset({ source: ds, cacheDir: dir }), victim, 'missing');
  t.deepEqual(await listDir(parent), []);

  // Same in archive form: an image absent from every archive.
  const arc = await copyDataset(fx.archiveDir, path.join(root, 'arc'));
  await fs.appendFile(path.join(arc, 'test.csv'), `n99999999000001.jpg,${fx.rows.test[0].label}\n`);
  await fs.rm(path.join(arc, 'SHA256SUMS'));
  await expectUserError(t, prepareDataset({ source: arc, cacheDir: dir }), 'n99999999000001.jpg', 'not in the archives');
  t.deepEqual(await listDir(parent), []);
  await fs.rm(root, { recursive: true, force: true });
});

test('a corrupt or truncated JPEG: UserError naming the file; an existing cache survives the failed prepare', async (t) => {
  const { parent, dir } = await freshCacheDir();
  const good = await prepareDataset({ source: fx.folderDir, cacheDir: dir });
  const root = await mkTmp('corrupt');
  const ds = await copyDataset(fx.folderDir, path.join(root, 'ds'));
  const victim = fx.rows.train[33].filename;
  const bytes = fx.images.get(victim)!;
  await fs.writeFile(path.join(ds, 'images', victim), bytes.subarray(0, Math.floor(bytes.length / 2)));
  await expectUserError(t, prepareDataset({ source: ds, cacheDir: dir }), victim, 'cannot be used');
  t.deepEqual(await listDir(parent), ['.cache.v1', 'cache']);
  t.is((await loadSplit(dir, 'train')).cacheFingerprint, good.manifest.cacheFingerprint);

  // Not an image at all, delivered through an archive: the error names the archive entry.
  const arcDir = path.join(root, 'arc');
  await fs.mkdir(path.join(arcDir, 'stage', 'images'), { recursive: true });
  for (const s of ['train', 'val', 'test']) await fs.copyFile(path.join(fx.archiveDir, `${s}.csv`), path.join(arcDir, `${s}.csv`));
  for (const [name, b] of fx.images) await fs.writeFile(path.join(arcDir, 'stage', 'images', name), name === victim ? Buffer.from('not a jpeg') : b);
  await tar.c({ gzip: true, cwd: path.join(arcDir, 'stage'), file: path.join(arcDir, 'all.tar.gz') }, ['images']);
  await fs.rm(path.join(arcDir, 'stage'), { recursive: true });
  await expectUserError(t, prepareDataset({ source: arcDir, cacheDir: dir }), victim, 'all.tar.gz');
  t.deepEqual(await listDir(parent), ['.cache.v1', 'cache']);
  await fs.rm(root, { recursive: true, force: true });
});

test('a truncated .tar.gz: checksum mismatch when SHA256SUMS lists it, "corrupt or truncated" otherwise; nothing left behind', async (t) => {
  const root = await mkTmp('trunc');
  const ds = await copyDataset(fx.archiveDir, path.join(root, 'ds'));
  const archive = path.join(ds, 'images-part2.tar.gz');
  const full = await fs.readFile(archive);
  await fs.writeFile(archive, full.subarray(0, Math.floor(full.length * 0.6)));
  const { parent, dir } = await freshCacheDir();
  await expectUserError(t, prepareDataset({ source: ds, cacheDir: dir }), 'images-part2.tar.gz', 'does not match SHA256SUMS');
  t.deepEqual(await listDir(parent), []);
  await fs.rm(path.join(ds, 'SHA256SUMS'));
  await expectUserError(t, prepareDataset({ source: ds, cacheDir: dir }), 'images-part2.tar.gz', 'corrupt or truncated');
  t.deepEqual(await listDir(parent), []);
  // Garbage in the middle of the compressed stream.
  const mangled = Buffer.from(full);
  for (let i = 2000; i < 2400; i++) mangled[i] ^= 0xa5;
  await fs.writeFile(archive, mangled);
  await expectUserError(t, prepareDataset({ source: ds, cacheDir: dir }), 'images-part2.tar.gz', 'corrupt or truncated');
  t.deepEqual(await listDir(parent), []);
  await fs.rm(root, { recursive: true, force: true });
});

test('an intact archive that does not match SHA256SUMS, or a CSV that does not, is rejected', async (t) => {
  const root = await mkTmp('sums');
  const ds = await copyDataset(fx.archiveDir, path.join(root, 'ds'));
  const sums = await fs.readFile(path.join(ds, 'SHA256SUMS'), 'utf8');
  await fs.writeFile(path.join(ds, 'SHA256SUMS'), sums.replace(/^[0-9a-f]{64}(  images-part1)/m, `${'0'.repeat(64)}$1`));
  const { parent, dir } = await freshCacheDir();
  await expectUserError(t, prepareDataset({ source: ds, cacheDir: dir }), 'images-part1.tar.gz', 'does not match SHA256SUMS', `expected ${'0'.repeat(64)}`);
  await writeSha256Sums(ds, ['images-part1.tar.gz', 'images-part2.tar.gz', 'train.csv', 'val.csv', 'test.csv']);
  await fs.appendFile(path.join(ds, 'val.csv'), '\n');
  await expectUserError(t, prepareDataset({ source: ds, cacheDir: dir }), 'val.csv', 'does not match SHA256SUMS');
  t.deepEqual(await listDir(parent), []);
  await fs.rm(root, { recursive: true, force: true });
});

test('bad split CSVs: header, duplicate rows, malformed rows, shared classes, missing file', async (t) => {
  const root = await mkTmp('csv');
  const ds = await copyDataset(fx.folderDir, path.join(root, 'ds'));
  const { parent, dir } = await freshCacheDir();
  const original = await fs.readFile(path.join(ds, 'test.csv'), 'utf8');
  const cases: [string, string[]][] = [
    [original.replace('filename,label', 'file,class'), ['test.csv', 'header']],
    [`${original}${original.split('\n')[5]}\n`, ['test.csv', 'twice', fx.rows.test[4].filename]],
    [`${original}just-one-field\n`, ['test.csv', 'line 42']],
    [`${original}../etc/passwd,n0\n`, ['test.csv', 'line 42']],
    [`${original}${fx.rows.test[0].filename.replace('.jpg', 'x.jpg')},${fx.rows.train[0].label}\n`, ['both train.csv and test.csv', fx.rows.train[0].label]],
    ['filename,label\n', ['no rows']],
  ];
  for (const [text, mention] of cases) {
    await fs.writeFile(path.join(ds, 'test.csv'), text);
    await expectUserError(t, prepareDataset({ source: ds, cacheDir: dir }), ...mention);
  }
  await fs.rm(path.join(ds, 'test.csv'));
  await expectUserError(t, prepareDataset({ source: ds, cacheDir: dir }), 'test.csv');
  t.deepEqual(await listDir(parent), []);
  await fs.rm(root, { recursive: true, force: true });
});

test('locateDataset: --data beats $FEWSHOT_DATA beats ./data/mini-imagenet; errors say what to put where', async (t) => {
  const root = await mkTmp('locate');
  const cwd = path.join(root, 'project');
  await copyDataset(fx.archiveDir, path.join(cwd, 'data', 'mini-imagenet'));
  t.is(locateDataset(undefined, {}, cwd), path.join(cwd, 'data', 'mini-imagenet'));
  t.is(locateDataset(undefined, { [DATA_ENV_VAR]: fx.folderDir }, cwd), fx.folderDir);
  t.is(locateDataset(fx.archiveDir, { [DATA_ENV_VAR]: fx.folderDir }, cwd), fx.archiveDir);
  // An explicitly named but unusable folder is an error, not a reason to fall back.
  const empty = path.join(root, 'empty');
  await fs.mkdir(empty);
  const err = t.throws(() => locateDataset(empty, {}, cwd), { instanceOf: UserError })!;
  for (const m of ['--data', DATA_ENV_VAR, 'train.csv', 'images/', '.tar.gz', 'data/mini-imagenet', '(from --data)']) t.true(err.message.includes(m), m);
  t.throws(() => locateDataset(undefined, { [DATA_ENV_VAR]: path.join(root, 'nope') }, cwd), { instanceOf: UserError, message: /from \$FEWSHOT_DATA/ });
  t.throws(() => locateDataset(undefined, {}, root), { instanceOf: UserError, message: /from the default location/ });
  // CSVs without any images.
  await fs.writeFile(path.join(empty, 'train.csv'), 'filename,label\n');
  await fs.writeFile(path.join(empty, 'val.csv'), 'filename,label\n');
  await fs.writeFile(path.join(empty, 'test.csv'), 'filename,label\n');
  t.throws(() => locateDataset(empty, {}, cwd), { instanceOf: UserError, message: /neither an images\/ folder nor \.tar\.gz/ });
  await fs.rm(root, { recursive: true, force: true });
});

test('loadSplit: missing cache, older format, damaged manifest and short pixel file all say to run `fewshot data prepare`', async (t) => {
  const { dir } = await freshCacheDir();
  await expectUserError(t, loadSplit(dir, 'test'), 'no prepared image cache', 'fewshot data prepare');
  await prepareDataset({ source: fx.folderDir, cacheDir: dir });
  const manifestPath = path.join(dir, 'manifest.json');
  const manifest = JSON.parse(await fs.readFile(manifestPath, 'utf8'));
  await fs.writeFile(manifestPath, JSON.stringify({ ...manifest, formatVersion: 0 }));
  await expectUserError(t, loadSplit(dir, 'test'), 'format version 0', 'fewshot data prepare');
  await fs.writeFile(manifestPath, JSON.stringify({ ...manifest, splits: { ...manifest.splits, test: { ...manifest.splits.test, classOffsets: [0, 21] } } }));
  await expectUserError(t, loadSplit(dir, 'test'), 'disagree', 'fewshot data prepare');
  await fs.writeFile(manifestPath, '{ not json');
  await expectUserError(t, loadSplit(dir, 'test'), 'not valid JSON', 'fewshot data prepare');
  await fs.writeFile(manifestPath, JSON.stringify(manifest));
  const u8 = path.join(dir, 'test.u8');
  const pixels = await fs.readFile(u8);
  await fs.writeFile(u8, pixels.subarray(0, pixels.length - 3));
  await expectUserError(t, loadSplit(dir, 'test'), `${pixels.length - 3} bytes`, 'fewshot data prepare');
  const flipped = Buffer.from(pixels);
  flipped[1000] ^= 1;
  await fs.writeFile(u8, flipped);
  t.truthy(await loadSplit(dir, 'test', { verifyPixels: false }), 'size check alone passes');
  // Pixels edited in place are refused by default (the result would record the manifest's fingerprint).
  await expectUserError(t, loadSplit(dir, 'test'), 'does not match its manifest');
  await fs.writeFile(u8, pixels);
  t.is((await loadSplit(dir, 'test')).verifiedCacheFingerprint, manifest.cacheFingerprint);
});

test('image size out of range is a UserError', async (t) => {
  const { dir } = await freshCacheDir();
  await expectUserError(t, prepareDataset({ source: fx.folderDir, cacheDir: dir, imageSize: 4 }), 'image size 4');
  await expectUserError(t, prepareDataset({ source: fx.folderDir, cacheDir: dir, imageSize: 31.5 }), 'image size 31.5');
});

test('an aborted prepare (Ctrl-C via AbortSignal) rejects with the reason and leaves nothing behind', async (t) => {
  for (const source of [fx.folderDir, fx.archiveDir]) {
    const { parent, dir } = await freshCacheDir();
    const controller = new AbortController();
    const run = prepareDataset({ source, cacheDir: dir, maxInFlight: 2, signal: controller.signal });
    setImmediate(() => controller.abort(new Error('interrupted by test')));
    await t.throwsAsync(run, { message: 'interrupted by test' });
    t.deepEqual(await listDir(parent), []);
  }
});

test('temp folders of a killed prepare are removed by the next prepare once stale, fresh ones are kept', async (t) => {
  const { parent, dir } = await freshCacheDir();
  const stale = path.join(parent, '.cache.0123456789ab.tmp');
  const fresh = path.join(parent, '.cache.ba9876543210.tmp');
  const unrelated = path.join(parent, '.other.0123456789ab.tmp');
  for (const d of [stale, fresh, unrelated]) await fs.mkdir(d);
  const old = new Date(Date.now() - 2 * 3600 * 1000);
  await fs.utimes(stale, old, old);
  await fs.utimes(unrelated, old, old);
  await prepareDataset({ source: fx.folderDir, cacheDir: dir });
  // `cache` is a link to its one complete version `.cache.v1` (see replaceDirAtomic).
  t.deepEqual(await listDir(parent), ['.cache.ba9876543210.tmp', '.cache.v1', '.other.0123456789ab.tmp', 'cache']);
});
