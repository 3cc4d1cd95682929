import test from 'ava';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { buildFixture, type Fixture } from './fixtures/mini-imagenet.ts';
import { prepareCliFixture, runLauncher, tinyTrainingArgs } from './fixtures/run-cli.ts';
import { exists } from './fixtures/fs.ts';

/*
 * Issue 32 #1: a user's run never replaces the project's committed reference results. In a git repository that
 * commits a result under results/ (as a clone of fewshot does), `run` writes to its own default folder
 * (results-local/, ignored), leaving `git status` clean of tracked changes; `run` aimed at the committed
 * folder refuses before any training, and replace it only with --replace-committed. Real launcher, real images.
 */
const cli = (args: string[], cwd: string) => runLauncher(args, cwd);

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.email=t@t', '-c', 'user.name=t', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

let fx: Fixture;
let tmp: string;
// Paths relative to the fixture folder the commands run in, as a user's would be; the CLI's default --runs.
const runArgs = () => [
  ...tinyTrainingArgs({ command: 'run', method: 'protonet', size: '16', cache: 'cache16', root: '.', episodes: 2, name: 'ref' }),
  '--data',
  fx.folderDir,
];
const committed = () => path.join(tmp, 'results', 'mini-imagenet', 'ref', 'result.json');

test.before(async () => {
  fx = await buildFixture(12);
  tmp = fx.root;
  await prepareCliFixture({ folderDir: fx.folderDir, root: '.' }, '16', (args) => cli(args, tmp), { cacheName: 'cache16' });
  // The project's reference result, committed as a clone of fewshot holds it; caches, runs and episodes are not.
  const made = await cli([...runArgs(), '--results', 'results'], tmp);
  if (made.code !== 0) throw new Error(`reference run failed: ${made.stderr}`);
  await fs.writeFile(path.join(tmp, '.gitignore'), '/cache16/\n/runs/\n/runs-b/\n/results-local/\n/*.json\n/fixture*/\n');
  git(tmp, 'init', '-q', '.');
  git(tmp, 'add', '.gitignore', 'results');
  git(tmp, 'commit', '-q', '-m', 'reference result');
});

test.after.always(async () => {
  await fx?.cleanup();
});

test.serial('run with the default --results leaves the committed result and git status untouched', async (t) => {
  const before = await fs.readFile(committed(), 'utf8');
  const out = await cli(runArgs(), tmp);
  t.is(out.code, 0, out.stderr);
  t.regex(out.stdout, /result: results-local\/mini-imagenet\/ref\/result\.json/);
  t.true(await exists(path.join(tmp, 'results-local', 'mini-imagenet', 'ref', 'per-episode.csv')));
  t.is(await fs.readFile(committed(), 'utf8'), before);
  t.is(git(tmp, 'status', '--porcelain', '--untracked-files=no'), '');
});

test.serial('run aimed at a committed result refuses before any work, and replace it only with --replace-committed', async (t) => {
  const before = await fs.readFile(committed(), 'utf8');
  const refused = await cli([...runArgs(), '--results', 'results', '--runs', 'runs-b'], tmp);
  t.is(refused.code, 2, refused.stderr);
  t.regex(refused.stderr, /error: results\/mini-imagenet\/ref is a committed reference result \(its result\.json is tracked by git\)/);
  t.regex(refused.stderr, /fix: .*--results <dir>.*results-local.*--replace-committed/);
  t.notRegex(refused.stderr, /train: /); // refused before the first training episode
  t.is(await fs.readFile(committed(), 'utf8'), before);

  const replaced = await cli([...runArgs(), '--results', 'results', '--runs', 'runs-b', '--replace-committed'], tmp);
  t.is(replaced.code, 0, replaced.stderr);
  t.not(await fs.readFile(committed(), 'utf8'), before);
  t.regex(git(tmp, 'status', '--porcelain', '--untracked-files=no'), /M results\/mini-imagenet\/ref\/result\.json/);
});
