import test from 'ava';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import {
  BENCHMARK_SPLITS,
  PUBLISHED_SPLIT_SIZES,
  assignCifarClasses,
  cifar100Superclasses,
  cifarBenchmarkClasses,
  fc100Superclasses,
  listTieredImagenet,
  tieredImagenetClasses,
  type BenchmarkSplit,
} from '../src/data/readers/index.ts';
import { UserError } from '../src/util/errors.ts';
import { COARSE_NAMES, FINE_NAMES, workdir } from './fixtures/cifar100.ts';

const SHARED = path.resolve('../shared/datasets/splits');
const COMMITTED = path.resolve('src/data/readers/splits');

test('CIFAR-FS: 64/16/20 classes, disjoint, covering all 100 CIFAR-100 fine classes', (t) => {
  const c = cifarBenchmarkClasses('cifar-fs');
  t.deepEqual(
    BENCHMARK_SPLITS.map((s) => c[s].length),
    [64, 16, 20],
  );
  t.deepEqual(PUBLISHED_SPLIT_SIZES['cifar-fs'], { train: 64, val: 16, test: 20 });
  const all = BENCHMARK_SPLITS.flatMap((s) => c[s]);
  t.is(new Set(all).size, 100);
  t.deepEqual([...all].sort(), FINE_NAMES);
  t.deepEqual(c.test.slice(0, 3), ['whale', 'poppy', 'rose']);
});

test('FC100: 60/20/20 classes from 12/4/4 superclasses with the published superclass ids', (t) => {
  const c = cifarBenchmarkClasses('fc100');
  t.deepEqual(
    BENCHMARK_SPLITS.map((s) => c[s].length),
    [60, 20, 20],
  );
  const all = BENCHMARK_SPLITS.flatMap((s) => c[s]);
  t.deepEqual([...all].sort(), FINE_NAMES);
  const supers = cifar100Superclasses();
  t.deepEqual(Object.keys(supers), COARSE_NAMES, 'superclasses listed in coarse-id (alphabetical) order');
  const sc = fc100Superclasses();
  const ids = (s: BenchmarkSplit) => sc[s].map((n) => COARSE_NAMES.indexOf(n)).sort((a, b) => a - b);
  // Oreshkin et al. 2018: train {1,2,3,4,5,6,9,10,15,17,18,19}, val {8,11,13,16}, test {0,7,12,14}.
  t.deepEqual(ids('train'), [1, 2, 3, 4, 5, 6, 9, 10, 15, 17, 18, 19]);
  t.deepEqual(ids('val'), [8, 11, 13, 16]);
  t.deepEqual(ids('test'), [0, 7, 12, 14]);
  // Each split holds exactly the fine classes of its superclasses.
  for (const s of BENCHMARK_SPLITS) t.deepEqual([...c[s]].sort(), sc[s].flatMap((n) => supers[n]!).sort(), s);
});

test('tiered-ImageNet: 351/97/160 disjoint WordNet ids', (t) => {
  const c = tieredImagenetClasses();
  t.deepEqual(
    BENCHMARK_SPLITS.map((s) => c[s].length),
    [351, 97, 160],
  );
  const all = BENCHMARK_SPLITS.flatMap((s) => c[s]);
  t.is(new Set(all).size, 608);
  t.true(all.every((w) => /^n\d{8}$/.test(w)));
});

(existsSync(SHARED) ? test : test.skip)(
  'the committed split lists equal the shared reference copies' + (existsSync(SHARED) ? '' : ' [skipped: ../shared not present]'),
  async (t) => {
    for (const b of ['cifar-fs', 'fc100']) {
      for (const s of BENCHMARK_SPLITS) {
        const rel = `${b}/${s}.txt`;
        t.true((await fs.readFile(path.join(COMMITTED, rel))).equals(await fs.readFile(path.join(SHARED, rel))), rel);
      }
    }
    const sup = 'cifar100_superclass_to_classes.json';
    t.true((await fs.readFile(path.join(COMMITTED, sup))).equals(await fs.readFile(path.join(SHARED, sup))), sup);
    for (const s of BENCHMARK_SPLITS) {
      const ref = JSON.parse(await fs.readFile(path.join(SHARED, 'tiered-imagenet', `${s}.json`), 'utf8')) as { class_names: string[] };
      t.deepEqual([...tieredImagenetClasses()[s]], ref.class_names, `tiered ${s}`);
    }
  },
);

