import test from 'ava';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { PickleFormatError, readCifar100, unpickle, type Cifar100 } from '../src/data/readers/index.ts';
import { UserError } from '../src/util/errors.ts';
import {
  COARSE_NAMES,
  FINE_NAMES,
  TEST_FINE,
  TRAIN_FINE,
  binaryMembers,
  binaryRecords,
  makePart,
  packArchive,
  py2dumps,
  python3Members,
  python3Missing,
  pythonMembers,
  workdir,
  type Workdir,
} from './fixtures/cifar100.ts';

const train = makePart(1, TRAIN_FINE);
const testPart = makePart(2, TEST_FINE);
let wd: Workdir;
test.before(async () => {
  wd = await workdir();
});
test.after.always(async () => wd?.cleanup());

let n = 0;
const archive = (members: [string, Uint8Array | string][], gzip = true): Promise<string> =>
  packArchive(path.join(wd.dir, `a${n++}.tar${gzip ? '.gz' : ''}`), members, gzip);

function checkContent(t: import('ava').ExecutionContext, got: Cifar100): void {
  t.deepEqual(got.fineLabelNames, FINE_NAMES);
  t.deepEqual(got.coarseLabelNames, COARSE_NAMES);
  t.is(got.fineLabelNames[0], 'apple');
  t.is(got.fineLabelNames[99], 'worm');
  for (const [name, part] of [
    ['train', train],
    ['test', testPart],
  ] as const) {
    const g = got[name];
    t.is(g.count, part.fine.length, name);
    t.deepEqual([...g.fineLabels], part.fine, `${name} fine labels`);
    t.deepEqual([...g.coarseLabels], part.coarse, `${name} coarse labels`);
    t.is(g.pixels.length, part.fine.length * 32 * 32 * 3);
    t.true(Buffer.from(g.pixels).equals(Buffer.from(part.nhwc)), `${name} NHWC pixels byte for byte`);
  }
  // Spot checks against the layout by hand: image 1 of train, row 2, column 5 is at NHWC offset ((1*32+2)*32+5)*3.
  const at = ((1 * 32 + 2) * 32 + 5) * 3;
  t.deepEqual(
    [...got.train.pixels.subarray(at, at + 3)],
    [0, 1, 2].map((c) => train.planar[3072 + c * 1024 + 2 * 32 + 5]),
  );
  // worm (99) is in superclass invertebrates (non-insect_invertebrates = 13), apple (0) in fruit_and_vegetables (4).
  t.is(got.train.coarseLabels[1], 13);
  t.is(got.train.coarseLabels[0], 4);
}

const strip = (c: Cifar100) => ({ train: c.train, test: c.test, fineLabelNames: c.fineLabelNames, coarseLabelNames: c.coarseLabelNames });

test('python (Python 2 cPickle protocol 2) and binary archives give the same pixels, labels and names', async (t) => {
  const py = await readCifar100(await archive(pythonMembers(train, testPart)));
  const bin = await readCifar100(await archive(binaryMembers(train, testPart)));
  t.is(py.kind, 'python');
  t.is(bin.kind, 'binary');
  t.regex(py.sha256, /^[0-9a-f]{64}$/);
  checkContent(t, py);
  checkContent(t, bin);
  t.deepEqual(strip(py), strip(bin));
});

test('members under ./ and a plain (ungzipped) tar are read too', async (t) => {
  const dotted = binaryMembers(train, testPart).map(([p, b]): [string, Uint8Array | string] => [`./${p}`, b]);
  const file = await archive(dotted, false);
  const paths: string[] = [];
  await tar.list({ file, onReadEntry: (e) => paths.push(e.path) });
  t.true(
    paths.every((p) => p.startsWith('./cifar-100-binary/')),
    paths.join(', '),
  );
  checkContent(t, await readCifar100(file));
});

const py3 = python3Missing();
(py3 ? test.skip : test)('python archive written by Python 3 pickle (protocol 2, numpy) reads the same' + (py3 ? ` [skipped: ${py3}]` : ''), async (t) => {
  const dir = await fs.mkdtemp(path.join(wd.dir, 'py3-'));
  const got = await readCifar100(await archive(await python3Members(dir, train, testPart)));
  t.is(got.kind, 'python');
  checkContent(t, got);
});

