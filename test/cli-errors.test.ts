import test from 'ava';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { buildFixture, REPO_ROOT, type Fixture } from './fixtures/mini-imagenet.ts';

/**
 * Bad input at the command line: usage errors exit 2 with a fix, a missing test file is reported before any
 * training, a different result is never replaced silently by `eval`, and `compare` of unequal episode counts is a
 * clear error (each failed before: exit 1 without a fix, a report after the whole training, a silent overwrite,
 * a stack trace).
 */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(REPO_ROOT, 'bin', 'fewshot.js'), ...args], { cwd: REPO_ROOT, timeout: 240_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (((err as { code?: number }).code as number) ?? 1) : 0, stdout, stderr });
    });
  });
}

let fx: Fixture;
test.before(async () => {
  fx = await buildFixture(8);
});
test.after.always(async () => fx?.cleanup());

test('usage errors exit 2 with an error and a fix line; a missing config names files that exist', async (t) => {
  const unknown = await cli(['run', 'protonet', '--bogus']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /error: unknown option '--bogus'/);
  t.regex(unknown.stderr, /fix: see `fewshot run --help`/);
  const bad = await cli(['run', 'protonet', '--way', 'x']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /fix:/);
  const help = await cli(['--help']);
  t.is(help.code, 0);
  const config = await cli(['run', 'protonet', '--config', 'no-such.json']);
  t.is(config.code, 2);
  const suggested = /e\.g\. --config (\S+)/.exec(config.stderr)?.[1];
  t.truthy(suggested);
  await t.notThrowsAsync(fs.access(path.resolve(REPO_ROOT, suggested!)), `the suggested ${suggested} exists`);
});

test('a missing or mismatched --test-file stops `run` before training; eval never silently replaces a different result; compare needs equal episodes', async (t) => {
  const tmp = fx.root;
  const cache = path.join(tmp, 'cache16');
  const common = ['--image-size', '16', '--cache', cache, '--data', fx.folderDir, '--backend', 'wasm', '--runs', path.join(tmp, 'runs'), '--results', path.join(tmp, 'results')];
  const prep = await cli(['data', 'prepare', '--data', fx.folderDir, '--image-size', '16', '--cache', cache]);
  t.is(prep.code, 0, prep.stderr);
  for (const split of ['val', 'test']) {
    const made = await cli(['episodes', 'make', '--split', split, '--way', '2', '--shot', '1', '--query', '3', '--count', '6', '--seed', '0', '--image-size', '16', '--cache', cache, '--out', path.join(tmp, `${split}.json`)]);
    t.is(made.code, 0, made.stderr);
  }
  const evalCommon = ['--cache', cache, '--data', fx.folderDir, '--backend', 'wasm', '--results', path.join(tmp, 'results')];
  const task = ['--way', '2', '--shot', '1', '--query', '3', '--episodes', '2', '--val-every', '0', '--val-episodes', '2', '--val-file', path.join(tmp, 'val.json')];
  const missing = await cli(['run', 'protonet', ...task, ...common, '--name', 'm', '--test-file', path.join(tmp, 'nope.json')]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /nope\.json/);
  t.notRegex(missing.stderr, /training protonet/);

  const ok = await cli(['run', 'protonet', ...task, ...common, '--name', 'r', '--test-file', path.join(tmp, 'test.json')]);
  t.is(ok.code, 0, ok.stderr);
  const resultJson = path.join(tmp, 'results', 'mini-imagenet', 'r', 'result.json');
  const before = await fs.readFile(resultJson, 'utf8');
  const evalSome = await cli(['eval', path.join(tmp, 'runs', 'r', 'best'), '--test-file', path.join(tmp, 'test.json'), '--test-episodes', '2', ...evalCommon, '--name', 'r']);
  t.is(evalSome.code, 2);
  t.regex(evalSome.stderr, /already holds a different result \(6 episodes/);
  t.is(await fs.readFile(resultJson, 'utf8'), before, 'the 6-episode result is untouched');
  const evalElsewhere = await cli(['eval', path.join(tmp, 'runs', 'r', 'best'), '--test-file', path.join(tmp, 'test.json'), '--test-episodes', '2', ...evalCommon, '--name', 'r-2ep']);
  t.is(evalElsewhere.code, 0, evalElsewhere.stderr);

  const cmp = await cli(['compare', path.join(tmp, 'results', 'mini-imagenet', 'r'), path.join(tmp, 'results', 'mini-imagenet', 'r-2ep')]);
  t.is(cmp.code, 2);
  t.regex(cmp.stderr, /scored 6 episodes and .* scored 2/);
  t.notRegex(cmp.stderr, /    at /);
});
