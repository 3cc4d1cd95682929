import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { runCliOneThread as runCli, TINY_TASK, tinyEvalArgs, type TinyTraining, tinyTrainingArgs, useCliFixture } from './fixtures/run-cli.ts';
import { readCheckpoint, saveCheckpoint } from '../src/train/checkpoint.ts';
import { exists } from './fixtures/fs.ts';

/**
 * What a run, a result or a checkpoint link may replace or reach (issue 26 #4, #10, #14), with real CLI runs on
 * real mini-ImageNet images: a run never replaces another run's result; names never lead out of --runs /
 * --results; a `last`/`best` link checked out as a plain file (git core.symlinks=false) is followed, not restarted.
 */
const SIZE = '16';
const fixture = useCliFixture(test, 12, SIZE);

test.before(async () => {
  await tf.setBackend('cpu');
});

/** A tiny ProtoNet training on the fixture, its run named from its configuration unless `o.name` says otherwise. */
const training = (command: 'run' | 'train', runs: string, o: Partial<TinyTraining> = {}) =>
  tinyTrainingArgs({ command, method: 'protonet', size: SIZE, cache: fixture.cache, root: fixture.fx.root, runs, episodes: 4, name: null, ...o });
const runArgs = (runs: string, results: string, extra: string[] = []) => [...training('run', runs, { results }), ...extra];
const evalArgs = (checkpoint: string, results: string) => tinyEvalArgs(checkpoint, { root: fixture.fx.root, cache: fixture.cache, results });

test.serial('#4 run: a different run (other lr, other --runs) never replaces a result; the same run replaces its own', async (t) => {
  const root = path.join(fixture.fx.root, 'replace');
  const results = path.join(root, 'res');
  const first = await runCli(runArgs(path.join(root, 'A'), results));
  t.is(first.code, 0, first.stderr);
  const [name] = await fs.readdir(path.join(results, 'mini-imagenet'));
  const resultFile = path.join(results, 'mini-imagenet', name, 'result.json');
  const before = await fs.readFile(resultFile, 'utf8');

  // Another --runs folder, so no run lock or checkpoint config check can fire; the result folder name is the same.
  const other = await runCli(runArgs(path.join(root, 'B'), results, ['--lr', '0.01']));
  t.is(other.code, 2, other.stderr);
  t.regex(
    other.stderr,
    /already holds a run with a different configuration \(its result: optimizer\.lr: [0-9.e-]+ → 0\.01; recorded → this run\); it is not replaced/,
  );
  t.regex(other.stderr, /fix: give this run another --name, or another --results folder, or delete .* if you no longer need that result/);
  t.is(await fs.readFile(resultFile, 'utf8'), before, 'the first result is untouched');
  t.false(await exists(path.join(root, 'B', name)), 'refused before training: no run folder');

  // The same config (from a third run folder) is the same run: its result is replaced, as before.
  const same = await runCli(runArgs(path.join(root, 'C'), results));
  t.is(same.code, 0, same.stderr);
  t.regex(
    JSON.parse(await fs.readFile(resultFile, 'utf8')).checkpoint,
    new RegExp(`/replace/C/${name}/best$`),
    'the result of the same config from run folder C',
  );
});

