import test from 'ava';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { buildFixture, REPO_ROOT, type Fixture, writeClassFolders } from './fixtures/mini-imagenet.ts';
import { reproduceFlags, tinyCell, tinySlaCell, tinyTable, writeTables } from './fixtures/tables.ts';
import { QUEUE_TESTS_SKIPPED, queueTitle, startRedis, type LocalRedis } from './fixtures/redis.ts';
import { readResult } from '../src/reports/results.ts';
import { pairedDifference, meanCI } from '../src/eval/stats.ts';

/**
 * `fewshot reproduce` end to end on a tiny table of real mini-ImageNet classes (as a `folder` dataset): once
 * in-process, once through a BullMQ queue on a real local redis-server with two workers. Both must give
 * byte-identical per-episode results, the table's paired differences must equal those recomputed from the
 * per-episode files, and the failure paths (unreachable queue, a different run in the results folder, a worker
 * killed mid-run) must end cleanly.
 */
interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}
const BIN = path.join(REPO_ROOT, 'bin', 'fewshot.js');

function cli(args: string[], timeout = 240_000, env: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, timeout, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (((err as { code?: number }).code as number) ?? 1) : 0, stdout, stderr });
    });
  });
}

// Without a redis-server binary the queue tests are skipped (fixtures/redis.ts), except under CI.
const queueTest = QUEUE_TESTS_SKIPPED ? test.serial.skip : test.serial;

let fx: Fixture;
let root: string;
let tables: string;
let redis: LocalRedis | undefined;
let port = 0;
const children: ChildProcess[] = [];

const TABLE = tinyTable(
  'Tiny SLA table on four real mini-ImageNet classes',
  [
    tinyCell('plain', { published: [{ mean: 60, ci95: 1, source: 'made up for the test' }] }),
    tinySlaCell('ag', { published: [{ mean: 65, source: 'made up for the test' }] }),
    tinySlaCell('si'),
    tinyCell('cifar', { column: 'CIFAR-FS', dataset: 'no-such-dataset' }),
  ],
  [
    { id: 'ag-vs-plain', a: 'sla-ag', b: 'plain' },
    { id: 'si-vs-plain', a: 'sla-si', b: 'plain' },
  ],
);

const common = (results: string) =>
  reproduceFlags({ tables, root, results, runs: path.join(fx.root, `runs-${path.basename(results)}`), cache: path.join(fx.root, 'cache16') });

test.before(async () => {
  fx = await buildFixture(8);
  root = await writeClassFolders(fx, path.join(fx.root, 'fixture'));
  tables = await writeTables(path.join(fx.root, 'tables'), { tiny: TABLE });
  redis = await startRedis(fx.root);
  port = redis?.port ?? 0;
});

test.after.always(async () => {
  for (const c of children) c.kill('SIGKILL');
  redis?.process.kill('SIGKILL');
  await fx?.cleanup();
});

async function perEpisodeFiles(results: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const base = path.join(results, 'fixture', 'cells');
  for (const name of await fs.readdir(base)) {
    for (const seed of await fs.readdir(path.join(base, name)))
      out.set(`${name}/${seed}`, await fs.readFile(path.join(base, name, seed, 'per-episode.csv'), 'utf8'));
  }
  return out;
}