test('assignCifarClasses maps every fine label to its split and class index', (t) => {
  for (const b of ['cifar-fs', 'fc100'] as const) {
    const a = assignCifarClasses(b, FINE_NAMES);
    t.is(a.length, 100);
    const classes = cifarBenchmarkClasses(b);
    for (const s of BENCHMARK_SPLITS) {
      const inSplit = a.filter((x) => x.split === s);
      t.is(inSplit.length, PUBLISHED_SPLIT_SIZES[b][s]);
      t.deepEqual(
        inSplit.map((x) => x.classIndex).sort((p, q) => p - q),
        [...Array(inSplit.length).keys()],
      );
      for (const x of inSplit) t.is(classes[s][x.classIndex], x.name);
    }
    a.forEach((x, i) => t.is(x.name, FINE_NAMES[i]));
  }
  const fs100 = assignCifarClasses('cifar-fs', FINE_NAMES);
  t.like(fs100[0], { name: 'apple', split: 'train', classIndex: 13 });
  t.like(fs100[FINE_NAMES.indexOf('whale')], { split: 'test', classIndex: 0 });
  t.like(assignCifarClasses('fc100', FINE_NAMES)[FINE_NAMES.indexOf('worm')], { split: 'val', classIndex: 14 });

  const renamed = FINE_NAMES.map((n) => (n === 'maple_tree' ? 'maple' : n));
  const err = t.throws(() => assignCifarClasses('cifar-fs', renamed), { instanceOf: UserError });
  t.regex(err!.problem, /lack cifar-fs val class maple_tree/);
  const extra = [...FINE_NAMES, 'unicorn'];
  t.throws(() => assignCifarClasses('fc100', extra), { instanceOf: UserError, message: /"unicorn" in the archive is in no fc100 split/ });
});

// ------------------------------------------------------------------ tiered-ImageNet class folders

async function fakeTree(root: string, layout: 'split' | 'flat', perClass = (i: number) => 1 + (i % 3)): Promise<void> {
  const lists = tieredImagenetClasses();
  let i = 0;
  const jobs: Promise<void>[] = [];
  for (const s of BENCHMARK_SPLITS) {
    for (const wnid of lists[s]) {
      const dir = layout === 'split' ? path.join(root, s, wnid) : path.join(root, wnid);
      const count = perClass(i++);
      jobs.push(
        (async () => {
          await fs.mkdir(dir, { recursive: true });
          // Written in reverse so the listing's sort is exercised.
          for (let k = count - 1; k >= 0; k--) await fs.writeFile(path.join(dir, `${wnid}_${String(k).padStart(4, '0')}.JPEG`), '');
        })(),
      );
    }
  }
  await Promise.all(jobs);
}

async function throwsUser(t: import('ava').ExecutionContext, p: Promise<unknown>, pattern: RegExp): Promise<void> {
  const err = await t.throwsAsync(p, { instanceOf: UserError });
  t.regex(err!.problem, pattern);
}

