import type { Job } from 'bullmq';
import { z } from 'zod';
import { UserError } from '../../util/errors.ts';
import type { TableSpec } from '../../reports/table-spec.ts';
import { planTable, type PlannedRun, type TablePlan } from './plan.ts';
import type { RunExecutor, RunState } from './reproduce.ts';

/**
 * Runs as jobs on a BullMQ queue (Redis), so a table of many cells × seeds spreads over any number of machines.
 *
 * Safety: a job is plain data — table id, budget, run key and the run's config hash — validated by `cellJobSchema`.
 * A worker re-plans the run from ITS OWN copy of the table file and refuses a job whose config hash differs; it
 * never loads code or a config from the queue, and loads only the plugins named by its own command line.
 * Exactly-once results: the job id is the run key (adding the same run twice is a no-op), BullMQ hands a job to one
 * worker at a time under a renewed lock, and a worker that dies mid-run loses its lock, so the job goes back to the
 * queue and another worker retries it; the result itself is written atomically, so no half-written result exists.
 */
import { DEFAULT_QUEUE_NAME } from './defaults.ts';
export { DEFAULT_QUEUE_NAME };

/**
 * BullMQ and ioredis are optional peer dependencies: only `reproduce --queue` and `worker` use them, so they are
 * loaded here, on demand, and an install without them runs everything else (and says what to install here).
 */
async function queueLibraries(): Promise<{
  Queue: typeof import('bullmq').Queue;
  Worker: typeof import('bullmq').Worker;
  Redis: typeof import('ioredis').Redis;
}> {
  const missing: string[] = [];
  const load = async <T>(name: string, get: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await get();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw err;
      missing.push(name);
      return undefined;
    }
  };
  const bullmq = await load('bullmq', () => import('bullmq'));
  const ioredis = await load('ioredis', () => import('ioredis'));
  if (!bullmq || !ioredis) {
    throw new UserError(
      `the queue (reproduce --queue, worker) needs the optional package${missing.length > 1 ? 's' : ''} ${missing.join(' and ')}, which ${missing.length > 1 ? 'are' : 'is'} not installed`,
      'install them beside fewshot: npm install bullmq@^5 ioredis@^5 (nothing else in fewshot needs them; without --queue, reproduce runs the cells on this machine)',
    );
  }
  return { Queue: bullmq.Queue, Worker: bullmq.Worker, Redis: ioredis.Redis };
}

export const cellJobSchema = z
  .object({
    // A table id, never a file name: a worker reads the table by id from its own --tables folder, and an id
    // ending in .json would be read as a path relative to the worker's working folder.
    table: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]*$/)
      .refine((t) => !t.endsWith('.json'), 'a table id, not a file name (workers read tables by id from their own --tables folder)'),
    budget: z.string().regex(/^[a-z0-9][a-z0-9.-]*$/),
    run: z.string().regex(/^[A-Za-z0-9._-]+\/seed\d+$/),
    configKey: z.string().regex(/^[0-9a-f]{16}$/),
    seeds: z.number().int().min(1).max(1000),
  })
  .strict();
export type CellJob = z.infer<typeof cellJobSchema>;

export interface QueueTiming {
  /** How long a worker's claim on a job lasts without renewal (ms); a dead worker's job is retried after it. */
  lockDuration?: number;
  /** How often workers look for jobs whose worker died (ms). */
  stalledInterval?: number;
}

/** `redis://[:password@]host:port[/db]` → connection options. */
export function parseQueueUrl(url: string): { host: string; port: number; db: number; password?: string; maxRetriesPerRequest: null } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`--queue "${url}" is not a URL`, 'pass redis://host:port, e.g. --queue redis://127.0.0.1:6379');
  }
  if (u.protocol !== 'redis:') throw new UserError(`--queue "${url}" is not a redis:// URL`, 'pass redis://host:port, e.g. --queue redis://127.0.0.1:6379');
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0)
    throw new UserError(`--queue "${url}" names database "${u.pathname.slice(1)}"`, 'use a number, e.g. redis://host:6379/0');
  return {
    host: u.hostname || '127.0.0.1',
    port: Number(u.port || 6379),
    db,
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    maxRetriesPerRequest: null,
  };
}

/** Fail fast, with the address, when Redis cannot be reached (instead of BullMQ's endless reconnecting). */
export async function checkQueueReachable(url: string, timeoutMs = 3000): Promise<void> {
  const opts = parseQueueUrl(url);
  const { Redis } = await queueLibraries();
  const client = new Redis({
    host: opts.host,
    port: opts.port,
    db: opts.db,
    password: opts.password,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
  });
  client.on('error', () => {}); // reported below, once
  try {
    await Promise.race([
      client.connect().then(() => client.ping()),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)),
    ]);
  } catch (err) {
    throw new UserError(
      `cannot reach the queue at ${url}: ${(err as Error).message}`,
      'start Redis there (e.g. `redis-server --port 6379`) or fix --queue; without --queue, reproduce runs the cells in this process',
    );
  } finally {
    client.disconnect();
  }
}