function startWorker(results: string, extra: string[] = []): ChildProcess & { log: string[] } {
  const w = spawn(
    process.execPath,
    [
      BIN,
      'worker',
      '--queue',
      `redis://127.0.0.1:${port}`,
      ...common(results).filter((a, i, all) => all[i - 1] !== '--budget' && a !== '--budget'),
      '--lock-ms',
      '3000',
      '--stalled-ms',
      '1000',
      ...extra,
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  ) as ChildProcess & { log: string[] };
  w.log = [];
  w.stderr!.on('data', (d: Buffer) => w.log.push(d.toString()));
  children.push(w);
  return w;
}

/** The in-process run's per-episode results and table folder, which the queued and side-by-side runs must match. */
let inProcessResults: Map<string, string>;
let inProcessTable: string;

test.serial(
  'in-process runs give the per-episode results the table pairs; rerun, nothing runs again; side by side (--jobs 2) gives identical results',
  async (t) => {
    const inProcess = path.join(fx.root, 'results-inproc');
    const a = await cli(['reproduce', 'tiny', ...common(inProcess), '--jobs', '1']); // in this process, one run after the other
    // The cell on an unknown dataset fails (named, with its fix) but the rest of the table is written.
    t.is(a.code, 2, a.stderr);
    t.regex(a.stderr, /no-such-dataset/);
    t.regex(a.stdout, /table: .*fixture\/tiny\/ci\/table\.md/);
    const dir = path.join(inProcess, 'fixture', 'tiny', 'ci');
    const md = await fs.readFile(path.join(dir, 'table.md'), 'utf8');
    t.regex(md, /\| ProtoNet \+ SLA\+AG \[ag\] — 2-way 1-shot \| folder \| 65\.00 \|/);
    for (const f of [
      'figures/forest.svg',
      'figures/accuracy-by-shot.svg',
      'figures/training-curves.svg',
      'figures/forest.vl.json',
      'cells.csv',
      'comparisons.csv',
      'reproduce.json',
    ]) {
      t.true((await fs.stat(path.join(dir, f))).size > 0, f);
    }
    const results = await perEpisodeFiles(inProcess);
    t.is(results.size, 4, 'protonet and protonet-sla × 2 seeds; AG and SI share the SLA runs');

    // The table's numbers against the per-episode files themselves.
    const cells = parse(await fs.readFile(path.join(dir, 'cells.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    const cmps = parse(await fs.readFile(path.join(dir, 'comparisons.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    const load = async (cell: string, seed: number, mode: string) => {
      const row = cells.find((r) => r.cell === cell && Number(r.seed) === seed)!;
      const res = await readResult(path.join(inProcess, row.result));
      return res.perEpisode[mode];
    };
    for (const seed of [0, 1]) {
      const ag = await load('sla-ag', seed, 'ag');
      const plain = await load('plain', seed, 'plain');
      t.is(ag.length, 6);
      const d = pairedDifference(ag, plain);
      const row = cmps.find((r) => r.comparison === 'ag-vs-plain' && Number(r.seed) === seed)!;
      t.is(Number(row.difference), Number((d.mean * 100).toFixed(4)));
      t.is(Number(row.ci95), Number((d.ci95 * 100).toFixed(4)));
      const cellRow = cells.find((r) => r.cell === 'plain' && Number(r.seed) === seed)!;
      t.is(Number(cellRow.mean), Number((meanCI(plain).mean * 100).toFixed(4)));
    }

    // Again: everything is recognised as done, nothing re-runs; --only limits what runs, not what the table shows
    // (the SLA+SI cell and its comparison stay in the rewritten table).
    const cellsBefore = await fs.readFile(path.join(dir, 'cells.csv'), 'utf8');
    const comparisonsBefore = await fs.readFile(path.join(dir, 'comparisons.csv'), 'utf8');
    const again = await cli(['reproduce', 'tiny', ...common(inProcess), '--only', 'plain', 'sla-ag', '--jobs', '1']);
    t.is(again.code, 0, again.stderr);
    t.regex(again.stderr, /\[1\/4\] .*: done/);
    t.notRegex(again.stderr, /training protonet/);
    t.is(await fs.readFile(path.join(dir, 'cells.csv'), 'utf8'), cellsBefore);
    t.is(await fs.readFile(path.join(dir, 'comparisons.csv'), 'utf8'), comparisonsBefore);
    t.regex(await fs.readFile(path.join(dir, 'table.md'), 'utf8'), /ProtoNet \+ SLA\+SI/);
    inProcessResults = results;
    inProcessTable = dir;

    // Side by side on this machine: two runs at a time, each in its own process with one wasm thread.
    const sideBySide = path.join(fx.root, 'results-jobs');
    // A cache not made yet: prepared once by the reproducer before the two runs start, not by both at once.
    const freshCache = common(sideBySide).map((a) => (a === path.join(fx.root, 'cache16') ? path.join(fx.root, 'cache16-jobs') : a));
    const c = await cli(['reproduce', 'tiny', ...freshCache, '--only', 'plain', 'sla-ag', '--jobs', '2'], 300_000);
    t.is(c.code, 0, c.stderr);
    t.regex(c.stderr, /2 runs side by side, each in its own process with \d+ wasm thread/);
    t.is(c.stderr.match(/preparing fixture/g)?.length, 1, c.stderr);
    t.regex(c.stderr, /^preparing fixture/m, 'prepared by the reproducer itself, before any run');
    t.regex(c.stderr, /^\[protonet[^\]]*\/seed\d\] /m, 'each child line names its run');
    const viaJobs = await perEpisodeFiles(sideBySide);
    t.deepEqual([...viaJobs.keys()].sort(), [...results.keys()].sort());
    for (const [k, v] of results) t.is(viaJobs.get(k), v, `${k}: per-episode results identical with --jobs 2`);
    t.is(
      await fs.readFile(path.join(sideBySide, 'fixture', 'tiny', 'ci', 'comparisons.csv'), 'utf8'),
      await fs.readFile(path.join(dir, 'comparisons.csv'), 'utf8'),
    );
  },
);

queueTest(queueTitle('through a BullMQ queue with two workers: per-episode results identical to in-process, each run exactly once'), async (t) => {
  t.truthy(inProcessResults, 'needs the in-process test before it');
  const results = inProcessResults;
  const dir = inProcessTable;
  const queued = path.join(fx.root, 'results-queue');
  const w1 = startWorker(queued, ['--queue-name', 'two-workers']);
  const w2 = startWorker(queued, ['--queue-name', 'two-workers']);
  const b = await cli(
    ['reproduce', 'tiny', ...common(queued), '--queue', `redis://127.0.0.1:${port}`, '--queue-name', 'two-workers', '--only', 'plain', 'sla-ag'],
    300_000,
  );
  t.is(b.code, 0, b.stderr + w1.log.join('') + w2.log.join(''));
  const viaQueue = await perEpisodeFiles(queued);
  t.deepEqual([...viaQueue.keys()].sort(), [...results.keys()].sort());
  for (const [k, v] of results) t.is(viaQueue.get(k), v, `${k}: per-episode results identical in-process and through the queue`);
  const worked = [w1, w2].filter((w) => w.log.join('').includes('worker: finished'));
  t.true(worked.length >= 1);
  const finished = [w1, w2].flatMap((w) => w.log.join('').match(/worker: finished \S+/g) ?? []);
  t.is(finished.length, 4, `each run ran exactly once: ${finished.join(', ')}`);
  const tableQ = await fs.readFile(path.join(queued, 'fixture', 'tiny', 'ci', 'comparisons.csv'), 'utf8');
  t.is(tableQ, await fs.readFile(path.join(dir, 'comparisons.csv'), 'utf8').then((s) => s));
  w1.kill('SIGTERM');
  w2.kill('SIGTERM');
});

test.serial('a run stopped mid-training shows in the table and the dry run as in progress, with its curve so far; resuming finishes it exactly', async (t) => {
  const results = path.join(fx.root, 'results-partial');
  const one = [...common(results), '--seeds', '1', '--jobs', '1'];
  // Killed right after episode 2 of 3, whose checkpoint (every 2 episodes here) is complete.
  const killed = await cli(['reproduce', 'tiny', ...one, '--only', 'plain'], 240_000, { FEWSHOT_CRASH_AT: 'train:episode-done:2' });
  t.not(killed.code, 0, killed.stderr);
  const dry = await cli(['reproduce', 'tiny', ...one, '--only', 'plain', '--dry-run']);
  t.is(dry.code, 0, dry.stderr);
  t.regex(
    dry.stdout,
    /protonet_\S+\/seed0 {2}\[plain\] {2}in progress: 2 of 3 training episodes at the last checkpoint; best validation so far \d+\.\d\d ± \d+\.\d\d \(2 val episodes, plain\) at episode 2, to resume ≈/,
  );
  // --table-only runs nothing and writes the table from the folders: the run is in progress at episode 2.
  const tableOnly = await cli(['reproduce', 'tiny', ...one, '--table-only']);
  t.is(tableOnly.code, 0, tableOnly.stderr);
  t.notRegex(tableOnly.stderr, /training protonet/);
  const dir = path.join(results, 'fixture', 'tiny', 'ci');
  const manifest = JSON.parse(await fs.readFile(path.join(dir, 'reproduce.json'), 'utf8')) as {
    runs: { key: string; state: string; episode?: number; episodes?: number }[];
  };
  t.like(
    manifest.runs.find((r) => r.key.startsWith('protonet_')),
    { state: 'in progress', episode: 2, episodes: 3 },
  );
  t.like(
    manifest.runs.find((r) => r.key.startsWith('protonet-sla_')),
    { state: 'not run' },
  );
  // Another cell runs; the table shows the unfinished one as in progress, and its curve up to the checkpoint.
  const other = await cli(['reproduce', 'tiny', ...one, '--only', 'sla-ag']);
  t.is(other.code, 0, other.stderr);
  // Made by today's engine: plainly done. The same result without an engine revision (as every result written
  // before revisions were recorded): done, marked older with the commit that made it; the table is unchanged.
  const slaDone = await cli(['reproduce', 'tiny', ...one, '--only', 'sla-ag', '--dry-run']);
  t.regex(slaDone.stdout, /^protonet-sla_\S+\/seed0 {2}\[[^\]]*\] {2}done$/m);
  const tableBefore = await fs.readFile(path.join(dir, 'table.md'), 'utf8');
  const slaRun = (await fs.readdir(path.join(results, 'fixture', 'cells'))).find((d) => d.startsWith('protonet-sla_'))!;
  const slaResult = path.join(results, 'fixture', 'cells', slaRun, 'seed0', 'result.json');
  const record = JSON.parse(await fs.readFile(slaResult, 'utf8')) as { software: Record<string, string> };
  delete record.software.engineRevision;
  await fs.writeFile(slaResult, JSON.stringify(record, null, 2) + '\n');
  const slaOlder = await cli(['reproduce', 'tiny', ...one, '--only', 'sla-ag', '--dry-run']);
  t.regex(
    slaOlder.stdout,
    new RegExp(
      `^protonet-sla_\\S+/seed0 {2}\\[[^\\]]*\\] {2}done \\(older engine: made at commit ${record.software.commit.replace('+', '\\+')}, engine revision not recorded, now \\d+; a rerun may not match it exactly\\)$`,
      'm',
    ),
  );
  t.is((await cli(['reproduce', 'tiny', ...one, '--table-only'])).code, 0);
  t.is(await fs.readFile(path.join(dir, 'table.md'), 'utf8'), tableBefore);
  t.regex(
    await fs.readFile(path.join(dir, 'table.md'), 'utf8'),
    /\| ProtoNet \[plain\] — 2-way 1-shot \| folder \| 60\.00 ± 1\.00 \| seed 0: in progress: 2 of 3 training episodes at the last checkpoint; best validation so far [^|]*\|[^\n]*\| in progress \|\n/,
  );
  const curves = JSON.parse(await fs.readFile(path.join(dir, 'figures', 'training-curves.vl.json'), 'utf8')) as {
    data: { values: { cell: string; episode: number; kind: string }[] };
  };
  const partial = curves.data.values.filter((v) => v.cell === 'protonet 2w1s (in progress)');
  t.deepEqual(
    partial.filter((v) => v.kind.startsWith('validation')).map((v) => v.episode),
    [2],
  );
  t.true(partial.every((v) => v.episode <= 2));
  // Resumed to the end: the same per-episode results as an uninterrupted run.
  const whole = path.join(fx.root, 'results-uninterrupted');
  const straight = await cli(['reproduce', 'tiny', ...common(whole), '--seeds', '1', '--jobs', '1', '--only', 'plain']);
  t.is(straight.code, 0, straight.stderr);
  // Asked for two lanes with one run left: it runs alone, with every thread.
  const resumed = await cli(['reproduce', 'tiny', ...common(results), '--seeds', '1', '--jobs', '2', '--only', 'plain']);
  t.is(resumed.code, 0, resumed.stderr);
  t.regex(resumed.stderr, /one run to do: running it in this process with every thread/);
  t.regex(resumed.stderr, /resuming at episode 2 of 3 from the last checkpoint/);
  t.regex(resumed.stderr, /resumed from episode 2/);
  const name = (await fs.readdir(path.join(results, 'fixture', 'cells'))).find((n) => n.startsWith('protonet_'))!;
  const file = (root: string) => fs.readFile(path.join(root, 'fixture', 'cells', name, 'seed0', 'per-episode.csv'), 'utf8');
  t.is(await file(results), await file(whole));
  t.notRegex(await fs.readFile(path.join(dir, 'table.md'), 'utf8'), /in progress/);
});

test.serial(
  'dry run: runs whose data is missing are counted apart with the reproduce --data spelling; equal episode shapes get one measured estimate; --json is the same plan',
  async (t) => {
    // Four cells: ProtoNet 2-way 1-shot on the fixture folder and on CIFAR-FS (an archive "given": the dry run only
    // checks it is there), MetaOptNet-SVM on the folder with 3-shot training episodes, and ProtoNet on FC100,
    // whose archive is not given (and not found: $FEWSHOT_CIFAR100 names no file).
    const shapes = {
      ...TABLE,
      id: 'shapes',
      budgets: { ci: { ...TABLE.budgets.ci, base: { ...TABLE.budgets.ci.base, datasetOptions: undefined } } },
      cells: [
        tinyCell('folder', { column: 'folder', config: { datasetOptions: { name: 'fixture', normalization: 'imagenet' } } }),
        tinyCell('svm', {
          row: 'SVM',
          column: 'folder',
          method: 'metaoptnet-svm',
          train: { shot: 3 },
          config: { datasetOptions: { name: 'fixture', normalization: 'imagenet' } },
        }),
        tinyCell('cifar', { column: 'CIFAR-FS', dataset: 'cifar-fs' }),
        tinyCell('fc100', { column: 'FC100', dataset: 'fc100' }),
      ],
      comparisons: [],
    };
    await fs.writeFile(path.join(tables, 'shapes.json'), JSON.stringify(shapes, null, 1));
    const archive = path.join(fx.root, 'cifar-100-python.tar.gz');
    await fs.writeFile(archive, 'not read by a dry run');
    const env = { FEWSHOT_CIFAR100: path.join(fx.root, 'no-such-archive.tar.gz') };
    // Where the shapes table's runs and results go (the dry run and the real run alike), on wasm.
    const shapesFlags = [
      '--tables',
      tables,
      '--budget',
      'ci',
      '--backend',
      'wasm',
      '--results',
      path.join(fx.root, 'results-shapes'),
      '--runs',
      path.join(fx.root, 'runs-shapes'),
    ];
    const data = ['--data', `folder=${root}`, '--data', `cifar-fs=${archive}`, '--cache', path.join(fx.root, 'cache16')];
    const args = ['reproduce', 'shapes', ...shapesFlags, ...data, '--test-episodes', '6', '--dry-run'];
    const json = await cli([...args, '--json'], 240_000, env);
    t.is(json.code, 0, json.stderr);
    const dry = JSON.parse(json.stdout) as {
      format: string;
      runs: {
        key: string;
        dataset: string;
        state: string;
        fix?: string;
        shape: { train: string; test: string };
        estimate?: { trainMsPerEpisode: number; evalMsPerEpisode: number; seconds: number };
      }[];
      summary: Record<string, unknown>;
    };
    t.is(dry.format, 'fewshot-reproduce-dry-run/1');
    t.deepEqual(dry.summary.noData, { fc100: 2 });
    t.like(dry.summary, { runs: 8, done: 0, toRun: 6, inProgress: 0, refused: 0, probes: 2 });
    const of = (dataset: string, method: string) => dry.runs.filter((r) => r.dataset === dataset && r.key.startsWith(`${method}_`));
    for (const r of of('fc100', 'protonet')) {
      t.is(r.state, 'no data');
      t.is(r.estimate, undefined, 'a run that cannot start costs nothing');
      t.regex(r.fix!, /--data fc100=<file\.tar\.gz>/);
      t.notRegex(r.fix!, /--data </);
    }
    // ProtoNet on the folder and on CIFAR-FS: one shape, one measurement, one estimate.
    const protonet = [...of('folder', 'protonet'), ...of('cifar-fs', 'protonet')];
    t.is(protonet.length, 4);
    for (const r of protonet)
      t.deepEqual(
        { state: r.state, shape: r.shape, estimate: r.estimate },
        { state: 'to run', shape: { train: '2w1s3q', test: '2w1s3q' }, estimate: protonet[0].estimate },
      );
    const svm = of('folder', 'metaoptnet-svm');
    t.deepEqual(
      svm.map((r) => r.shape.train),
      ['2w3s3q', '2w3s3q'],
    );
    t.deepEqual(svm[0].estimate, svm[1].estimate);
    const text = await cli(args, 240_000, env);
    t.is(text.code, 0, text.stderr);
    t.regex(text.stdout, /^protonet_2w1s_ci_[0-9a-f]{8}\/seed0 {2}\[fc100\] {2}cannot start: no fc100 data given \(see below\)$/m);
    t.regex(text.stdout, /^metaoptnet-svm_\S+\/seed0 {2}\[svm\] {2}to run ≈ \S+ \S+ \(train 2w3s3q: \d+ ms\/episode, eval 2w1s3q: \d+ ms\/episode\)$/m);
    t.regex(text.stdout, /^8 runs: 0 done, 0 in progress, 6 to run, 2 cannot start without data \(fc100: 2\)$/m);
    t.regex(
      text.stdout,
      /^2 fc100 runs cannot start: no fc100 data: no CIFAR-100 archive at \S+no-such-archive\.tar\.gz\n {2}fix: .*--data fc100=<file\.tar\.gz>/m,
    );
    // Run for real, the FC100 run fails with the same spelling (before any training); the listing is JSON too.
    const real = await cli(['reproduce', 'shapes', ...shapesFlags, '--only', 'fc100', '--seeds', '1', '--json'], 240_000, env);
    t.is(real.code, 2, real.stderr);
    t.regex(real.stderr, /no fc100 data: no CIFAR-100 archive at .*--data fc100=<file\.tar\.gz>/);
    t.like(JSON.parse(real.stdout), { format: 'fewshot-reproduce/1', table: 'shapes', runs: [{ dataset: 'fc100', state: 'failed' }] });
    const listing = await cli(['reproduce', '--tables', tables, '--json']);
    t.deepEqual(JSON.parse(listing.stdout), { tables: ['shapes', 'tiny'] });
  },
);

test.serial(
  'SIGUSR1 to a reproducer with runs side by side: each run stops at its next step, no new run starts, the table is written, exit 138; the same command then finishes',
  async (t) => {
    const results = path.join(fx.root, 'results-usr1');
    const args = ['reproduce', 'tiny', ...common(results), '--seeds', '2', '--jobs', '2', '--only', 'plain', 'sla-ag'];
    // The reproducer sends itself SIGUSR1 right after starting its second run; 4 runs are planned.
    const stopped = await cli(args, 240_000, { FEWSHOT_CRASH_AT: 'reproduce:child-started:2@SIGUSR1' });
    t.is(stopped.code, 138, stopped.stderr);
    t.is(stopped.stderr.match(/^started pid \d+ for /gm)?.length, 2, stopped.stderr);
    t.is(stopped.stderr.match(/^\[[^\]]+\] stopped by SIGUSR1/gm)?.length, 2, 'both runs were told and stopped');
    t.regex(stopped.stderr, /stopped by SIGUSR1, 2 runs stopped mid-way; every checkpoint/);
    const manifest = JSON.parse(await fs.readFile(path.join(results, 'fixture', 'tiny', 'ci', 'reproduce.json'), 'utf8')) as { runs: { state: string }[] };
    t.is(manifest.runs.length, 4);
    t.true(
      manifest.runs.every((r) => r.state === 'not run' || r.state === 'in progress'),
      JSON.stringify(manifest.runs),
    );
    const finished = await cli(args);
    t.is(finished.code, 0, finished.stderr);
    t.is((await perEpisodeFiles(results)).size, 4);
  },
);

queueTest(queueTitle('a worker killed mid-run leaves its job to another worker; the result is written once, complete'), async (t) => {
  const results = path.join(fx.root, 'results-kill');
  const victim = startWorker(results, ['--queue-name', 'kill']);
  const reproducer = cli(
    ['reproduce', 'tiny', ...common(results), '--queue', `redis://127.0.0.1:${port}`, '--queue-name', 'kill', '--only', 'plain', '--seeds', '1'],
    300_000,
  );
  const end = Date.now() + 120_000;
  while (!victim.log.join('').includes('worker: started pid') && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  const childPid = Number(/started pid (\d+)/.exec(victim.log.join(''))?.[1]);
  t.true(childPid > 0, victim.log.join(''));
  victim.kill('SIGKILL');
  // The run's own process notices that its worker is gone and exits instead of writing on as an orphan.
  const gone = Date.now() + 30_000;
  let alive = true;
  while (alive && Date.now() < gone) {
    try {
      process.kill(childPid, 0);
      await new Promise((r) => setTimeout(r, 100));
    } catch {
      alive = false;
    }
  }
  t.false(alive, "the killed worker's child exited");
  const rescuer = startWorker(results, ['--queue-name', 'kill']);
  const out = await reproducer;
  t.is(out.code, 0, out.stderr + rescuer.log.join(''));
  t.regex(rescuer.log.join(''), /worker: finished protonet_2w1s_ci_[0-9a-f]{8}\/seed0/);
  const files = await perEpisodeFiles(results);
  t.is(files.size, 1);
  // SIGUSR1 drains a worker: it takes no new job and, with no run in progress, ends at once and cleanly.
  const exited = new Promise<number | null>((r) => rescuer.on('exit', (c) => r(c)));
  rescuer.kill('SIGUSR1');
  t.is(await exited, 0, rescuer.log.join(''));
  t.regex(rescuer.log.join(''), /worker: SIGUSR1: taking no new job/);
});

queueTest(queueTitle('a worker stopped by SIGTERM (or SIGINT) exits 143 (130), not 0 (issue 26, also)'), async (t) => {
  // The CLI process itself, without the launcher: the launcher's own 143 after its grace period would hide a
  // worker that ended with 0 on its own.
  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    const w = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--conditions=fewshot-source',
        path.join(REPO_ROOT, 'src', 'cli', 'main.ts'),
        'worker',
        '--queue',
        `redis://127.0.0.1:${port}`,
        '--queue-name',
        `stop-${signal}`,
        '--tables',
        tables,
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    children.push(w);
    let log = '';
    w.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const end = Date.now() + 120_000;
    while (!log.includes('worker: waiting for jobs') && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    const exited = new Promise<number | null>((r) => w.on('exit', (c) => r(c)));
    w.kill(signal);
    t.is(await exited, code, log);
    t.regex(log, new RegExp(`stopped by ${signal}`));
  }
});

test.serial(
  'without the optional bullmq/ioredis installed: the queue commands name them and how to install them (exit 2); reproduce without --queue works',
  async (t) => {
    // As an install without the optional peer dependencies: both packages fail to resolve.
    const hide = (args: string[]) =>
      new Promise<Outcome>((resolve) => {
        execFile(
          process.execPath,
          [
            '--import',
            'tsx',
            '--import',
            path.join(REPO_ROOT, 'test', 'fixtures', 'hide-packages.mjs'),
            '--conditions=fewshot-source',
            path.join(REPO_ROOT, 'src', 'cli', 'main.ts'),
            ...args,
          ],
          { cwd: REPO_ROOT, timeout: 240_000, env: { ...process.env, FEWSHOT_TEST_HIDDEN_PACKAGES: 'bullmq,ioredis' } },
          (err, stdout, stderr) => resolve({ code: err ? (((err as { code?: number }).code as number) ?? 1) : 0, stdout, stderr }),
        );
      });
    const worker = await hide(['worker', '--queue', 'redis://127.0.0.1:1']);
    t.is(worker.code, 2, worker.stderr);
    t.regex(
      worker.stderr,
      /^error: the queue \(reproduce --queue, worker\) needs the optional packages bullmq and ioredis, which are not installed\n {2}fix: install them beside fewshot: npm install bullmq@\^5 ioredis@\^5/m,
    );
    const queued = await hide(['reproduce', 'tiny', ...common(path.join(fx.root, 'r-noqueue')), '--queue', 'redis://127.0.0.1:1', '--only', 'plain']);
    t.is(queued.code, 2, queued.stderr);
    t.regex(queued.stderr, /needs the optional packages bullmq and ioredis/);
    const dry = await hide(['reproduce', 'tiny', ...common(path.join(fx.root, 'r-noqueue')), '--only', 'plain', '--dry-run']);
    t.is(dry.code, 0, dry.stderr);
    t.regex(dry.stdout, /protonet_\S+\/seed0 {2}\[plain\] {2}to run/);
  },
);

test.serial('an unreachable queue is an error within seconds; a different run in the results folder is refused, not overwritten', async (t) => {
  const t0 = Date.now();
  const dead = await cli(['reproduce', 'tiny', ...common(path.join(fx.root, 'r-dead')), '--queue', 'redis://127.0.0.1:1', '--only', 'plain']);
  t.is(dead.code, 2);
  t.regex(dead.stderr, /cannot reach the queue at redis:\/\/127\.0\.0\.1:1/);
  t.true(Date.now() - t0 < 30_000);

  const results = path.join(fx.root, 'results-inproc');
  const cellsCsv = parse(await fs.readFile(path.join(results, 'fixture', 'tiny', 'ci', 'cells.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
  const target = path.join(results, cellsCsv.find((r) => r.cell === 'plain' && r.seed === '0')!.result, 'result.json');
  const record = JSON.parse(await fs.readFile(target, 'utf8'));
  record.config.episodes = 999;
  const tampered = JSON.stringify(record, null, 2) + '\n';
  await fs.writeFile(target, tampered);
  const refused = await cli(['reproduce', 'tiny', ...common(results), '--only', 'plain']);
  t.is(refused.code, 2);
  t.regex(refused.stderr, /holds a run with a different configuration/);
  t.is(await fs.readFile(target, 'utf8'), tampered, 'the other run was not overwritten');
});