test.serial("#10 names: --name, a checkpoint's recorded run name and a folder dataset's name cannot lead out of their folders", async (t) => {
  const root = path.join(fixture.fx.root, 'names', 'a', 'b', 'c');
  const runs = path.join(root, 'runs');
  const results = path.join(root, 'results');
  for (const command of ['run', 'train']) {
    const args = command === 'run' ? runArgs(runs, results, ['--name', '../../escaped']) : training('train', runs, { episodes: 2, name: '../../escaped' });
    const out = await runCli(args);
    t.is(out.code, 2, out.stderr);
    t.regex(
      out.stderr,
      /error: --name "\.\.\/\.\.\/escaped" would not stay inside its folder \(its part "\.\."\): "\.\." refers to a folder itself or its parent/,
    );
    t.regex(out.stderr, /fix: give a plain name/);
  }
  t.false(await exists(path.join(runs, '..', '..', 'escaped')));
  t.false(await exists(path.join(results, 'mini-imagenet', '..', '..', 'escaped')));
  t.false(await exists(runs), 'nothing was written');

  // A shared checkpoint whose recorded run name climbs out of --results, written by fewshot's own writer.
  const trained = await runCli(training('train', runs, { episodes: 2, name: 'ok' }));
  t.is(trained.code, 0, trained.stderr);
  const ckpt = await readCheckpoint(path.join(runs, 'ok', 'best'));
  const variables = ckpt.file.variables.map((e, i) => tf.variable(ckpt.tensor(e), false, `${e.key}#shared${i}`));
  const shared = path.join(root, 'shared', 'best');
  const evil = '../../../../elsewhere/PWNED';
  await saveCheckpoint(shared, { variables, meta: { ...ckpt.file.meta, name: evil } });
  const sharedEval = evalArgs(shared, results);
  const refused = await runCli(sharedEval);
  t.is(refused.code, 2, refused.stderr);
  t.regex(refused.stderr, /error: the run name recorded in .*checkpoint\.json "\.\.\/\.\.\/\.\.\/\.\.\/elsewhere\/PWNED" would not stay inside its folder/);
  t.regex(refused.stderr, /fix: name the evaluation's result yourself with --name <name>/);
  t.false(await exists(path.resolve(results, 'mini-imagenet', '../../../../elsewhere')), 'nothing written outside --results');
  const named = await runCli([...sharedEval, '--name', 'shared-eval']);
  t.is(named.code, 0, named.stderr);
  t.true(await exists(path.join(results, 'mini-imagenet', 'shared-eval', 'result.json')));

  // The folder provider's `name` option (the results, cache and episode folder name).
  for (const bad of ['..', '.hidden']) {
    const out = await runCli([
      'run',
      'protonet',
      ...TINY_TASK,
      '--dataset',
      'folder',
      '--data',
      fixture.fx.folderDir,
      '--dataset-option',
      `name=${bad}`,
      '--backend',
      'wasm',
      '--image-size',
      SIZE,
      '--episodes',
      '2',
      '--runs',
      runs,
      '--results',
      results,
    ]);
    t.is(out.code, 2, out.stderr);
    t.regex(out.stderr, new RegExp(`error: the name of dataset "folder" is "${bad.replace(/\./g, '\\.')}", which cannot name a folder`));
    t.regex(out.stderr, /fix: give it a plain name: --dataset-option name=<name>/);
  }
  t.false(await exists(path.join(results, '..', 'runs', 'protonet_conv4_16px_2w1s_2ep_seed0')));
});

test.serial('#14 last/best checked out as plain files (git core.symlinks=false): followed and relinked, the run resumes where it was', async (t) => {
  const root = path.join(fixture.fx.root, 'plain-links');
  const args = (r: string) => runArgs(path.join(r, 'runs'), path.join(r, 'results'), ['--name', 'r']);
  const baseline = path.join(root, 'baseline');
  t.is((await runCli(args(baseline))).code, 0);
  const weights = async (r: string) =>
    Promise.all(['last', 'best'].map(async (d) => (await fs.readFile(path.join(r, 'runs', 'r', d, 'weights.bin'))).toString('base64')));
  const expected = await weights(baseline);

  // Killed after the checkpoint at episode 2 of 4.
  const crashed = await runCli(args(root), { FEWSHOT_CRASH_AT: 'train:episode-done:3' });
  t.is(crashed.signal, 'SIGKILL', crashed.stderr);
  const runDir = path.join(root, 'runs', 'r');
  // What a checkout without symbolic links holds: a small file whose content is the link's target.
  for (const d of ['last', 'best']) {
    const target = await fs.readlink(path.join(runDir, d));
    await fs.rm(path.join(runDir, d));
    await fs.writeFile(path.join(runDir, d), target);
  }
  const lastTarget = await fs.readFile(path.join(runDir, 'last'), 'utf8');
  t.regex(lastTarget, /^\.last\.v\d+$/);

  // A reader follows the stand-in.
  const evaluated = await runCli(evalArgs(path.join(runDir, 'best'), path.join(root, 'eval')));
  t.is(evaluated.code, 0, evaluated.stderr);

  // A plain file that names no version folder is refused, and nothing is changed.
  const copy = path.join(root, 'copy');
  await fs.cp(path.join(root, 'runs'), path.join(copy, 'runs'), { recursive: true, verbatimSymlinks: true });
  await fs.writeFile(path.join(copy, 'runs', 'r', 'last'), 'not a link target\n');
  const listing = async () => (await fs.readdir(path.join(copy, 'runs', 'r'))).filter((n) => n !== '.lock').sort(); // (the killed run's stale lock is taken over)
  const before = await listing();
  const refused = await runCli(args(copy));
  t.is(refused.code, 2, refused.stderr);
  t.regex(refused.stderr, /error: .*runs\/r\/last is neither a link to a version folder nor a plain file naming one \(a 18-byte file\)/);
  t.regex(refused.stderr, /fix: restore it from where it came from \(with symbolic links: git config core\.symlinks true\)/);
  t.deepEqual(await listing(), before);
  t.is(await fs.readFile(path.join(copy, 'runs', 'r', 'last'), 'utf8'), 'not a link target\n');

  // The same command resumes at episode 2 (not 0), links last/ and best/ again, and ends as if never interrupted.
  const resumed = await runCli(args(root));
  t.is(resumed.code, 0, resumed.stderr);
  t.regex(
    resumed.stderr,
    new RegExp(`last was a plain file naming ${lastTarget.replace(/\./g, '\\.')} \\(a copy without symbolic links\\); linked to \\.last\\.v\\d+ again`),
  );
  t.regex(resumed.stderr, /resuming at episode 2 of 4/);
  t.is(JSON.parse(await fs.readFile(path.join(root, 'results', 'mini-imagenet', 'r', 'result.json'), 'utf8')).training.resumedFrom, 2);
  for (const d of ['last', 'best']) t.true((await fs.lstat(path.join(runDir, d))).isSymbolicLink(), `${d} is a link again`);
  t.deepEqual(await weights(root), expected, 'weights byte-identical to an uninterrupted run');
});
