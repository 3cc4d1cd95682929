import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { mkTmp, REPO_ROOT } from './fixtures/mini-imagenet.ts';
import { QUEUE_TESTS_SKIPPED, queueTitle, startRedis, type LocalRedis } from './fixtures/redis.ts';

/**
 * What a `fewshot worker` does with a job it must not run, on a real local redis-server and a real worker
 * process: a job naming its table as a file (`x.json`) is refused by the job check, before anything is read —
 * not read relative to the worker's working folder (which holds an `x.json` here).
 */
const BIN = path.join(REPO_ROOT, 'bin', 'fewshot.js');
// Without a redis-server binary the test is skipped (fixtures/redis.ts), except under CI.
const queueTest = QUEUE_TESTS_SKIPPED ? test.skip : test;
let dir: string;
let redis: LocalRedis | undefined;
let worker: ChildProcess | undefined;
let port = 0;

async function until<T>(what: string, get: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test.before(async () => {
  dir = await mkTmp('worker-jobs');
  redis = await startRedis(dir);
  port = redis?.port ?? 0;
});
test.after.always(async () => {
  worker?.kill('SIGKILL');
  redis?.process.kill('SIGKILL');
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

queueTest(queueTitle('a job naming its table as a file (x.json) is refused before the worker reads anything'), async (t) => {
  const cwd = path.join(dir, 'worker-cwd');
  await fs.mkdir(cwd);
  // a file the job must not make the worker read: reading it would fail with "not valid JSON"
  await fs.writeFile(path.join(cwd, 'x.json'), '{ this file must not be read');
  const tables = path.join(dir, 'tables');
  await fs.mkdir(tables);
  const url = `redis://127.0.0.1:${port}`;
  let log = '';
  worker = spawn(process.execPath, [BIN, 'worker', '--queue', url, '--queue-name', 'xjson', '--tables', tables, '--lock-ms', '3000', '--stalled-ms', '1000'], {
    cwd,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  worker.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const { Queue } = await import('bullmq');
  const queue = new Queue('xjson', { connection: { host: '127.0.0.1', port, maxRetriesPerRequest: null } });
  try {
    await queue.add(
      'run',
      { table: 'x.json', budget: 'ci', run: 'plain/seed0', configKey: '0123456789abcdef', seeds: 1 },
      { jobId: 'x', attempts: 1, removeOnFail: false },
    );
    const reason = await until('the job to fail', async () => {
      const job = await queue.getJob('x');
      return job && (await job.getState()) === 'failed' ? job.failedReason : undefined;
    });
    t.regex(reason, /^job x is not a valid cell job: table: a table id, not a file name/, log);
    t.notRegex(reason + log, /not valid JSON/);
  } finally {
    await queue.close();
    worker.kill('SIGKILL');
  }
});