test('tiered-ImageNet split-folder tree: lists every class in list order with sorted files; bad trees name the class', async (t) => {
  const wd = await workdir();
  t.teardown(() => wd.cleanup());
  const root = path.join(wd.dir, 'tiered');
  await fakeTree(root, 'split');
  await fs.writeFile(path.join(root, 'train', '.DS_Store'), '');
  const got = await listTieredImagenet(root);
  t.is(got.layout, 'split-folders');
  const lists = tieredImagenetClasses();
  let i = 0;
  for (const s of BENCHMARK_SPLITS) {
    t.is(got.splits[s].length, PUBLISHED_SPLIT_SIZES['tiered-imagenet'][s]);
    t.deepEqual(
      got.splits[s].map((c) => c.wnid),
      [...lists[s]],
    );
    for (const c of got.splits[s]) {
      const n = 1 + (i++ % 3);
      t.is(c.dir, path.join(root, s, c.wnid));
      t.deepEqual(
        c.files,
        [...Array(n).keys()].map((k) => `${c.wnid}_${String(k).padStart(4, '0')}.JPEG`),
      );
    }
  }

  const wnidTest = lists.test[5]!;
  const wnidVal = lists.val[3]!;
  // A class in two splits.
  await fs.cp(path.join(root, 'test', wnidTest), path.join(root, 'train', wnidTest), { recursive: true });
  await throwsUser(t, listTieredImagenet(root), new RegExp(`class ${wnidTest} is in two splits`));
  await fs.rm(path.join(root, 'train', wnidTest), { recursive: true });
  // A class under the wrong split folder (and so missing from its own).
  await fs.rename(path.join(root, 'val', wnidVal), path.join(root, 'train', wnidVal));
  await throwsUser(t, listTieredImagenet(root), new RegExp(`class ${wnidVal} is under train/ but tiered-ImageNet puts it in val`));
  await fs.rename(path.join(root, 'train', wnidVal), path.join(root, 'val', wnidVal));
  // A missing class.
  await fs.rename(path.join(root, 'test', wnidTest), path.join(wd.dir, 'aside'));
  await throwsUser(t, listTieredImagenet(root), new RegExp(`lacks tiered-ImageNet test class ${wnidTest}$`));
  await fs.rename(path.join(wd.dir, 'aside'), path.join(root, 'test', wnidTest));
  // An unknown class folder, an empty class folder, a non-image file, a missing split folder.
  await fs.mkdir(path.join(root, 'val', 'n99999999'));
  await throwsUser(t, listTieredImagenet(root), /val\/n99999999 is not a tiered-ImageNet class/);
  await fs.rmdir(path.join(root, 'val', 'n99999999'));
  await fs.writeFile(path.join(root, 'test', wnidTest, 'notes.txt'), 'x');
  await throwsUser(t, listTieredImagenet(root), /notes\.txt is not an image file/);
  await fs.rm(path.join(root, 'test', wnidTest, 'notes.txt'));
  for (const f of await fs.readdir(path.join(root, 'test', wnidTest))) await fs.rm(path.join(root, 'test', wnidTest, f));
  await throwsUser(t, listTieredImagenet(root), new RegExp(`tiered-ImageNet class ${wnidTest}\\) holds no images`));
  await fs.writeFile(path.join(root, 'test', wnidTest, 'a.jpg'), '');
  t.is((await listTieredImagenet(root)).splits.test[5]!.files[0], 'a.jpg');
  await fs.rename(path.join(root, 'val'), path.join(wd.dir, 'val'));
  await throwsUser(t, listTieredImagenet(root), /has train\/ and test\/ but no val\/ folder/);
});

test('tiered-ImageNet flat tree (root/<wnid> or root/images/<wnid>): split from the lists, other folders ignored', async (t) => {
  const wd = await workdir();
  t.teardown(() => wd.cleanup());
  const root = path.join(wd.dir, 'tiered_imagenet');
  const images = path.join(root, 'images');
  await fakeTree(images, 'flat', () => 2);
  await fs.mkdir(path.join(images, 'n00000001'));
  const got = await listTieredImagenet(root);
  t.is(got.layout, 'flat');
  t.is(got.root, images);
  t.deepEqual(got.ignoredFolders, ['n00000001']);
  t.deepEqual(
    BENCHMARK_SPLITS.map((s) => got.splits[s].length),
    [351, 97, 160],
  );
  t.deepEqual(got.splits.val[0], {
    wnid: tieredImagenetClasses().val[0]!,
    dir: path.join(images, tieredImagenetClasses().val[0]!),
    files: [0, 1].map((k) => `${tieredImagenetClasses().val[0]}_000${k}.JPEG`),
  });
  const direct = await listTieredImagenet(images);
  t.deepEqual(direct.splits, got.splits);
  const gone = tieredImagenetClasses().train[100]!;
  await fs.rm(path.join(images, gone), { recursive: true });
  await throwsUser(t, listTieredImagenet(root), new RegExp(`lacks tiered-ImageNet train class ${gone}`));
  await throwsUser(t, listTieredImagenet(path.join(wd.dir, 'absent')), /cannot read folder .*absent \(ENOENT\)/);
});
