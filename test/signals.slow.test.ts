import test from 'ava';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildFixture, REPO_ROOT, type Fixture } from './fixtures/mini-imagenet.ts';
import { prepareCliFixture, runCli, tinyTrainingArgs } from './fixtures/run-cli.ts';

/** SIGINT/SIGTERM stop training with a clean message and 130/143; SIGUSR1 checkpoints first (138); a killed parent leaves no orphan. */
let fx: Fixture;
let cache: string;
test.before(async () => {
  fx = await buildFixture(12);
  cache = await prepareCliFixture(fx, '16', runCli, { splits: ['val'], count: 2 });
});
test.after.always(async () => {
  await fx?.cleanup();
});

// Through the launcher, as `npm run fewshot` and the installed `fewshot` run it.
const trainArgs = (name: string) => [
  path.join(REPO_ROOT, 'bin', 'fewshot.js'),
  ...tinyTrainingArgs({
    command: 'train',
    method: 'protonet',
    size: '16',
    cache,
    root: fx.root,
    runs: path.join(fx.root, 'runs'),
    episodes: 100_000,
    valEvery: 0,
    backend: 'cpu',
    name,
  }),
];

/** Starts a long training of run `name` and resolves 1.5 s after it says it is training; `stderr()` reads what it wrote so far. */
async function startTraining(name: string): Promise<{ child: ChildProcess; stderr: () => string }> {
  const child = spawn(process.execPath, trainArgs(name), { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      if (/training protonet/.test(stderr)) resolve();
    });
    child.on('exit', () => reject(new Error(`exited before training: ${stderr}`)));
  });
  await new Promise((r) => setTimeout(r, 1500));
  return { child, stderr: () => stderr };
}

for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  test.serial(`${signal} during training exits ${code} within a second with a clean message`, async (t) => {
    const { child, stderr: output } = await startTraining(signal);
    const sent = performance.now();
    child.kill(signal);
    const [exitCode] = await new Promise<[number | null]>((r) => child.on('exit', (c) => r([c])));
    const seconds = (performance.now() - sent) / 1000;
    const stderr = output();
    t.is(exitCode, code, stderr);
    t.regex(stderr, new RegExp(`stopped by ${signal}`));
    t.notRegex(stderr, /at .*\.ts:\d+/); // no stack trace
    t.true(seconds < 1, `took ${seconds.toFixed(2)} s`);
  });
}

const checkpointOf = (name: string) =>
  JSON.parse(readFileSync(path.join(fx.root, 'runs', name, 'last', 'checkpoint.json'), 'utf8')) as {
    weightsSha256: string;
    meta: { episode: number; trainWallSeconds: number; trainWallEstimated?: boolean };
  };

test.serial('SIGUSR1 during training: the step in progress ends, a checkpoint is written at that episode, exit 138', async (t) => {
  const { child, stderr: output } = await startTraining('usr1');
  child.kill('SIGUSR1'); // to the launcher, which passes it on
  const [exitCode] = await new Promise<[number | null]>((r) => child.on('exit', (c) => r([c])));
  const stderr = output();
  t.is(exitCode, 138, stderr);
  const said = /stopped by SIGUSR1, checkpoint at episode ([\d,]+) of 100,000/.exec(stderr);
  t.truthy(said, stderr);
  const episode = Number(said![1].replace(/,/g, ''));
  t.true(episode > 0);
  // The newest checkpoint is the stop's, at the episode it names (regular ones come every 500).
  t.is(checkpointOf('usr1').meta.episode, episode);
  t.notRegex(stderr, /Debugger listening|at .*\.ts:\d+/);
});

