import test from 'ava';
import { spawn } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { buildFixture, REPO_ROOT, type Fixture, writeClassFolders } from './fixtures/mini-imagenet.ts';
import { reproduceFlags, tinyCell, tinyTable, TINY_CI_BUDGET, writeTables } from './fixtures/tables.ts';
import { prepareCliFixture, runCliOneThread as runCli, tinyTrainingArgs } from './fixtures/run-cli.ts';
import { prepareCache } from '../src/experiment/index.ts';
import { loadSplitFilenames, readCacheManifest } from '../src/data/index.ts';
import '../src/builtin.ts';

/**
 * What killed or concurrent writers leave behind (issue 26 #12, #13 and the prepare lock), by fault injection
 * on real subprocesses: a `folder` prepare SIGKILLed before its swap leaves its temp folder, which the next
 * prepare removes; a table write killed before its swap likewise; a result write killed after its commit point
 * leaves a journal that the next `eval` rolls forward. Two prepares of one cache run one after the other, the
 * second reusing the first's cache. Class folders may be symbolic links.
 */

let fx: Fixture;
let root: string;
const SIZE = '16';

test.before(async () => {
  fx = await buildFixture(6);
  // root/<split>/<class>/<file>.jpg from the fixture's real images
  root = await writeClassFolders(fx, path.join(fx.root, 'ds'));
});
test.after.always(async () => fx?.cleanup());

const folderArgs = (cache: string) => ['--dataset', 'folder', '--data', root, '--dataset-option', 'split=folders', '--image-size', SIZE, '--cache', cache];
const tempsOf = async (dir: string, base: string) =>
  (await fs.readdir(dir)).filter((n) => n.startsWith(`.${base}.`) && /\.[0-9a-f]{12}\.(tmp|ready|lnk)$/.test(n));
const age = async (p: string, hours: number) => {
  const then = new Date(Date.now() - hours * 3600 * 1000);
  await fs.utimes(p, then, then);
};

test.serial('folder prepare killed before its swap: the next prepare removes the stale temp folder (the cache writer recovers)', async (t) => {
  const parent = path.join(fx.root, 'kill-prepare');
  const cache = path.join(parent, 'cache');
  const killed = await runCli(['data', 'prepare', ...folderArgs(cache)], { FEWSHOT_CRASH_AT: 'prepare:built' });
  t.is(killed.signal, 'SIGKILL', killed.stderr.slice(-400));
  const left = await tempsOf(parent, 'cache');
  t.is(left.length, 1, `a killed prepare leaves its complete temp folder: ${left}`);
  // an hour later (no prepare can still own it) the next prepare removes it
  await age(path.join(parent, left[0]), 2);
  const again = await runCli(['data', 'prepare', ...folderArgs(cache)]);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(await tempsOf(parent, 'cache'), []);
  t.deepEqual((await fs.readdir(parent)).sort(), ['.cache.v1', 'cache']);
});

