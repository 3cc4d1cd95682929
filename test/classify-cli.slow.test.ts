import test from 'ava';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { buildFixture, type Fixture } from './fixtures/mini-imagenet.ts';
import { episodesMakeArgs, prepareCliFixture, runCliOneThread as runCli, tinyTrainingArgs } from './fixtures/run-cli.ts';
import { exists, runSnapshot } from './fixtures/fs.ts';

// Single-threaded wasm (runCliOneThread): deterministic, and the fastest backend for these tiny runs.
/*
 * Classification (issue 31 #1, #2) end to end through the CLI on real mini-ImageNet images (3 classes × 20, 16 px):
 * a tiny SLA+SD training on a long-tailed (ratio 2) training set writes checkpoints and a result; a kill in the
 * middle of a step sequence and one in the middle of a checkpoint write (src/util/fault.ts crash points) resume to
 * byte-identical weights, log and predictions; `classify eval` gives the recorded result again. Bad input is refused
 * before any training with exit 2 and no run folder.
 */
let fx: Fixture;
let cache: string;
const SIZE = '16';

test.before(async () => {
  fx = await buildFixture(20);
  cache = await prepareCliFixture(fx, SIZE, runCli, { splits: [] });
});
test.after.always(async () => {
  await fx?.cleanup();
});

/** The classifier's data: the fixture's folder and cache, on wasm. */
const data = () => ['--data', fx.folderDir, '--cache', cache, '--backend', 'wasm'];
const trainArgs = (root: string, extra: string[] = []) => [
  ...['classify', 'train', '--variant', 'sla-sd', '--imbalance-ratio', '2', '--test-per-class', '5', '--batch-size', '8', '--epochs', '2'],
  ...['--checkpoint-every', '1', '--log-every', '2', '--image-size', SIZE, ...data()],
  ...['--runs', path.join(root, 'runs'), '--results', path.join(root, 'results'), '--name', 'c', ...extra],
];

async function snapshot(root: string) {
  const result = JSON.parse(await fs.readFile(path.join(root, 'results', 'mini-imagenet', 'c', 'result.json'), 'utf8'));
  return { ...(await runSnapshot(path.join(root, 'runs', 'c'))), accuracy: result.accuracy, split: result.split };
}

test.serial('tiny classification: trains, checkpoints, resumes byte-identically after a kill, evaluates', async (t) => {
  const baseRoot = path.join(fx.root, 'base');
  const base = await runCli(trainArgs(baseRoot));
  t.is(base.code, 0, base.stderr);
  t.regex(base.stdout, /^\[sd\] \d+\.\d\d ± \d+\.\d\d % \(95% CI, n=15 held-out images\)/m);
  t.regex(base.stderr, /3 classes, 32 training \/ 15 held-out images, imbalance ratio 2\) for 2 epochs × 4 steps/);
  const expected = await snapshot(baseRoot);
  // 20 images a class, 5 held out: n_max = 15, then ⌊15·2^(−1/2)⌋ = 10 and 15/2 → 7; all "few" (< 20 images).
  t.deepEqual(expected.split.trainCounts, [15, 10, 7]);
  t.is(expected.split.testImages, 15);
  t.deepEqual(Object.keys(expected.accuracy), ['sd', 'ag', 'si']);
  t.is(expected.accuracy.sd.groups.few.classes, 3);
  t.is(expected.accuracy.sd.correct.length, 15);
  const ckpt = JSON.parse(await fs.readFile(path.join(baseRoot, 'runs', 'c', 'best', 'checkpoint.json'), 'utf8'));
  t.is(ckpt.meta.kind, 'classifier');
  t.is(ckpt.meta.episode, 8);
  t.is(ckpt.meta.split.trainSha256, expected.split.trainSha256);

  // A kill after step 3 (between steps) and one inside the 5th checkpoint write (weights written, not yet swapped in).
  for (const point of ['train:episode-done:3', 'checkpoint:weights-written:5']) {
    const root = path.join(fx.root, point.replace(/[^A-Za-z0-9]+/g, '_'));
    const crashed = await runCli(trainArgs(root), { FEWSHOT_CRASH_AT: point });
    t.is(crashed.signal, 'SIGKILL', `${point} did not crash: ${crashed.stderr.slice(-300)}`);
    t.false(await exists(path.join(root, 'results', 'mini-imagenet', 'c', 'result.json')));
    const resumed = await runCli(trainArgs(root));
    t.is(resumed.code, 0, `${point}: ${resumed.stderr}`);
    t.regex(resumed.stderr, /resuming at episode [1-9] of 8/);
    t.deepEqual(await snapshot(root), expected, `after a crash at ${point}`);
  }

  // The evaluator reproduces the recorded result from the checkpoint alone.
  const evaluated = await runCli([
    'classify',
    'eval',
    path.join(baseRoot, 'runs', 'c', 'best'),
    ...data(),
    '--results',
    path.join(baseRoot, 'results'),
    '--json',
  ]);
  t.is(evaluated.code, 0, evaluated.stderr);
  const summary = JSON.parse(evaluated.stdout);
  t.is(summary.headlineMode, 'sd');
  for (const m of ['sd', 'ag', 'si']) t.deepEqual(summary.accuracy[m].overall, expected.accuracy[m].overall);
  const evalResult = JSON.parse(await fs.readFile(path.join(baseRoot, 'results', 'mini-imagenet', 'c_eval', 'result.json'), 'utf8'));
  t.is(evalResult.accuracy.ag.correct, expected.accuracy.ag.correct);

  // A committed result (its result.json tracked by git) is a reference: a run or evaluation that would replace it is
  // refused before training or evaluation, unless --replace-committed says so.
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: baseRoot, stdio: 'ignore' });
  git('init', '-q');
  git('add', 'results');
  git('commit', '-qm', 'reference');
  const refused = await runCli(trainArgs(baseRoot));
  t.is(refused.code, 2, refused.stderr);
  t.regex(refused.stderr, /is a committed reference result \(its result\.json is tracked by git\); this would replace it/);
  const replaced = await runCli(trainArgs(baseRoot, ['--replace-committed']));
  t.is(replaced.code, 0, replaced.stderr);
  t.deepEqual(await snapshot(baseRoot), expected);
});

