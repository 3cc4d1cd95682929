import { cpus } from 'node:os';
import path from 'node:path';
import { selectBackend } from '../../backend/select.ts';
import { readTableSpec, type TableSpec } from '../../reports/table-spec.ts';
import { UserError } from '../../util/errors.ts';
import { RunInUseError } from '../../util/lock.ts';
import { CHECKPOINT_AND_STOP, onStop, receivedStopSignal, StoppedBySignal } from '../../util/signal.ts';
import { silentReporter, type ExperimentReporter } from '../reporter.ts';
import type { ExperimentHooks } from '../experiment.ts';
import { validateConfig } from '../validate.ts';
import { childProcessExecutor, defaultJobs, type ChildRunSettings } from './child-executor.ts';
import { DEFAULT_QUEUE_NAME, TABLES_DIR } from './defaults.ts';
import { dryRunPlan, type DryRun } from './dry-run.ts';
import { planTable, type PlannedRun, type TablePlan } from './plan.ts';
import { enqueueAndWait, startWorker, type QueueTiming, type WorkerHandle } from './queue.ts';
import {
  datasetsWithRuns,
  executePlan,
  hasFinishedResult,
  inProcessExecutor,
  prepareCachesFor,
  writeTableOutputs,
  type ReproduceSettings,
  type RunState,
} from './reproduce.ts';

/**
 * `reproduce` as one library call: plan a table's runs, run (or resume) those not finished with the executor the
 * request chooses, and write the table with its published values, paired differences and figures.
 */
export interface ReproduceRequest {
  /** Table id (a file in `tables`) or a table file's path. */
  table: string;
  /** Folder of table files (default: the package's experiments/tables). */
  tables?: string;
  /** `cpu` (what a 2-core machine finishes) or `paper` (the published protocol). */
  budget?: string;
  /** Seeds per cell (default: the budget's). */
  seeds?: number;
  /** Run only these cells (the table is still written from every cell with a result). */
  only?: string[];
  results?: string;
  runs?: string;
  backend?: string;
  /** Source location per dataset; datasets not listed use their provider's default. */
  data?: Record<string, string>;
  cache?: string;
  episodesDir?: string;
  /** Evaluate only the first n test episodes of each file (quick checks; the table says so). */
  testEpisodes?: number;
  /**
   * Who runs the runs: `in-process` one after the other here; `side-by-side` in `jobs` child processes at once;
   * `queue` as jobs on a BullMQ queue for workers (`queue` names it); `table-only` runs nothing and writes the table
   * from what is on disk. `auto` (the default): side by side where `jobs` (default: defaultJobs) > 1, else in-process.
   */
  executor?: 'auto' | 'in-process' | 'side-by-side' | 'queue' | 'table-only';
  jobs?: number;
  /** The queue's Redis (`redis://host:port`) and name, for the `queue` executor. */
  queue?: { url: string; name?: string };
  /** Plugin modules the child processes load (this process has loaded them already). */
  plugins?: string[];
}

/** What `reproduceTable` returns: each run's state, the written tables, and why the command is not complete, if it is not. */
export interface ReproduceOutcome {
  table: TableSpec;
  budget: string;
  /** Each run's state, in plan order (runs not started after a stop signal have none). */
  states: RunState[];
  /** The written `table.md` files, one per dataset. */
  tables: string[];
  /**
   * Set when the command is not complete: runs failed (a UserError naming them), or runs were stopped by SIGUSR1 (a
   * StoppedBySignal). The table is written either way; the CLI prints its summary, then throws this.
   */
  incomplete?: Error;
}

interface Resolved {
  file: string;
  table: TableSpec;
  budget: string;
  plan: TablePlan;
  settings: ChildRunSettings;
}

/** Where a run's files go, its backend, data and plugins, with their defaults: what the reproducer and a worker pass each run. */
function runSettingsOf(request: Omit<ReproduceRequest, 'table'>): ChildRunSettings {
  return {
    results: request.results ?? 'results',
    runs: request.runs ?? 'runs',
    backend: request.backend ?? 'auto',
    data: request.data ?? {},
    cache: request.cache,
    testEpisodes: request.testEpisodes,
    episodesDir: request.episodesDir,
    tables: request.tables ?? TABLES_DIR,
    plugins: request.plugins,
  };
}

/** Read the table, plan it and check every run's config before any compute. */
async function resolveRequest(request: ReproduceRequest): Promise<Resolved> {
  const settings = runSettingsOf(request);
  const budget = request.budget ?? 'cpu';
  const { file, table } = await readTableSpec(request.table, settings.tables);
  const plan = planTable(table, budget, { seeds: request.seeds, only: request.only });
  for (const run of plan.runs) validateConfig(run.config); // every cell's config is checked before any compute
  return { file, table, budget, plan, settings };
}

/** The runs each lane would start: how many are unfinished (refused ones count: executePlan reports them). */
async function unfinishedRuns(plan: TablePlan, settings: ReproduceSettings): Promise<{ todo: number; toStart: PlannedRun[] }> {
  let todo = 0;
  const toStart: PlannedRun[] = [];
  for (const run of plan.runs) {
    const state = await hasFinishedResult(settings, run).then(
      (f) => (f ? 'done' : 'to do'),
      () => 'refused',
    );
    if (state !== 'done') todo++;
    if (state === 'to do') toStart.push(run);
  }
  return { todo, toStart };
}

