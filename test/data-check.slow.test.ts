import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { buildFixture, REAL_DATA, REPO_ROOT, type Fixture } from './fixtures/mini-imagenet.ts';
import { runLauncher } from './fixtures/run-cli.ts';
import { MINI_IMAGENET_REFERENCE } from '../src/data/check.ts';
import { checkData } from '../src/experiment/data-check.ts';
import '../src/builtin.ts';

/*
 * `fewshot data check` (issue 32 #3): says exactly what is missing or corrupt in a mini-ImageNet folder. On the
 * real data (read in place) every item is ok and each split is the project's copy; on fixture folders cut from it
 * a missing image, a missing split file and a truncated archive are each named, and the command exits 2.
 */
const cli = (args: string[]) => runLauncher(args);

let fx: Fixture;
test.before(async () => {
  fx = await buildFixture(6);
});
test.after.always(async () => {
  await fx?.cleanup();
});

test('the reference fingerprints are those of the committed episode files and results', async (t) => {
  for (const split of ['val', 'test'] as const) {
    const file = path.join(REPO_ROOT, 'episodes', 'mini-imagenet', `${split}_5w1s15q_seed0_${split === 'val' ? 1000 : 2000}.json`);
    const header = JSON.parse(await fs.readFile(file, 'utf8')) as { splitFingerprint: string };
    t.is(MINI_IMAGENET_REFERENCE[split].splitFingerprint, header.splitFingerprint, split);
  }
  const result = JSON.parse(
    await fs.readFile(path.join(REPO_ROOT, 'results', 'mini-imagenet', 'cells', 'protonet_5w1s_cpu-84px_5710ca40', 'seed0', 'result.json'), 'utf8'),
  );
  t.is(MINI_IMAGENET_REFERENCE.train.splitFingerprint, result.training.trainData.splitFingerprint);
  t.is(MINI_IMAGENET_REFERENCE.test.splitFingerprint, result.data.splitFingerprint);
});

test("the real mini-ImageNet: every item ok, each split byte-identical to the project's copy; the CLI exits 0", async (t) => {
  const out = await cli(['data', 'check', '--data', REAL_DATA]);
  t.is(out.code, 0, out.stderr);
  const lines = out.stdout.trim().split('\n');
  t.regex(lines[0], /^mini-imagenet at .*mini-imagenet \(from --data\)$/);
  t.true(
    lines.slice(1).every((l) => l.startsWith('OK ')),
    out.stdout,
  );
  for (const split of ['train', 'val', 'test']) t.regex(out.stdout, new RegExp(`^OK +images of ${split}: all [0-9,]+ present, byte-identical`, 'm'));
  t.regex(out.stdout, /^OK +train\.csv: 38,400 images of 64 classes$/m);
  t.regex(out.stdout, /^OK +SHA256SUMS: images-val\.tar\.gz: sha256 /m);
});

test('a folder with an image missing: the image named, the other splits fine, exit 2 with a fix', async (t) => {
  const gone = fx.rows.test[3].filename;
  await fs.rm(path.join(fx.folderDir, 'images', gone));
  const out = await cli(['data', 'check', '--data', fx.folderDir]);
  t.is(out.code, 2, out.stdout);
  t.regex(out.stdout, new RegExp(`^MISSING +images of test: 1 of the ${fx.rows.test.length} images test\\.csv lists are not in images/: ${gone}$`, 'm'));
  t.regex(out.stdout, /^DIFFERS +images of val: all \d+ present, but not byte-identical .* make your own with `fewshot episodes make --split val`/m);
  t.regex(out.stderr, /error: 1 problem in .*: images of test missing\n\s+fix: .*docs\/datasets\.md/);
});

test('a missing split file and a truncated archive are each named', async (t) => {
  const dir = fx.archiveDir;
  await fs.rm(path.join(dir, 'val.csv'));
  const archive = path.join(dir, 'images-part2.tar.gz');
  const bytes = await fs.readFile(archive);
  await fs.writeFile(archive, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const report = await checkData({ data: dir });
  t.false(report.ok);
  const status = Object.fromEntries(report.items.map((i) => [i.item, i.status]));
  t.is(status['val.csv'], 'missing');
  t.is(status['SHA256SUMS: val.csv'], 'missing');
  t.is(status['SHA256SUMS: images-part2.tar.gz'], 'corrupt');
  t.is(status['SHA256SUMS: images-part1.tar.gz'], 'ok');
  t.is(status['images-part2.tar.gz'], 'corrupt');
  t.is(status['images of train'] === 'missing' || status['images of test'] === 'missing', true);
  t.false('images of val' in status); // no split file, so no image list to check
});