(py3 ? test.skip : test)(
  'the test pickler writes pickles Python 3 loads (encoding=bytes) to the same numpy array' + (py3 ? ` [skipped: ${py3}]` : ''),
  async (t) => {
    const file = path.join(wd.dir, 'py2.pkl');
    await fs.writeFile(file, pythonMembers(train, testPart)[3]![1]);
    const script = `import pickle, sys, hashlib
d = pickle.load(open(sys.argv[1], 'rb'), encoding='bytes')
a = d[b'data']
print(a.dtype, a.shape, d[b'fine_labels'], d[b'coarse_labels'], hashlib.sha256(a.tobytes()).hexdigest(), d[b'filenames'][0].decode())`;
    const r = spawnSync('python3', ['-c', script, file], { encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    const { createHash } = await import('node:crypto');
    const sha = createHash('sha256').update(train.planar).digest('hex');
    t.is(r.stdout.trim(), `uint8 (6, 3072) [${TRAIN_FINE.join(', ')}] [${train.coarse.join(', ')}] ${sha} apple_s_000000.png`);
  },
);

async function rejects(t: import('ava').ExecutionContext, file: string, pattern: RegExp): Promise<void> {
  const err = await t.throwsAsync(readCifar100(file), { instanceOf: UserError });
  t.true(err!.problem.includes(file), `the problem names the file: ${err!.problem}`);
  t.regex(err!.problem, pattern);
  t.regex(err!.fix, /cifar-100-python\.tar\.gz.*cifar-100-binary\.tar\.gz.*cs\.toronto\.edu/);
}

test('a CIFAR-10 archive is rejected as the wrong kind', async (t) => {
  const rec = Buffer.alloc(3073 * 2);
  await rejects(
    t,
    await archive([
      ['cifar-10-batches-bin/batches.meta.txt', 'airplane\n'],
      ['cifar-10-batches-bin/data_batch_1.bin', rec],
    ]),
    /CIFAR-10 archive/,
  );
  await rejects(t, await archive([['cifar-10-batches-py/data_batch_1', py2dumps({ dict: [['labels', [1]]] })]]), /CIFAR-10 archive/);
});

test('files that are not a tar.gz, or another tar, are rejected', async (t) => {
  const junk = path.join(wd.dir, 'junk.tar.gz');
  await fs.writeFile(junk, Buffer.from('this is not an archive at all\n'.repeat(40)));
  await rejects(t, junk, /is neither a gzip-compressed nor a plain tar archive/);
  const gzText = path.join(wd.dir, 'text.gz');
  await fs.writeFile(gzText, gzipSync(Buffer.from('hello\n'.repeat(300))));
  await rejects(t, gzText, /not a readable \.tar\.gz, or truncated/);
  await rejects(t, await archive([['images/a.png', 'x']]), /not a CIFAR-100 archive.*images\/a\.png/);
  const missing = path.join(wd.dir, 'nope.tar.gz');
  const err = await t.throwsAsync(readCifar100(missing), { instanceOf: UserError });
  t.regex(err!.problem, /cannot read .*nope\.tar\.gz \(ENOENT\)/);
});

test('a truncated archive or member is rejected', async (t) => {
  const whole = await fs.readFile(await archive(binaryMembers(train, testPart)));
  const cut = path.join(wd.dir, 'cut.tar.gz');
  await fs.writeFile(cut, whole.subarray(0, Math.floor(whole.length * 0.6)));
  await rejects(
    t,
    cut,
    /not a readable \.tar\.gz, or truncated \((inside member cifar-100-binary\/[a-z_.]+ \(\d+ of \d+ bytes\): )?zlib: unexpected end of file\)/,
  );

  // A complete gzip stream of a tar cut inside train.bin's data: the member is shorter than its header says.
  const plainFile = await archive(binaryMembers(train, testPart), false);
  const plain = await fs.readFile(plainFile);
  const entries: { path: string; size: number }[] = [];
  await tar.list({ file: plainFile, onReadEntry: (e) => entries.push({ path: e.path, size: e.size }) });
  t.is(entries.at(-1)!.path, 'cifar-100-binary/train.bin');
  const memberCut = path.join(wd.dir, 'member-cut.tar.gz');
  const trainStart = plain.length - 1024 - Math.ceil(entries.at(-1)!.size / 512) * 512; // tar ends with two zero blocks
  await fs.writeFile(memberCut, gzipSync(plain.subarray(0, trainStart + 3074 * 2 + 100)));
  await rejects(t, memberCut, /inside member cifar-100-binary\/train\.bin \(6248 of 18444 bytes\): .*Truncated input/);

  // A complete member holding a truncated pickle.
  const members = pythonMembers(train, testPart);
  members[3] = [members[3]![0], members[3]![1].subarray(0, 5000)];
  await rejects(t, await archive(members), /cifar-100-python\/train is not a CIFAR-100 pickle, or is truncated.*ends early/);
});

test('a binary member that is not a whole number of records is rejected', async (t) => {
  const members = binaryMembers(train, testPart);
  members[2] = ['cifar-100-binary/test.bin', Buffer.concat([binaryRecords(testPart), Buffer.alloc(100)])];
  await rejects(
    t,
    await archive(members),
    /cifar-100-binary\/test\.bin has 9322 bytes, not a whole number of 3074-byte records \(3 records and 100 bytes left over\)/,
  );
});

test('labels out of range are rejected, naming the member and the record', async (t) => {
  const bad = makePart(3, [5, 6, 7]);
  const rec = binaryRecords(bad);
  rec[3074 + 1] = 100; // record 1, fine label
  const members = binaryMembers(train, bad);
  members[2] = ['cifar-100-binary/test.bin', rec];
  await rejects(t, await archive(members), /test\.bin: record 1 has fine label 100, outside 0\.\.99/);
  const rec2 = binaryRecords(bad);
  rec2[2 * 3074] = 20; // record 2, coarse label
  members[2] = ['cifar-100-binary/test.bin', rec2];
  await rejects(t, await archive(members), /record 2 has coarse label 20, outside 0\.\.19/);

  const pyMembers = pythonMembers(train, testPart);
  const badFine = { ...train, fine: [0, 1, 150, 3, 4, 5] };
  pyMembers[3] = [
    'cifar-100-python/train',
    py2dumps({
      dict: [
        ['fine_labels', badFine.fine],
        ['coarse_labels', train.coarse],
        ['data', { ndarray: train.planar, shape: [6, 3072] }],
      ],
    }),
  ];
  await rejects(t, await archive(pyMembers), /cifar-100-python\/train: fine_labels\[2\] is 150, outside 0\.\.99/);
});

test('missing members, wrong name lists and label/image count mismatches are rejected', async (t) => {
  const members = binaryMembers(train, testPart).filter(([p]) => !p.endsWith('coarse_label_names.txt'));
  await rejects(t, await archive(members), /member cifar-100-binary\/coarse_label_names\.txt missing/);
  const fewNames = binaryMembers(train, testPart);
  fewNames[1] = ['cifar-100-binary/fine_label_names.txt', FINE_NAMES.slice(0, 99).join('\n')];
  await rejects(t, await archive(fewNames), /fine_label_names\.txt lists 99 names, expected 100/);
  const py = pythonMembers(train, testPart);
  py[2] = [
    'cifar-100-python/test',
    py2dumps({
      dict: [
        ['fine_labels', [1, 2]],
        ['coarse_labels', [1, 2]],
        ['data', { ndarray: testPart.planar, shape: [3, 3072] }],
      ],
    }),
  ];
  await rejects(t, await archive(py), /'fine_labels' has 2 labels for 3 images/);
  const noMeta = pythonMembers(train, testPart).filter(([p]) => !p.endsWith('/meta'));
  await rejects(t, await archive(noMeta), /member cifar-100-python\/meta missing/);
  const both = [...pythonMembers(train, testPart), ...binaryMembers(train, testPart)];
  await rejects(t, await archive(both), /both the python and the binary/);
});

test('the unpickler is strict: other globals, protocols and opcodes are refused', (t) => {
  // cos\nsystem\n(S'echo'\ntR.  (protocol 0 GLOBAL os.system, REDUCE)
  const evil = Buffer.from('\x80\x02cos\nsystem\nq\x00U\x04echoq\x01\x85q\x02Rq\x03.', 'latin1');
  t.throws(() => unpickle(evil), { instanceOf: PickleFormatError, message: /global os\.system is not allowed/ });
  t.throws(() => unpickle(Buffer.from([0x80, 4, 0x4e, 0x2e])), { instanceOf: PickleFormatError, message: /protocol 4 is not supported/ });
  t.throws(() => unpickle(Buffer.from([0x80, 2, 0x47, 0, 0, 0, 0, 0, 0, 0, 0, 0x2e])), {
    instanceOf: PickleFormatError,
    message: /opcode 0x47 is not supported/,
  });
  t.throws(() => unpickle(Buffer.from([0x80, 2, 0x4e, 0x2e, 0x00])), { instanceOf: PickleFormatError, message: /1 bytes after the end/ });
  // A float64 numpy dtype is refused (only uint8 arrays are expected).
  const f8 = Buffer.from('\x80\x02cnumpy\ndtype\nU\x02f8K\x00K\x01\x87R.', 'latin1');
  t.throws(() => unpickle(f8), { instanceOf: PickleFormatError, message: /dtype "f8" is not supported/ });
  t.deepEqual(unpickle(Buffer.from('\x80\x02]q\x00(K\x01M\x2c\x01J\xff\xff\xff\xff\x8a\x03\x00\x00\x80e.', 'latin1')), [1, 300, -1, -8388608]);
});
