import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
// Through the package name, as a script would: every command's work is one exported call.
import { compareResults, makeEpisodeFile, pairedDifference, readEpisodeFile, reproduceTable, silentReporter, UserError } from 'fewshot';
import { buildFixture, type Fixture, writeClassFolders } from './fixtures/mini-imagenet.ts';
import { tinyCell, tinyTable, TINY_CI_BUDGET, writeTables } from './fixtures/tables.ts';

/**
 * The commands' library calls, without the CLI: `reproduceTable` runs a tiny table in-process and writes it,
 * `compareResults` pairs two of its results, `makeEpisodeFile` samples a file from the cache the table prepared.
 * Checked against the files they write, not against themselves.
 */
let fx: Fixture;
let root: string;
let tables: string;

// One cell, the tiny tables' ci budget (2 seeds) with one validation at the end of the 3 training episodes.
const TABLE = {
  ...tinyTable('One ProtoNet cell, two seeds', [tinyCell('plain')], []),
  id: 'api',
  budgets: { ci: { ...TINY_CI_BUDGET, base: { ...TINY_CI_BUDGET.base, validation: { every: 3, episodes: 2 } } } },
};

test.before(async () => {
  fx = await buildFixture(8);
  root = await writeClassFolders(fx, path.join(fx.root, 'fixture'));
  tables = await writeTables(path.join(fx.root, 'tables'), { api: TABLE });
});

test.after.always(async () => {
  await fx?.cleanup();
});

test.serial('reproduceTable, compareResults and makeEpisodeFile from `import … from "fewshot"`', async (t) => {
  const results = path.join(fx.root, 'results');
  const cache = path.join(fx.root, 'cache16');
  const request = {
    table: 'api',
    tables,
    budget: 'ci',
    results,
    runs: path.join(fx.root, 'runs'),
    backend: 'wasm',
    data: { folder: root },
    cache,
    testEpisodes: 6,
    executor: 'in-process' as const,
  };
  const first = await reproduceTable(request, { reporter: silentReporter });
  t.deepEqual(
    first.states.map((s) => [s.run.key.replace(/_[0-9a-f]{8}\//, '/'), s.state]),
    [
      ['protonet_2w1s_ci/seed0', 'ran'],
      ['protonet_2w1s_ci/seed1', 'ran'],
    ],
  );
  t.is(first.incomplete, undefined);
  t.deepEqual(first.tables, [path.join(results, 'fixture', 'api', 'ci', 'table.md')]);
  t.regex(await fs.readFile(first.tables[0], 'utf8'), /ProtoNet/);
  // The same request again: both runs are recognised as done, nothing runs.
  const again = await reproduceTable(request, { reporter: silentReporter });
  t.deepEqual(
    again.states.map((s) => s.state),
    ['done', 'done'],
  );

  // The two seeds were scored on the same 6 test episodes: their paired difference, against the per-episode files.
  const [a, b] = first.states.map((s) => path.join(results, 'fixture', s.run.resultDir));
  const out = path.join(fx.root, 'comparison.json');
  const c = await compareResults({ a, b, out });
  const perEpisode = async (dir: string) =>
    Float64Array.from(
      (parse(await fs.readFile(path.join(dir, 'per-episode.csv'), 'utf8'), { columns: true }) as Record<string, string>[]).map((r) => Number(r.plain)),
    );
  const expected = pairedDifference(await perEpisode(a), await perEpisode(b));
  t.is(c.pairedDifference.n, 6);
  t.is(c.pairedDifference.mean, expected.mean);
  t.is(c.pairedDifference.ci95, expected.ci95);
  t.deepEqual(JSON.parse(await fs.readFile(out, 'utf8')), JSON.parse(JSON.stringify(c)));
  await t.throwsAsync(compareResults({ a, b, modeA: 'ag' }), { instanceOf: UserError, message: /has no inference mode "ag"/ });

  // An episode file from the cache reproduceTable prepared: the spec asked for, and the same bytes for the same seed.
  const ask = { split: 'test', way: 2, shot: 1, query: 3, count: 4, seed: 7, imageSize: 16, dataset: 'folder', data: root, cache };
  const made = await makeEpisodeFile({ ...ask, out: path.join(fx.root, 'e1.json') });
  const remade = await makeEpisodeFile({ ...ask, out: path.join(fx.root, 'e2.json') });
  t.is(await fs.readFile(made.out, 'utf8'), await fs.readFile(remade.out, 'utf8'));
  const loaded = await readEpisodeFile(made.out);
  t.like(loaded.header, { spec: { way: 2, shot: 1, query: 3 }, seed: 7, split: 'test', count: 4 });
  t.is(loaded.episodes.length, 4);
  await t.throwsAsync(makeEpisodeFile({ ...ask, split: 'dev' }), { instanceOf: UserError, message: /unknown split "dev"/ });
});
