import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { CommanderError } from 'commander';
import { buildFixture, type Fixture } from './fixtures/mini-imagenet.ts';
import { runLauncher, tinyTrainingArgs } from './fixtures/run-cli.ts';
import { buildProgram, describeCliFailure, type CliFailure } from '../src/cli/program.ts';
import { NumericalError, UserError } from '../src/util/errors.ts';
import { exists } from './fixtures/fs.ts';

/*
 * Bad input on the command line: each case parses the same argv through the CLI's own command tree
 * (src/cli/program.ts) in this process and maps the thrown error the way `fewshot` does, so the whole matrix
 * costs one module load instead of a node + tsx start-up per case. One test runs the real launcher as a
 * subprocess and checks that it prints exactly that text and exits with that code. The episode cases need a
 * dataset: a 7-class fixture cut from real mini-ImageNet images, prepared at 16 px through the same CLI.
 */

/** `fewshot <args>` in-process: the failure it ends with (text and exit code), or code 0 and no text. */
async function cliInProcess(args: string[]): Promise<CliFailure> {
  const program = buildProgram();
  try {
    await program.parseAsync(args, { from: 'user' });
    return { text: '', code: 0 };
  } catch (err) {
    return describeCliFailure(err, program, args);
  }
}

let fx: Fixture;
let tmp: string;
let cache: string;
const common = () => ['--image-size', '16', '--cache', cache];

test.before(async () => {
  fx = await buildFixture(12);
  tmp = fx.root;
  cache = path.join(tmp, 'cache16');
  const prep = await cliInProcess(['data', 'prepare', '--data', fx.folderDir, ...common()]);
  if (prep.code !== 0) throw new Error(`prepare failed: ${prep.text}`);
});

test.after.always(async () => {
  await fx?.cleanup();
});

/** Stands for the fixture's cache folder, which exists only once `before` has run. */
const CACHE = '<cache>';
const badInputs: [string, string[], RegExp][] = [
  ['unknown method', ['run', 'protonett', '--data', 'x'], /^error: unknown method "protonett" \(did you mean "protonet"\?\)\n {2}fix: use one of: protonet/],
  [
    'unknown method, two close names',
    ['run', 'protonet-sa', '--data', 'x'],
    /^error: unknown method "protonet-sa" \(did you mean "protonet-sla" or "protonet-da"\?\)\n {2}fix: /,
  ],
  ['unknown method, nothing close', ['run', 'resnet', '--data', 'x'], /^error: unknown method "resnet"\n {2}fix: use one of/],
  ['unknown backbone', ['run', 'protonet', '--backbone', 'conv-4', '--data', 'x'], /^error: unknown backbone "conv-4" \(did you mean "conv4"\?\)\n {2}fix: /],
  ['unknown dataset', ['data', 'prepare', '--dataset', 'cifarfs'], /^error: unknown dataset "cifarfs" \(did you mean "cifar-fs"\?\)\n {2}fix: /],
  [
    'unknown table',
    ['reproduce', 'sla-fewshots', '--dry-run'],
    /^error: unknown table "sla-fewshots" \(did you mean "sla-fewshot"\?\)[^\n]*\n {2}fix: use one of: /,
  ],
  ['unknown transform', ['run', 'protonet-sla', '--transform', 'flip'], /^error: unknown transform set "flip"[\s\S]*\n {2}fix: /],
  ['transform on a plain method', ['run', 'protonet', '--transform', 'rotation'], /takes no wrapper options[\s\S]*\n {2}fix: /],
  ['missing dataset', ['data', 'prepare', '--data', '/nonexistent/mini'], /^error: .*\/nonexistent\/mini[\s\S]*\n {2}fix: /],
  ['way larger than the split', ['episodes', 'make', '--split', 'test', '--way', '5', '--count', '2'], /^error: .*way[\s\S]*\n {2}fix: /i],
  [
    'shot + query larger than a class',
    ['episodes', 'make', '--split', 'test', '--way', '2', '--shot', '10', '--query', '10', '--count', '2'],
    /^error: [\s\S]*\n {2}fix: /,
  ],
  [
    'a backend that cannot load',
    ['run', 'protonet', '--backend', 'tensorflow-gpu', '--episodes', '1', '--image-size', '16', '--cache', CACHE],
    /^error: backend "tensorflow-gpu" cannot load[\s\S]*\n {2}fix: .*npm install-scripts approve @tensorflow\/tfjs-node-gpu/,
  ],
  // usage errors, found by commander before any action runs
  ['unknown option', ['run', 'protonet', '--bogus'], /^error: unknown option '--bogus'\n {2}fix: .*`fewshot run --help`/],
  ['missing argument', ['compare', 'only-one'], /^error: missing required argument 'resultB'\n {2}fix: /],
  ['invalid choice', ['run', 'protonet', '--backend', 'tpu'], /^error: .*--backend.*tpu.*Allowed choices are auto.*\n {2}fix: use one of the allowed choices/],
  ['bad number', ['run', 'protonet', '--way', 'x'], /^error: .*--way must be an integer ≥ 2, got "x"\n {2}fix: /],
  ['missing required option', ['episodes', 'make'], /^error: required option '--split <name>' not specified\n {2}fix: .*`fewshot episodes make --help`/],
  ['pretrained-eval without --shot', ['pretrained-eval', 'runs/x/best'], /^error: required option '--shot <n>' not specified\n {2}fix: /],
  // checked before the checkpoint is read
  [
    'pretrained-eval with an unknown head',
    ['pretrained-eval', 'runs/x/best', '--shot', '1', '--head', 'svm'],
    /^error: invalid few-shot request: heads\.0: [\s\S]*\n {2}fix: /,
  ],
  ['ood with too few bootstrap resamples', ['ood', 'runs/x/best', '--resamples', '5'], /^error: .*--resamples must be an integer ≥ 10, got "5"\n {2}fix: /],
];
for (const [what, args, message] of badInputs) {
  test(`bad input: ${what} → exit 2 with problem and fix`, async (t) => {
    const never = path.join(tmp, `never-${what.replace(/\W+/g, '-')}.json`);
    const extra = args[0] === 'episodes' ? [...common(), '--out', never] : args[0] === 'run' && !args.includes('--backend') ? ['--backend', 'cpu'] : [];
    const out = await cliInProcess([...args, ...extra].map((a) => (a === CACHE ? cache : a)));
    t.is(out.code, 2, out.text);
    t.regex(out.text, message);
    t.notRegex(out.text, /\n\s+at /, 'no stack for bad input');
    t.false(await exists(never), 'nothing written');
  });
}