const hms = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(0)} s`);

/** Each run's state as it ends, with the ETA of the rest from the mean time so far. */
function stateLogger(reporter: ExperimentReporter): (s: RunState, done: number, all: number) => void {
  const t0 = performance.now();
  return (s, done, all) => {
    const elapsed = (performance.now() - t0) / 1000;
    const eta = done < all ? `, ETA ${hms((elapsed / done) * (all - done))}` : '';
    reporter.log(`[${done}/${all}] ${s.run.key}: ${s.state}${s.message ? ` — ${s.message}` : ''}${eta}`);
  };
}

async function queueRuns(r: Resolved, queue: { url: string; name?: string }, reporter: ExperimentReporter): Promise<RunState[]> {
  const todo: PlannedRun[] = [];
  const done: RunState[] = [];
  for (const run of r.plan.runs) {
    if (await hasFinishedResult(r.settings, run)) done.push({ run, state: 'done' });
    else todo.push(run);
  }
  reporter.log(
    `queue ${queue.url}: ${todo.length} runs queued, ${done.length} already done; start \`fewshot worker --queue ${queue.url}\` on any machine that has the data`,
  );
  return [...done, ...(await enqueueAndWait(r.plan, todo, { url: queue.url, queueName: queue.name ?? DEFAULT_QUEUE_NAME }, stateLogger(reporter)))];
}

/**
 * Side by side only while there are runs for every lane: the last unfinished run of a table gets every thread (two
 * 1-thread lanes with one run left would leave a core idle for the rest of it).
 */
async function runSideBySide(r: Resolved, jobs: number, hooks: ExperimentHooks, reporter: ExperimentReporter): Promise<RunState[]> {
  const { todo, toStart } = await unfinishedRuns(r.plan, r.settings);
  if (todo < jobs) {
    jobs = Math.max(1, todo);
    if (todo === 1) reporter.log('one run to do: running it in this process with every thread');
  }
  if (jobs <= 1) return executePlan(r.plan, r.settings, inProcessExecutor(r.settings, hooks), stateLogger(reporter));
  const threads = Math.max(1, Math.floor(cpus().length / jobs));
  reporter.log(`${jobs} runs side by side, each in its own process with ${threads} wasm thread${threads > 1 ? 's' : ''}`);
  const env = { ...process.env, FEWSHOT_WASM_THREADS: String(threads) };
  await prepareCachesFor(toStart, r.settings, hooks); // once, here, not by every run at the same time
  return executePlan(
    r.plan,
    r.settings,
    childProcessExecutor(r.settings, (l) => reporter.log(l), { env, prefixOutput: true }),
    stateLogger(reporter),
    jobs,
  );
}

async function executeRuns(r: Resolved, request: ReproduceRequest, hooks: ExperimentHooks, reporter: ExperimentReporter): Promise<RunState[]> {
  const executor = request.executor ?? 'auto';
  if (executor === 'table-only') return []; // each run's state is read from its folders when the table is written
  if (executor === 'queue') {
    if (!request.queue) throw new UserError('the queue executor needs a queue', 'give the Redis URL of the queue (--queue redis://host:port)');
    return queueRuns(r, request.queue, reporter);
  }
  const jobs = executor === 'in-process' ? 1 : (request.jobs ?? defaultJobs(r.settings.backend));
  if (jobs > 1) return runSideBySide(r, jobs, hooks, reporter);
  return executePlan(r.plan, r.settings, inProcessExecutor(r.settings, hooks), stateLogger(reporter));
}

/** Runs that failed or were stopped: the error the command ends with once the table is written. */
function incompleteError(states: RunState[], queued: boolean): Error | undefined {
  const failed = states.filter((s) => s.state === 'failed');
  if (failed.length) {
    return new UserError(
      `${failed.length} of ${states.length} runs failed (the table was written without them): ${failed.map((f) => `${f.run.key}: ${f.message}`).join('; ')}`,
      'fix what each message says and run the same command again; finished runs are kept',
    );
  }
  // After SIGUSR1 the table is written (its unfinished runs in progress), then the command ends as stopped. (A
  // reproducer waiting on a queue has nothing to checkpoint: the workers' runs go on, and so does the wait.)
  const stopped = states.filter((s) => s.state === 'stopped');
  const signal = queued ? undefined : receivedStopSignal();
  if (signal || stopped.length)
    return new StoppedBySignal(
      signal ?? CHECKPOINT_AND_STOP,
      stopped.length ? `${stopped.length} run${stopped.length > 1 ? 's' : ''} stopped mid-way` : undefined,
    );
  return undefined;
}

