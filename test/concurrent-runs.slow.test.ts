import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { buildFixture, REPO_ROOT, type Fixture, writeClassFolders } from './fixtures/mini-imagenet.ts';
import { reproduceFlags, tinyCell, tinySlaCell, tinyTable, writeTables } from './fixtures/tables.ts';
import { exists } from './fixtures/fs.ts';
import { prepareCliFixture, tinyTrainingArgs } from './fixtures/run-cli.ts';
import { planTable } from '../src/experiment/reproduce/plan.ts';
import { parseTableSpec } from '../src/reports/table-spec.ts';

/**
 * Two real processes on one run folder or one table (issue 26 #5, #11), made to meet in the racy window by the
 * crash-point mechanism (src/util/fault.ts): `FEWSHOT_CRASH_AT=<point>@SIGSTOP` freezes a process exactly there,
 * the test lets the other one go ahead, then resumes it with SIGCONT. No timing luck either way.
 */
let fx: Fixture;
let cache: string;
let dataRoot: string;
let tables: string;
const SIZE = '16';
/** Every process a test started: a failed test must not leave one frozen (SIGSTOP) or running. */
const started: ChildProcess[] = [];

interface Proc {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `fewshot <args>` as a subprocess (node --import tsx src/cli/main.ts: the pid is the fewshot process itself). */
function start(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'cli', 'main.ts'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, FEWSHOT_WASM_THREADS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p: Proc = { child, stdout: '', stderr: '', done: undefined as never };
  started.push(child);
  child.stdout!.on('data', (d) => (p.stdout += d));
  child.stderr!.on('data', (d) => (p.stderr += d));
  p.done = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return p;
}

/** Wait until the process is stopped (state T in /proc/<pid>/stat): it reached its SIGSTOP crash point. */
async function stopped(p: Proc, what: string, ms = 180_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    let state = '';
    try {
      state = readFileSync(`/proc/${p.child.pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
    } catch {
      throw new Error(`${what} ended before its stop point: ${p.stderr.slice(-800)}`);
    }
    if (state === 'T') return;
    if (p.child.exitCode !== null) throw new Error(`${what} ended before its stop point: ${p.stderr.slice(-800)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not reach its stop point within ${ms} ms: ${p.stderr.slice(-800)}`);
}

const resume = (p: Proc) => p.child.kill('SIGCONT');

test.before(async () => {
  fx = await buildFixture(8);
  // The same images as a `folder` dataset (train/val/test/<class>/<image>) for the table.
  dataRoot = await writeClassFolders(fx, path.join(fx.root, 'fixture'));
  tables = await writeTables(path.join(fx.root, 'tables'), { tiny: TABLE });
  // through this file's own runner, whose processes a failed test kills
  const run = async (args: string[]) => {
    const p = start(args);
    return { ...(await p.done), stderr: p.stderr };
  };
  cache = await prepareCliFixture(fx, SIZE, run, { splits: ['val'] });
});
test.after.always(async () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await fx?.cleanup();
});

const trainArgs = (runs: string) => tinyTrainingArgs({ command: 'train', method: 'protonet', size: SIZE, cache, root: fx.root, runs, episodes: 4 });

test.serial('#11 a train refused by the run lock deletes nothing: the holder that took the lock first finishes its run', async (t) => {
  const runs = path.join(fx.root, 'race', 'runs');
  const runDir = path.join(runs, 'r');
  // The loser gets as far as taking the lock (its checks done, the folder not made yet) and is frozen there.
  const loser = start(trainArgs(runs), { FEWSHOT_CRASH_AT: 'lock:acquire@SIGSTOP' });
  await stopped(loser, 'the loser');
  // The winner makes the folder, takes the lock and is frozen after its first trained episode, holding it.
  const winner = start(trainArgs(runs), { FEWSHOT_CRASH_AT: 'train:episode-done@SIGSTOP' });
  await stopped(winner, 'the winner');
  t.is(JSON.parse(await fs.readFile(path.join(runDir, '.lock'), 'utf8')).pid, winner.child.pid);
  resume(loser);
  const lost = await loser.done;
  t.is(lost.code, 2, loser.stderr);
  t.regex(loser.stderr, new RegExp(`error: run folder .*r is in use by process ${winner.child.pid} on `));
  t.is(JSON.parse(await fs.readFile(path.join(runDir, '.lock'), 'utf8')).pid, winner.child.pid, 'the winner still holds its lock');
  resume(winner);
  const won = await winner.done;
  t.is(won.code, 0, winner.stderr);
  for (const f of ['last/checkpoint.json', 'best/checkpoint.json', 'train-log.jsonl']) t.true(await exists(path.join(runDir, f)), f);
  t.false(await exists(path.join(runDir, '.lock')), 'released at the end');

  // A new run stopped before its first checkpoint still leaves no folder: it is this process's, found empty under its lock.
  const fresh = path.join(fx.root, 'race', 'fresh');
  const interrupted = start(trainArgs(fresh), { FEWSHOT_CRASH_AT: 'train:episode-done@SIGINT' });
  t.is((await interrupted.done).code, 130, interrupted.stderr);
  t.false(await exists(path.join(fresh, 'r')));
});

test.serial("#11 stale-lock takeover: a second taker that read the same dead holder does not remove the first taker's new lock", async (t) => {
  const dir = path.join(fx.root, 'takeover');
  await fs.mkdir(dir, { recursive: true });
  // A lock left by a process that is gone.
  const dead = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => dead.on('exit', r));
  await fs.writeFile(
    path.join(dir, '.lock'),
    JSON.stringify({ pid: dead.pid, host: os.hostname(), startedAt: '2026-01-01T00:00:00.000Z', command: 'train (killed)' }),
  );
  const taker = (env: Record<string, string> = {}) => {
    const script = `import(${JSON.stringify(path.join(REPO_ROOT, 'src/util/lock.ts'))}).then(async (m) => {
      try { const l = await m.acquireRunLock(${JSON.stringify(dir)}); console.log('held ' + JSON.stringify(l.tookOverFrom?.pid ?? null)); setInterval(() => {}, 1000); }
      catch (err) { console.log('refused ' + err.name + ': ' + err.problem); process.exit(2); } })`;
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    started.push(child);
    const p: Proc = { child, stdout: '', stderr: '', done: new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal }))) };
    child.stdout!.on('data', (d) => (p.stdout += d));
    child.stderr!.on('data', (d) => (p.stderr += d));
    return p;
  };
  // The second taker has read the dead holder and is frozen just before acting on it.
  const second = taker({ FEWSHOT_CRASH_AT: 'lock:stale-read@SIGSTOP' });
  await stopped(second, 'the second taker');
  // The first taker takes the stale lock over and holds it.
  const first = taker();
  while (!first.stdout.includes('held') && first.child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  t.is(first.stdout.trim(), `held ${dead.pid}`, first.stderr);
  resume(second);
  // (Before the fix the second taker removed the first one's lock and "held" it too: it would never exit by itself.)
  while (!second.stdout && second.child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  if (second.stdout.startsWith('held')) second.child.kill('SIGKILL');
  const out = await second.done;
  t.is(out.code, 2, second.stdout + second.stderr);
  t.regex(second.stdout, new RegExp(`refused RunInUseError: run folder .* is in use by process ${first.child.pid} on `));
  t.is(JSON.parse(await fs.readFile(path.join(dir, '.lock'), 'utf8')).pid, first.child.pid, 'the first taker still holds the lock');
  t.deepEqual(await fs.readdir(dir), ['.lock'], 'no takeover marker or temp left');
  first.child.kill('SIGKILL');
  await first.done;
});

const TABLE = tinyTable(
  'Tiny table on four real mini-ImageNet classes',
  [tinyCell('plain'), tinySlaCell('ag')],
  [{ id: 'ag-vs-plain', a: 'sla-ag', b: 'plain' }],
);

test.serial('#5 two reproducers on one table: a run locked by the other is in progress elsewhere, not failed; the table is built from disk', async (t) => {
  const results = path.join(fx.root, 'two', 'results');
  const args = [
    ...['reproduce', 'tiny'],
    ...reproduceFlags({ tables, root: dataRoot, results, runs: path.join(fx.root, 'two', 'runs'), cache: path.join(fx.root, 'cache-folder') }),
    '--jobs',
    '1',
  ];
  const keys = planTable(parseTableSpec(TABLE, 'tiny.json'), 'ci').runs.map((r) => r.key); // in the order a reproducer runs them
  t.is(keys.length, 4);
  // A is frozen in its first run (plain seed 0), holding its lock; B finds it locked, runs the next one and is frozen
  // in it (plain seed 1). A then finishes, finds B's run locked and does the other two; B ends last.
  const a = start(args, { FEWSHOT_CRASH_AT: 'train:episode-done@SIGSTOP' });
  await stopped(a, 'reproducer A');
  const b = start(args, { FEWSHOT_CRASH_AT: 'train:episode-done@SIGSTOP' });
  await stopped(b, 'reproducer B');
  t.regex(b.stderr, new RegExp(`\\[1/4\\] ${keys[0]}: elsewhere — process ${a.child.pid} on `));
  resume(a);
  const outA = await a.done;
  t.is(outA.code, 0, a.stderr);
  t.regex(a.stderr, new RegExp(`${keys[1]}: elsewhere — process ${b.child.pid} on `));
  t.regex(a.stderr, /1 run was in progress in another process/);
  const tableDir = path.join(results, 'fixture', 'tiny', 'ci');
  const manifestA = JSON.parse(await fs.readFile(path.join(tableDir, 'reproduce.json'), 'utf8')) as { runs: { key: string; state: string }[] };
  t.deepEqual(
    manifestA.runs.map((r) => [r.key, r.state]),
    [
      [keys[0], 'ran'],
      [keys[1], 'in progress elsewhere'],
      [keys[2], 'ran'],
      [keys[3], 'ran'],
    ],
  );

  resume(b);
  const outB = await b.done;
  t.is(outB.code, 0, b.stderr);
  // B's table is written last: every run finished (A's too, though B found its first run locked).
  const manifestB = JSON.parse(await fs.readFile(path.join(tableDir, 'reproduce.json'), 'utf8')) as { runs: { key: string; state: string }[] };
  t.deepEqual(
    manifestB.runs.map((r) => [r.key, r.state]),
    [
      [keys[0], 'done'],
      [keys[1], 'ran'],
      [keys[2], 'done'],
      [keys[3], 'done'],
    ],
  );
  const cells = parse(await fs.readFile(path.join(tableDir, 'cells.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
  t.is(cells.length, 4);
  for (const row of cells) t.true(row.result !== '' && (await exists(path.join(results, row.result, 'result.json'))), `${row.cell} seed ${row.seed}`);
  t.notRegex(await fs.readFile(path.join(tableDir, 'table.md'), 'utf8'), /failed|not run|in progress/);
});

test.serial('#5 side by side (--jobs 2): a run whose folder another process holds is in progress elsewhere (its child exits 75), the others run', async (t) => {
  const results = path.join(fx.root, 'jobs', 'results');
  const runs = path.join(fx.root, 'jobs', 'runs');
  const args = [
    'reproduce',
    'tiny',
    ...reproduceFlags({ tables, root: dataRoot, results, runs, cache: path.join(fx.root, 'cache-folder') }),
    '--only',
    'plain',
  ];
  const [free, held] = planTable(parseTableSpec(TABLE, 'tiny.json'), 'ci', { only: ['plain'] }).runs;
  // This test process holds the second run's folder, as another reproducer or a worker running it would.
  const heldDir = path.join(runs, held.resultDir);
  await fs.mkdir(heldDir, { recursive: true });
  await fs.writeFile(
    path.join(heldDir, '.lock'),
    JSON.stringify({ pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString(), command: 'reproduce tiny (the test)' }),
  );
  // The child a side-by-side reproducer or a worker starts for that run says so by its exit status.
  const child = start([...args, '--run', held.key, '--seeds', '2']);
  t.is((await child.done).code, 75, child.stderr);
  t.regex(child.stderr, new RegExp(`error: run folder .* is in use by process ${process.pid} on `));
  const out = start([...args, '--jobs', '2']);
  const ended = await out.done;
  t.is(ended.code, 0, out.stderr);
  t.regex(out.stderr, /2 runs side by side/);
  t.regex(out.stderr, new RegExp(`${held.key}: elsewhere — another process`));
  t.regex(out.stderr, /1 run was in progress in another process/);
  const manifest = JSON.parse(await fs.readFile(path.join(results, 'fixture', 'tiny', 'ci', 'reproduce.json'), 'utf8')) as {
    runs: { key: string; state: string }[];
  };
  t.deepEqual(
    manifest.runs.filter((r) => r.key === free.key || r.key === held.key).map((r) => [r.key, r.state]),
    [
      [free.key, 'ran'],
      [held.key, 'in progress elsewhere'],
    ],
  );
  t.true(await exists(path.join(results, 'fixture', free.resultDir, 'result.json')));
  t.is(JSON.parse(await fs.readFile(path.join(heldDir, '.lock'), 'utf8')).pid, process.pid, "the holder's lock is untouched");
});
