import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { buildFixture, type Fixture } from './fixtures/mini-imagenet.ts';
import { prepareCliFixture, runCliOneThread as runCli, tinyTrainingArgs } from './fixtures/run-cli.ts';
import { exists, runSnapshot } from './fixtures/fs.ts';

/**
 * Crash-safety by fault injection, not timing luck: every named crash point inside the writers
 * (checkpoint save, the directory swap steps, the train log, result writes, cache prepare; see
 * src/util/fault.ts) is hit in turn with FEWSHOT_CRASH_AT=<point>:<nth>, where the process SIGKILLs
 * itself. The same command is then run again and must finish with weights, train log and per-episode
 * results byte-identical to an uninterrupted run (and a cache with identical pixels and fingerprint).
 */
let fx: Fixture;
const SIZE = '16';

test.before(async () => {
  fx = await buildFixture(12);
});
test.after.always(async () => {
  await fx?.cleanup();
});

function crashPointsOf(stderr: string): Record<string, number> {
  const m = /crash-points: (\{.*\})/.exec(stderr);
  if (!m) throw new Error(`no crash-point list in: ${stderr.slice(-500)}`);
  return JSON.parse(m[1]);
}

/**
 * The crash points a command passes: the writers' points at their first and last hit (the first
 * checkpoint save of a run and a save over an existing one), the once-per-episode points in the
 * middle of the run (time-bounded: each target costs two CLI runs).
 */
function targets(points: Record<string, number>, prefixes: string[]): string[] {
  return Object.entries(points)
    .filter(([p]) => prefixes.some((x) => p.startsWith(x)))
    .flatMap(([p, n]) => (n === 1 ? [`${p}:1`] : /^(train|train-log):/.test(p) ? [`${p}:${Math.ceil(n / 2)}`] : [`${p}:1`, `${p}:${n}`]));
}

async function snapshotRun(root: string) {
  const run = path.join(root, 'runs', 'r');
  const res = path.join(root, 'results', 'mini-imagenet', 'r');
  const result = JSON.parse(await fs.readFile(path.join(res, 'result.json'), 'utf8'));
  const leftovers = (await fs.readdir(run)).filter((n) => /\.(tmp|lnk|ready|stale)$/.test(n) || n === '.lock');
  return {
    ...(await runSnapshot(run)),
    perEpisode: await fs.readFile(path.join(res, 'per-episode.csv'), 'utf8'),
    summary: result.summary,
    leftovers,
  };
}

test.serial('training + result writes: a kill at every crash point resumes byte-identical', async (t) => {
  const t0 = performance.now();
  const cache = await prepareCliFixture(fx, SIZE, runCli);
  const args = (root: string) =>
    tinyTrainingArgs({
      command: 'run',
      method: 'protonet',
      size: SIZE,
      cache,
      root: fx.root,
      runs: path.join(root, 'runs'),
      results: path.join(root, 'results'),
      episodes: 4,
    });
  const baseRoot = path.join(fx.root, 'baseline');
  const base = await runCli(args(baseRoot), { FEWSHOT_CRASH_LIST: '1' });
  t.is(base.code, 0, base.stderr);
  const expected = await snapshotRun(baseRoot);
  t.deepEqual(expected.leftovers, []);
  const points = targets(crashPointsOf(base.stderr), ['checkpoint:', 'result:', 'train-log:', 'train:']);
  t.true(points.length >= 12, points.join(' '));

  for (const point of points) {
    const root = path.join(fx.root, `crash-${point.replace(/[^A-Za-z0-9]+/g, '_')}`);
    const crashed = await runCli(args(root), { FEWSHOT_CRASH_AT: point });
    t.is(crashed.signal, 'SIGKILL', `${point} did not crash: ${crashed.stderr.slice(-300)}`);
    const resumed = await runCli(args(root));
    t.is(resumed.code, 0, `${point}: ${resumed.stderr}`);
    t.deepEqual(await snapshotRun(root), expected, `after a crash at ${point}`);
  }
  const line = `training/result crash points exercised: ${points.length}; all resumed byte-identical (${((performance.now() - t0) / 1000).toFixed(1)} s)`;
  t.log(line);
  console.log(line);
});

test.serial('data prepare: a kill at every crash point, then prepare again, gives the identical cache', async (t) => {
  const t0 = performance.now();
  const prepare = (cache: string, env: Record<string, string> = {}) =>
    runCli(['data', 'prepare', '--data', fx.folderDir, '--image-size', SIZE, '--cache', cache], env);
  const baseCache = path.join(fx.root, 'prep-base', 'cache');
  const base = await prepare(baseCache, { FEWSHOT_CRASH_LIST: '1' });
  t.is(base.code, 0, base.stderr);
  const manifest = async (c: string) => JSON.parse(await fs.readFile(path.join(c, 'manifest.json'), 'utf8'));
  const pixels = async (c: string) => Promise.all(['train', 'val', 'test'].map(async (s) => (await fs.readFile(path.join(c, `${s}.u8`))).toString('base64')));
  const expected = { fingerprint: (await manifest(baseCache)).cacheFingerprint, pixels: await pixels(baseCache) };
  const points = targets(crashPointsOf(base.stderr), ['prepare:']);
  t.true(points.length >= 5, points.join(' '));
  for (const point of points) {
    const cache = path.join(fx.root, `prep-${point.replace(/[^A-Za-z0-9]+/g, '_')}`, 'cache');
    // A complete older cache is in place first, so the crash hits a replace, not only a first build.
    t.is((await prepare(cache)).code, 0);
    const crashed = await prepare(cache, { FEWSHOT_CRASH_AT: point });
    t.is(crashed.signal, 'SIGKILL', `${point} did not crash`);
    t.true(await exists(path.join(cache, 'manifest.json')), `no complete cache after a crash at ${point}`);
    t.is((await prepare(cache)).code, 0);
    t.deepEqual({ fingerprint: (await manifest(cache)).cacheFingerprint, pixels: await pixels(cache) }, expected, `after a crash at ${point}`);
  }
  const line = `data prepare crash points exercised: ${points.length}; all resumed byte-identical (${((performance.now() - t0) / 1000).toFixed(1)} s)`;
  t.log(line);
  console.log(line);
});