test.serial('a run checkpointed by SIGUSR1 mid-way resumes to the same weights and log as a run never stopped', async (t) => {
  // wasm: the cpu backend takes seconds per step here.
  const args = (name: string) => trainArgs(name).map((a) => (a === '100000' ? '12' : a === 'cpu' ? 'wasm' : a));
  const run = (name: string, env: Record<string, string> = {}) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, args(name), { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('exit', (code) => resolve({ code, stderr }));
    });
  const whole = await run('whole');
  t.is(whole.code, 0, whole.stderr);
  // The signal arrives, from the process itself, right after the 7th training step.
  const stopped = await run('resumed', { FEWSHOT_CRASH_AT: 'train:episode-done:7@SIGUSR1' });
  t.is(stopped.code, 138, stopped.stderr);
  t.regex(stopped.stderr, /checkpoint at episode 7 of 12/);
  t.is(checkpointOf('resumed').meta.episode, 7);
  const firstSitting = checkpointOf('resumed').meta.trainWallSeconds;
  t.true(firstSitting > 0);
  const resumed = await run('resumed');
  t.is(resumed.code, 0, resumed.stderr);
  t.regex(resumed.stderr, /resuming at episode 7 of 12/);
  t.is(checkpointOf('resumed').meta.episode, 12);
  // The running training wall time carries across the stop, exactly (no estimate from the log).
  t.true(checkpointOf('resumed').meta.trainWallSeconds > firstSitting);
  t.is(checkpointOf('resumed').meta.trainWallEstimated, undefined);
  t.is(checkpointOf('resumed').weightsSha256, checkpointOf('whole').weightsSha256);
  const log = (name: string) =>
    readFileSync(path.join(fx.root, 'runs', name, 'train-log.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => ({ ...JSON.parse(l), time: undefined }));
  t.deepEqual(log('resumed'), log('whole'));
});

for (const victim of ['npm stand-in', 'launcher'] as const)
  test.serial(`kill -9 of the ${victim} does not leave the node worker running`, async (t) => {
    // The parent stands in for npm: it starts the CLI and is then SIGKILLed, so it cannot forward anything.
    const script = `const { spawn } = require('node:child_process'); const c = spawn(process.execPath, ${JSON.stringify(trainArgs('orphan'))}, { stdio: 'ignore' }); console.log(c.pid); setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ['-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const launcherPid = await new Promise<number>((resolve) => parent.stdout.on('data', (d) => resolve(Number(String(d).trim()))));
    await new Promise((r) => setTimeout(r, 1000));
    // The node worker the launcher started (the process that trains and writes runs/).
    const { execFileSync } = await import('node:child_process');
    const childPid = Number(
      execFileSync('pgrep', ['-P', String(launcherPid)])
        .toString()
        .trim()
        .split('\n')[0],
    );
    t.true(childPid > 0);
    await new Promise((r) => setTimeout(r, 4000));
    if (victim === 'launcher') process.kill(launcherPid, 'SIGKILL');
    else parent.kill('SIGKILL');
    const alive = () => {
      try {
        process.kill(childPid, 0);
        return true;
      } catch {
        return false;
      }
    };
    const t0 = performance.now();
    while (alive() && performance.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 100));
    t.false(alive(), `worker ${childPid} still running 20 s after its parent was killed`);
    if (alive()) process.kill(childPid, 'SIGKILL');
    for (const pid of [launcherPid, parent.pid!])
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
  });

test.serial('kill -9 of `npm run fewshot …` (npm → sh → launcher → worker) leaves no process running', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const args = trainArgs('npm-chain').slice(1); // without bin/fewshot.js: the npm script adds it
  const npm = spawn('npm', ['run', '--silent', 'fewshot', '--', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    npm.stderr!.on('data', (d) => {
      stderr += d;
      if (/training protonet/.test(stderr)) resolve();
    });
    npm.on('exit', () => reject(new Error(`npm exited early: ${stderr}`)));
  });
  const pids = () => {
    try {
      return execFileSync('pgrep', ['-f', 'runs --name npm-chain|--name npm-chain']).toString().trim().split('\n').map(Number);
    } catch {
      return [];
    }
  };
  t.true(pids().length >= 2, 'launcher and worker should be running');
  npm.kill('SIGKILL');
  const t0 = performance.now();
  while (pids().length > 0 && performance.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 100));
  const left = pids();
  t.deepEqual(left, [], `still running 20 s after npm was killed: ${left.join(', ')}`);
  for (const pid of left)
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
});