const jobIdOf = (run: PlannedRun) => run.key.replace('/', '.');

/**
 * Put every run of the plan on the queue (runs already finished are not added) and wait until each job has
 * completed or failed for good. `onState` reports each job as it ends.
 */
export async function enqueueAndWait(
  plan: TablePlan,
  runs: PlannedRun[],
  opts: { url: string; queueName?: string; pollMs?: number; signal?: AbortSignal },
  onState?: (s: RunState, done: number, total: number) => void,
): Promise<RunState[]> {
  await checkQueueReachable(opts.url);
  const { Queue } = await queueLibraries();
  const queue = new Queue<CellJob>(opts.queueName ?? DEFAULT_QUEUE_NAME, { connection: parseQueueUrl(opts.url) });
  try {
    for (const run of runs) {
      const data: CellJob = { table: plan.table.id, budget: plan.budget, run: run.key, configKey: run.configKey, seeds: plan.seeds.length };
      // A job id that already exists is not added again: two reproducers share the job, and a finished job
      // whose result was since deleted is replaced so that it runs again.
      const existing = await queue.getJob(jobIdOf(run));
      if (existing && (await existing.getState()) === 'completed') await existing.remove();
      await queue.add('run', data, { jobId: jobIdOf(run), attempts: 3, removeOnComplete: false, removeOnFail: false });
    }
    const pending = new Map(runs.map((r) => [jobIdOf(r), r]));
    const states: RunState[] = [];
    while (pending.size) {
      if (opts.signal?.aborted)
        throw new UserError('stopped while waiting for the queue', 'run the same command again: finished runs are kept, queued ones stay queued');
      for (const [id, run] of [...pending]) {
        const job = await queue.getJob(id);
        const state = job ? await job.getState() : 'unknown';
        if (state === 'completed' || (state === 'failed' && job && job.attemptsMade >= (job.opts.attempts ?? 1))) {
          pending.delete(id);
          const s: RunState = state === 'completed' ? { run, state: 'ran' } : { run, state: 'failed', message: job?.failedReason ?? 'failed' };
          states.push(s);
          onState?.(s, states.length, runs.length);
        }
      }
      if (pending.size) await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
    }
    return states;
  } finally {
    await queue.close();
  }
}

export interface WorkerHandle {
  /** Resolves when the worker has stopped. */
  closed: Promise<void>;
  close(): Promise<void>;
}

/**
 * Take jobs from the queue and run them with `execute` (one at a time). `loadTable` reads the worker's own copy of
 * a table by id.
 */
export async function startWorker(opts: {
  url: string;
  queueName?: string;
  loadTable: (id: string) => Promise<TableSpec>;
  execute: RunExecutor;
  timing?: QueueTiming;
  onLog?: (line: string) => void;
}): Promise<WorkerHandle> {
  await checkQueueReachable(opts.url);
  const { Worker } = await queueLibraries();
  const log = opts.onLog ?? (() => {});
  const processor = async (job: Job<CellJob>) => {
    const parsed = cellJobSchema.safeParse(job.data);
    if (!parsed.success)
      throw new Error(`job ${job.id} is not a valid cell job: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const data = parsed.data;
    const table = await opts.loadTable(data.table);
    const plan = planTable(table, data.budget, { seeds: data.seeds });
    const run = plan.runs.find((r) => r.key === data.run);
    if (!run || run.configKey !== data.configKey) {
      throw new Error(
        `job ${job.id}: this worker's copy of table ${data.table} plans run ${data.run} with another config (${run?.configKey ?? 'no such run'} vs ${data.configKey}); update the worker's checkout`,
      );
    }
    log(`worker: running ${run.key} (attempt ${job.attemptsMade + 1})`);
    await opts.execute(run);
    log(`worker: finished ${run.key}`);
  };
  const worker = new Worker<CellJob>(opts.queueName ?? DEFAULT_QUEUE_NAME, processor, {
    connection: parseQueueUrl(opts.url),
    concurrency: 1,
    lockDuration: opts.timing?.lockDuration ?? 60_000,
    stalledInterval: opts.timing?.stalledInterval ?? 30_000,
    maxStalledCount: 3,
  });
  worker.on('failed', (job, err) => log(`worker: ${job?.id} failed: ${err.message}`));
  worker.on('error', (err) => log(`worker: ${err.message}`));
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  worker.on('closed', () => resolveClosed());
  return { closed, close: () => worker.close() };
}