test.serial('two prepares of one cache: the second waits for the first and reuses its cache (one decode, one version)', async (t) => {
  const parent = path.join(fx.root, 'two-prepares');
  const cache = path.join(parent, 'cache');
  const start = (env: Record<string, string>) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'cli', 'main.ts'), 'data', 'prepare', ...folderArgs(cache)], {
      cwd: REPO_ROOT,
      env: { ...process.env, FEWSHOT_WASM_THREADS: '1', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    return { child, done, stderr: () => stderr };
  };
  const until = async (what: string, ok: () => boolean | Promise<boolean>) => {
    const end = Date.now() + 120_000;
    while (!(await ok())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  // The first stops itself (SIGSTOP) with its cache built but not yet swapped in, holding the lock.
  const first = start({ FEWSHOT_CRASH_AT: 'prepare:built@SIGSTOP' });
  let second: ReturnType<typeof start> | undefined;
  t.teardown(() => {
    // nothing left running or stopped whatever failed (kill is a no-op on an exited child)
    first.child.kill('SIGKILL');
    second?.child.kill('SIGKILL');
  });
  const stopped = () => {
    try {
      return readFileSync(`/proc/${first.child.pid}/stat`, 'utf8').split(') ')[1]?.startsWith('T') ?? false;
    } catch {
      return false;
    }
  };
  await until('the first prepare to stop at prepare:built', stopped);
  second = start({});
  const waiting = second;
  try {
    await until('the second prepare to wait', () => /waiting for process \d+/.test(waiting.stderr()));
  } finally {
    first.child.kill('SIGCONT');
  }
  t.is(await first.done, 0, first.stderr());
  t.is(await waiting.done, 0, waiting.stderr());
  t.regex(waiting.stderr(), new RegExp(`waiting for process ${first.child.pid} \\(fewshot data prepare`));
  // one build: the second decoded nothing and swapped in no version of its own
  t.notRegex(waiting.stderr(), /decode/);
  t.deepEqual((await fs.readdir(parent)).sort(), ['.cache.v1', 'cache']);
  t.is(await fs.readlink(cache), '.cache.v1');
});

test.serial('a class folder that is a symbolic link is read as a class folder: the same cache as copied folders', async (t) => {
  // ds-linked/{train,val,test}/<class> are links to the class folders of ds/ (linked train/ itself too)
  const linked = path.join(fx.root, 'ds-linked');
  for (const split of ['val', 'test'] as const) {
    await fs.mkdir(path.join(linked, split), { recursive: true });
    for (const label of new Set(fx.rows[split].map((r) => r.label))) await fs.symlink(path.join(root, split, label), path.join(linked, split, label));
  }
  await fs.mkdir(path.join(linked, 'train'));
  for (const label of new Set(fx.rows.train.map((r) => r.label)))
    await fs.symlink(path.relative(path.join(linked, 'train'), path.join(root, 'train', label)), path.join(linked, 'train', label));
  const opts = (r: string) => ({ dataset: 'folder', datasetOptions: { root: r, split: 'folders', name: 'same' } });
  const viaLinks = await prepareCache({ ...opts(linked), cache: path.join(fx.root, 'cache-linked') }, 16);
  const viaCopies = await prepareCache({ ...opts(root), cache: path.join(fx.root, 'cache-copied') }, 16);
  t.is(viaLinks.manifest.cacheFingerprint, viaCopies.manifest.cacheFingerprint);
  t.deepEqual(viaLinks.manifest.splits.val.classes, [...new Set(fx.rows.val.map((r) => r.label))].sort());
});

test.serial('the items file is read with a CSV parser: an id holding a comma or a quote comes back as it is', async (t) => {
  const odd = path.join(fx.root, 'ds-odd');
  await fs.cp(root, odd, { recursive: true });
  const cls = path.join(odd, 'train', fx.rows.train[0].label);
  const [a, b] = (await fs.readdir(cls)).sort();
  await fs.rename(path.join(cls, a), path.join(cls, 'with,comma.jpg'));
  await fs.rename(path.join(cls, b), path.join(cls, 'with "quote".jpg'));
  const cache = path.join(fx.root, 'cache-odd');
  await prepareCache({ dataset: 'folder', datasetOptions: { root: odd, split: 'folders' }, cache }, 16);
  const names = await loadSplitFilenames(cache, 'train');
  const manifest = await readCacheManifest(cache);
  t.is(names.length, manifest.splits.train.numItems);
  t.true(names.includes(`train/${fx.rows.train[0].label}/with,comma.jpg`), names.slice(0, 8).join(' | '));
  t.true(names.includes(`train/${fx.rows.train[0].label}/with "quote".jpg`), names.slice(0, 8).join(' | '));
});

test.serial('a result write killed after its commit point: the next eval rolls the journal forward (no .ready left)', async (t) => {
  const base = path.join(fx.root, 'journal');
  const cache = await prepareCliFixture({ folderDir: fx.folderDir, root: base }, SIZE, runCli, { count: 3 });
  const files = ['--test-file', path.join(base, 'test.json'), '--backend', 'wasm', '--data', fx.folderDir, '--cache', cache];
  const training = {
    command: 'run',
    method: 'protonet',
    size: SIZE,
    cache,
    root: base,
    runs: path.join(base, 'runs'),
    results: path.join(base, 'results'),
    episodes: 2,
  } as const;
  const train = await runCli([...tinyTrainingArgs(training), '--data', fx.folderDir]);
  t.is(train.code, 0, train.stderr);
  const evalArgs = ['eval', path.join(base, 'runs', 'r', 'last'), ...files, '--results', path.join(base, 'results-eval'), '--name', 'e'];
  const resultParent = path.join(base, 'results-eval', 'mini-imagenet');
  const resultDir = path.join(resultParent, 'e');
  const killed = await runCli(evalArgs, { FEWSHOT_CRASH_AT: 'result:committed' });
  t.is(killed.signal, 'SIGKILL', killed.stderr.slice(-400));
  const journals = (await tempsOf(resultParent, 'e')).filter((n) => n.endsWith('.ready'));
  t.is(journals.length, 1);
  const journaled = JSON.parse(await fs.readFile(path.join(resultParent, journals[0], 'result.json'), 'utf8'));
  // An older write of the same evaluation is in place (as when this write replaced it): the journal is newer.
  await fs.mkdir(resultDir, { recursive: true });
  await fs.copyFile(path.join(resultParent, journals[0], 'per-episode.csv'), path.join(resultDir, 'per-episode.csv'));
  await fs.writeFile(path.join(resultDir, 'result.json'), JSON.stringify({ ...journaled, createdAt: '2000-01-01T00:00:00.000Z' }, null, 2) + '\n');
  const again = await runCli(evalArgs);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(await tempsOf(resultParent, 'e'), [], 'the journal was rolled forward');
  const now = JSON.parse(await fs.readFile(path.join(resultDir, 'result.json'), 'utf8'));
  t.is(now.createdAt, journaled.createdAt, "the journal's (newer) result is the one in place");
});

/** `fewshot <args>` run from `cwd` (files a command makes in its working folder stay out of the repository). */
function cliIn(cwd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const tsx = pathToFileURL(path.join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
    const child = spawn(process.execPath, ['--import', tsx, path.join(REPO_ROOT, 'src', 'cli', 'main.ts'), ...args], {
      cwd,
      env: { ...process.env, FEWSHOT_WASM_THREADS: '1', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

test.serial('a table write killed before its swap: the next table write removes the stale temp folder', async (t) => {
  const work = path.join(fx.root, 'table-kill');
  const tables = path.join(work, 'tables');
  // 2 training episodes without validation and 2-query test episodes: the seconds a table needs
  const budget = { ...TINY_CI_BUDGET, seeds: 1, base: { ...TINY_CI_BUDGET.base, episodes: 2, validation: { every: 0, episodes: 2 } } };
  const table = { ...tinyTable('one cell', [tinyCell('plain', { test: { way: 2, shot: 1, query: 2 } })], []), budgets: { ci: budget } };
  await writeTables(tables, { tiny: table });
  const results = path.join(work, 'results');
  const flags = reproduceFlags({ tables, root, results, runs: path.join(work, 'runs'), cache: path.join(work, 'cache'), testEpisodes: 3 });
  const args = ['reproduce', 'tiny', ...flags];
  const killed = await cliIn(work, args, { FEWSHOT_CRASH_AT: 'table:built' });
  t.is(killed.signal, 'SIGKILL', killed.stderr.slice(-400));
  const tableParent = path.join(results, 'fixture', 'tiny');
  const left = await tempsOf(tableParent, 'ci');
  t.is(left.length, 1, `a killed table write leaves its temp folder: ${left}`);
  await age(path.join(tableParent, left[0]), 1);
  const again = await cliIn(work, [...args, '--table-only']);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(await tempsOf(tableParent, 'ci'), []);
  t.true((await fs.readFile(path.join(tableParent, 'ci', 'table.md'), 'utf8')).includes('ProtoNet'));
});