test('bad input: a malformed episode file is refused before training', async (t) => {
  const bad = path.join(tmp, 'bad-episodes.json');
  await fs.writeFile(bad, '{"format": "fewshot-episodes", "formatVersion": 1, "episodes": [[1,2]]}');
  const results = path.join(tmp, 'results-bad');
  const training = { command: 'run', method: 'protonet', size: '16', cache, root: tmp, runs: path.join(tmp, 'runs-bad'), results, episodes: 2 } as const;
  const out = await cliInProcess(tinyTrainingArgs({ ...training, valFile: bad, testFile: null, backend: 'cpu', name: null }));
  t.is(out.code, 2, out.text);
  t.regex(out.text, /^error: .*bad-episodes\.json is not a valid episode file[\s\S]*\n {2}fix: /);
  t.false(await exists(results));
  t.false(await exists(path.join(tmp, 'runs-bad')));
});

test('exit codes: bad input 2, numerical failure 3, a bug 1, --help and --version 0', async (t) => {
  const program = buildProgram();
  t.deepEqual(await describeCliFailure(new UserError('the problem', 'the fix'), program, []), { text: 'error: the problem\n  fix: the fix\n', code: 2 });
  t.deepEqual(await describeCliFailure(new NumericalError('loss is NaN', 7, 'training episode'), program, []), {
    text: 'numerical error: loss is NaN (training episode 7)\n',
    code: 3,
  });
  const full = Object.assign(new Error('ENOSPC: no space left on device, write'), {
    code: 'ENOSPC',
    syscall: 'write',
    path: path.join(tmp, 'runs', 'x', 'weights.bin'),
  });
  const disk = await describeCliFailure(full, program, []);
  t.is(disk.code, 2);
  t.regex(disk.text, /^error: cannot write in .*: .*\(ENOSPC on write\)\n {2}fix: /);
  const bug = await describeCliFailure(new TypeError('x is not a function'), program, []);
  t.is(bug.code, 1);
  t.regex(bug.text, /^internal error: TypeError: x is not a function\n {2}fix: this is a bug in fewshot/);
  t.deepEqual(await describeCliFailure(new CommanderError(0, 'commander.version', '0.1.0'), program, ['--version']), { text: '', code: 0 });
  t.deepEqual(await describeCliFailure(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'), program, ['--help']), { text: '', code: 0 });
});

test('the launcher prints the same error and exits with the same code as the in-process CLI', async (t) => {
  const args = ['run', 'protonett', '--data', 'x', '--backend', 'cpu'];
  const expected = await cliInProcess(args);
  const out = await runLauncher(args);
  t.is(expected.code, 2);
  t.is(out.code, expected.code);
  t.is(out.stderr, expected.text);
  t.is(out.stdout, '');
});