test.serial(
  'bad input: ratio < 1, a split too small to hold out, an episodic checkpoint to classify eval and the reverse: exit 2, nothing written',
  async (t) => {
    const root = path.join(fx.root, 'bad');
    const ratio = await runCli(trainArgs(root, ['--imbalance-ratio', '0.5']));
    t.is(ratio.code, 2, ratio.stderr);
    t.regex(ratio.stderr, /^error: imbalance ratio 0\.5 must be a number ≥ 1/m);
    t.regex(ratio.stderr, /fix: use 1 for a balanced training set/);
    const small = await runCli(trainArgs(root, ['--test-per-class', '19']));
    t.is(small.code, 2, small.stderr);
    t.regex(small.stderr, /^error: the train split of mini-imagenet is too small to hold out a test portion: class "n\w+" has 20 images/m);
    t.false(await exists(path.join(root, 'runs')), 'a refused run leaves no run folder');
    t.false(await exists(path.join(root, 'results')));

    // An episodic checkpoint (2 ProtoNet episodes) given to the classification evaluator, and a classifier to `eval`.
    const valFile = path.join(fx.root, 'val.json');
    const made = await runCli(episodesMakeArgs({ split: 'val', size: SIZE, cache, out: valFile, count: 2 }));
    t.is(made.code, 0, made.stderr);
    const episodic = await runCli(
      tinyTrainingArgs({
        command: 'train',
        method: 'protonet',
        size: SIZE,
        cache,
        root: fx.root,
        runs: path.join(root, 'episodic'),
        episodes: 2,
        valEvery: 0,
        valFile,
        name: 'p',
      }),
    );
    t.is(episodic.code, 0, episodic.stderr);
    const refused = await runCli([
      'classify',
      'eval',
      path.join(root, 'episodic', 'p', 'best'),
      '--data',
      fx.folderDir,
      '--cache',
      cache,
      '--results',
      path.join(root, 'results'),
    ]);
    t.is(refused.code, 2, refused.stderr);
    t.regex(refused.stderr, /is a checkpoint of the episodic method "protonet", not of a classifier/);
    t.regex(refused.stderr, /fix: evaluate it with `fewshot eval \S+\/best`/);
    t.false(await exists(path.join(root, 'results')));

    const classifier = path.join(fx.root, 'base', 'runs', 'c', 'best');
    t.true(await exists(classifier), "needs the first test's classifier");
    const reverse = await runCli(['eval', classifier, '--cache', cache, '--results', path.join(root, 'results')]);
    t.is(reverse.code, 2, reverse.stderr);
    t.regex(reverse.stderr, /is a checkpoint of a classifier \(fewshot classify train\), not of an episodic method/);
    t.regex(reverse.stderr, /fix: evaluate it with `fewshot classify eval \S+\/best`/);
    t.false(await exists(path.join(root, 'results')));
  },
);
