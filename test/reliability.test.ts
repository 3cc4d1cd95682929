import test from 'ava';
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { acquireRunLock } from '../src/util/lock.ts';
import { recoverDir, replaceDirAtomic, writeFilesAtomic } from '../src/util/atomic.ts';
import { saveCheckpoint, readCheckpoint } from '../src/train/checkpoint.ts';
import { readResult } from '../src/reports/results.ts';
import { UserError } from '../src/util/errors.ts';

test.before(async () => {
  await tf.setBackend('cpu');
});
// Every scratch folder a test makes is removed when the file's tests end (passed or failed).
const scratch: string[] = [];
const tmpDir = async (p: string) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `fewshot-${p}-`));
  scratch.push(dir);
  return dir;
};
test.after.always(async () => {
  await Promise.all(scratch.map((dir) => fs.rm(dir, { recursive: true, force: true })));
});

test('run lock: a second holder is refused with the holder pid, host and start time; released locks can be retaken', async (t) => {
  const dir = await tmpDir('lock');
  // A live process holds the lock (a child that takes it and waits).
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `import('${path.resolve('src/util/lock.ts')}').then(async (m) => { await m.acquireRunLock(${JSON.stringify(dir)}); console.log('held'); setTimeout(() => {}, 60000); })`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve) => child.stdout.on('data', (d) => String(d).includes('held') && resolve()));
  const err = await t.throwsAsync(acquireRunLock(dir), { instanceOf: UserError });
  t.regex(err!.problem, new RegExp(`in use by process ${child.pid} on ${os.hostname()} \\(started \\d{4}-`));
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  // The holder died without releasing: its lock is stale and taken over, saying whose it was.
  const lock = await acquireRunLock(dir);
  t.is(lock.tookOverFrom?.pid, child.pid);
  await lock.release();
  const again = await acquireRunLock(dir);
  t.is(again.tookOverFrom, undefined);
  await again.release();
  t.deepEqual(await fs.readdir(dir), []);
});

test('replaceDirAtomic keeps a symlinked complete version; recoverDir relinks the newest complete one and removes temps', async (t) => {
  const parent = await tmpDir('swap');
  const target = path.join(parent, 'last');
  await replaceDirAtomic(target, (d) => fs.writeFile(path.join(d, 'x'), '1'));
  await replaceDirAtomic(target, (d) => fs.writeFile(path.join(d, 'x'), '2'));
  t.is(await fs.readFile(path.join(target, 'x'), 'utf8'), '2');
  t.deepEqual((await fs.readdir(parent)).sort(), ['.last.v2', 'last']);
  // What a kill between "version renamed" and "link swapped" leaves: a newer complete version + a temp.
  await fs.mkdir(path.join(parent, '.last.v3'));
  await fs.writeFile(path.join(parent, '.last.v3', 'x'), '3');
  await fs.mkdir(path.join(parent, '.last.0123456789ab.tmp'));
  const actions = await recoverDir(target);
  t.true(
    actions.some((a) => /v3/.test(a)),
    actions.join('; '),
  );
  t.is(await fs.readFile(path.join(target, 'x'), 'utf8'), '3');
  t.deepEqual((await fs.readdir(parent)).sort(), ['.last.v3', 'last']);
  // A kill that left no link at all: the newest complete version is linked.
  await fs.rm(target);
  await recoverDir(target);
  t.is(await fs.readFile(path.join(target, 'x'), 'utf8'), '3');
});

test('writeFilesAtomic: an interrupted move (journal left) is rolled forward by the reader', async (t) => {
  const parent = await tmpDir('res');
  const dir = path.join(parent, 'r');
  await writeFilesAtomic(dir, [
    ['a.txt', 'old-a'],
    ['b.txt', 'old-b'],
  ]);
  // Emulate a kill after a.txt was moved: the journal still holds b.txt.
  const ready = path.join(parent, '.r.0123456789ab.ready');
  await fs.mkdir(ready);
  await fs.writeFile(path.join(ready, '.order'), 'a.txt\nb.txt');
  await fs.writeFile(path.join(ready, 'b.txt'), 'new-b');
  await fs.writeFile(path.join(dir, 'a.txt'), 'new-a');
  await writeFilesAtomic(dir, [
    ['a.txt', 'newer-a'],
    ['b.txt', 'newer-b'],
  ]);
  t.is(await fs.readFile(path.join(dir, 'b.txt'), 'utf8'), 'newer-b');
  t.deepEqual((await fs.readdir(parent)).sort(), ['r']);
});

test('a result whose per-episode.csv does not belong to its result.json is refused', async (t) => {
  const parent = await tmpDir('res2');
  const dir = path.join(parent, 'r');
  const { writeResult } = await import('../src/reports/results.ts');
  await writeResult(
    dir,
    {
      method: 'm',
      createdAt: '',
      command: '',
      seed: 0,
      backend: { choice: 'cpu', detail: '' },
      data: { dataset: 'd', imageSize: 8, splitFingerprint: '', cacheFingerprint: '' },
      episodes: { file: '', sha256: '', split: 'test', way: 2, shot: 1, query: 1, evaluated: 2 },
      wallSeconds: { eval: 1 },
      software: {},
    },
    { modes: ['m'], episodes: 2, perEpisode: { m: new Float64Array([50, 100]) }, summary: { m: { mean: 75, ci95: 1, std: 1, n: 2 } }, wallSeconds: 1 } as never,
  );
  t.is((await readResult(dir)).perEpisode.m[1], 100);
  await fs.writeFile(path.join(dir, 'per-episode.csv'), 'episode,m\n0,50\n1,0\n');
  await t.throwsAsync(readResult(dir), { instanceOf: UserError, message: /does not belong to result\.json/ });
});

test('checkpoints: a payload edited in place fails its checksum; non-finite weights are refused', async (t) => {
  const dir = path.join(await tmpDir('ck'), 'best');
  const v = tf.variable(tf.tensor1d([1, 2, 3]), true, 'w#ck1');
  await saveCheckpoint(dir, { variables: [v], meta: {} });
  t.truthy((await readCheckpoint(dir)).file.weightsSha256);
  const bin = await fs.readFile(path.join(dir, 'weights.bin'));
  bin[0] ^= 1;
  await fs.writeFile(path.join(dir, 'weights.bin'), bin);
  await t.throwsAsync(readCheckpoint(dir), { instanceOf: UserError, message: /does not match its checksum/ });
  // A NaN is never saved (issue 26 #2); one that got into weights.bin with its checksum recomputed is refused on load.
  const nan = tf.variable(tf.tensor1d([1, NaN, 3]), true, 'w#ck2');
  await t.throwsAsync(saveCheckpoint(dir, { variables: [nan], meta: {} }), { message: /non-finite value \(NaN\)/ });
  await saveCheckpoint(dir, { variables: [tf.variable(tf.tensor1d([1, 2, 3]), true, 'w#ck3')], meta: {} });
  const payload = new Float32Array([1, NaN, 3]);
  await fs.writeFile(path.join(dir, 'weights.bin'), payload);
  const json = JSON.parse(await fs.readFile(path.join(dir, 'checkpoint.json'), 'utf8'));
  json.weightsSha256 = createHash('sha256').update(payload).digest('hex');
  const { checkpointSha256: _recorded, ...rest } = json;
  json.checkpointSha256 = createHash('sha256').update(JSON.stringify(rest)).digest('hex');
  await fs.writeFile(path.join(dir, 'checkpoint.json'), JSON.stringify(json));
  await t.throwsAsync(readCheckpoint(dir), { instanceOf: UserError, message: /non-finite value \(NaN\)/ });
});