/** Run (or resume) every unfinished run of a table with the chosen executor, then write the table. */
export async function reproduceTable(request: ReproduceRequest, hooks: ExperimentHooks = {}): Promise<ReproduceOutcome> {
  const reporter = hooks.reporter ?? silentReporter;
  const r = await resolveRequest(request);
  const states = await executeRuns(r, request, hooks, reporter);
  // `only` limits what runs, not what the table shows: the table is written from every cell of the table (those
  // outside `only` filled from their finished results), for the datasets of the cells that ran.
  const whole = planTable(r.table, r.budget, { seeds: request.seeds });
  const datasets = request.executor === 'table-only' ? await datasetsWithRuns(whole, r.settings) : [...new Set(r.plan.runs.map((run) => run.dataset))];
  if (!datasets.length)
    reporter.log(
      `no run of ${r.table.id} (budget ${r.budget}) is finished or in progress under ${r.settings.results} and ${r.settings.runs}: no table written`,
    );
  const { dirs } = await writeTableOutputs(whole, r.settings, states, path.relative(process.cwd(), r.file), datasets);
  const elsewhere = states.filter((s) => s.state === 'elsewhere');
  if (elsewhere.length) {
    reporter.log(
      `${elsewhere.length} run${elsewhere.length > 1 ? 's were' : ' was'} in progress in another process (${elsewhere.map((s) => `${s.run.key}: ${s.message}`).join('; ')}); the table shows ${elsewhere.length > 1 ? 'them' : 'it'} in progress — once finished, \`--table-only\` (or the same command) fills ${elsewhere.length > 1 ? 'their cells' : 'its cell'}`,
    );
  }
  return {
    table: r.table,
    budget: r.budget,
    states,
    tables: dirs.map((d) => path.join(d, 'table.md')),
    incomplete: incompleteError(states, request.executor === 'queue'),
  };
}

/** `reproduce --dry-run`: each run's state and the measured time the rest would take on the selected backend. */
export async function estimateReproduction(request: ReproduceRequest, hooks: ExperimentHooks = {}): Promise<DryRun> {
  const r = await resolveRequest(request);
  const backend = await selectBackend(r.settings.backend);
  (hooks.reporter ?? silentReporter).log(`backend: ${backend.choice} — ${backend.detail}`);
  return dryRunPlan(r.plan, r.settings, backend, { testEpisodes: request.testEpisodes });
}

/**
 * One planned run, in this process (a worker's or a side-by-side reproducer's child). Resolves to `in use` when
 * another process holds the run's folder (the parent records it as in progress elsewhere, not failed).
 */
export async function reproduceRun(
  request: ReproduceRequest,
  key: string,
  hooks: ExperimentHooks = {},
): Promise<{ state: 'ran' } | { state: 'in use'; error: RunInUseError }> {
  const r = await resolveRequest(request);
  const run = r.plan.runs.find((p) => p.key === key);
  if (!run) throw new UserError(`table ${r.table.id} (budget ${r.budget}) has no run ${key}`, 'list the runs with --dry-run');
  try {
    await inProcessExecutor(r.settings, hooks)(run);
    return { state: 'ran' };
  } catch (err) {
    if (!(err instanceof RunInUseError)) throw err;
    return { state: 'in use', error: err };
  }
}

export interface ReproduceWorkerRequest extends Omit<ReproduceRequest, 'table' | 'executor' | 'jobs' | 'only' | 'seeds' | 'budget'> {
  queue: { url: string; name?: string };
  timing?: QueueTiming;
  onLog?: (line: string) => void;
}

/** `fewshot worker`: take runs from the queue and run each in a child process, until closed. */
export async function startReproduceWorker(request: ReproduceWorkerRequest): Promise<WorkerHandle> {
  const settings = runSettingsOf(request);
  const log = request.onLog ?? (() => {});
  return startWorker({
    url: request.queue.url,
    queueName: request.queue.name ?? DEFAULT_QUEUE_NAME,
    loadTable: async (id) => (await readTableSpec(id, settings.tables)).table,
    execute: childProcessExecutor(settings, (l) => log(`worker: ${l}`)),
    timing: request.timing,
    onLog: log,
  });
}

/**
 * `fewshot worker` until stopped: SIGUSR1 (checkpoint, then stop) drains (no new job; the run in progress ends
 * first); SIGINT/SIGTERM end it as stopped (a StoppedBySignal, so a service manager or script sees the stop, not a
 * clean finish). A signal that came while the worker was starting counts too.
 */
export async function runReproduceWorker(request: ReproduceWorkerRequest): Promise<void> {
  const log = request.onLog ?? (() => {});
  const worker = await startReproduceWorker(request);
  log(`worker: waiting for jobs on ${request.queue.url} (${request.queue.name ?? DEFAULT_QUEUE_NAME}); Ctrl-C to stop`);
  const stop = (signal: string) => {
    if (signal === CHECKPOINT_AND_STOP) log('worker: SIGUSR1: taking no new job; stopping when the run in progress ends');
    void worker.close();
  };
  const offStop = onStop(stop);
  const early = receivedStopSignal();
  if (early) stop(early);
  try {
    await worker.closed;
  } finally {
    offStop();
  }
  const signal = receivedStopSignal();
  if (signal && signal !== CHECKPOINT_AND_STOP) throw new StoppedBySignal(signal);
}
