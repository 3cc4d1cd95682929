import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { intArg, jsonOption, printJson, pluginOption, dataLocationsOption, cacheOption } from '../options.ts';
import { loadPlugins } from '../context.ts';
import type { ReproduceSettings, RunExecutor, RunState } from '../../experiment/reproduce/reproduce.ts';
import type { PlannedRun } from '../../experiment/reproduce/plan.ts';
import { UserError } from '../../util/errors.ts';
import { RunInUseError } from '../../util/lock.ts';
import { crashPoint } from '../../util/fault.ts';
import { CHECKPOINT_AND_STOP, exitCodeOf, onStop, receivedStopSignal, StoppedBySignal } from '../../util/signal.ts';

/**
 * The exit status of `reproduce --run` (a worker's or a side-by-side reproducer's child) when another process holds
 * the run's folder: EX_TEMPFAIL of sysexits.h ("try again later"). The parent records the run as in progress
 * elsewhere, not failed.
 */
const RUN_IN_USE_EXIT_CODE = 75;

/** The queue name `fewshot reproduce --queue` and `fewshot worker` use by default (the queue module's default;
 *  written out here so that `--help` loads no BullMQ). */
const DEFAULT_QUEUE_NAME = 'fewshot-reproduce';

/** The heavy modules (tfjs, BullMQ, vega), loaded when a reproduce command runs, not when flags are parsed. */
async function heavy() {
  const [experiment, plan, reproduce, queue, dryRun, select, tableSpec, reporter] = await Promise.all([
    import('../../experiment/index.ts'), import('../../experiment/reproduce/plan.ts'), import('../../experiment/reproduce/reproduce.ts'),
    import('../../experiment/reproduce/queue.ts'), import('../../experiment/reproduce/dry-run.ts'), import('../../backend/select.ts'),
    import('../../reports/table-spec.ts'), import('../reporter.ts'),
  ]);
  return { ...experiment, ...plan, ...reproduce, ...queue, ...dryRun, ...select, ...tableSpec, ...reporter };
}

/** The committed tables (`experiments/tables/*.json`), found from this module so an installed package has them. */
export const TABLES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'experiments', 'tables');

interface ReproduceFlags {
  budget: string;
  only?: string[];
  seeds?: number;
  dryRun?: boolean;
  tableOnly?: boolean;
  queue?: string;
  queueName: string;
  data?: string[];
  backend: string;
  results: string;
  runs: string;
  cache?: string;
  testEpisodes?: number;
  plugin?: string[];
  run?: string;
  tables: string;
  jobs?: number;
  json?: boolean;
}

/** `--data mini-imagenet=DIR --data cifar-fs=FILE` → { dataset: location } */
function dataLocations(values: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UserError(`--data "${v}" does not say which dataset it is for`, 'write --data <dataset>=<location>, e.g. --data mini-imagenet=data/mini-imagenet');
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

function settingsOf(flags: ReproduceFlags): ReproduceSettings {
  return { results: flags.results, runs: flags.runs, backend: flags.backend, data: dataLocations(flags.data), cache: flags.cache, testEpisodes: flags.testEpisodes };
}

const hms = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(0)} s`);

type DryRun = Awaited<ReturnType<Awaited<ReturnType<typeof heavy>>['dryRunPlan']>>;

/** The dry run as text: one line per run, then the totals, with the runs that cannot start counted apart. */
function dryRunText(dry: DryRun, jobs: number): string {
  const lines: string[] = [];
  for (const r of dry.runs) {
    const eta = r.estimate
      ? ` ≈ ${hms(r.estimate.seconds)} (train ${r.shape.train}: ${r.estimate.trainMsPerEpisode.toFixed(0)} ms/episode, eval ${r.shape.test}: ${r.estimate.evalMsPerEpisode.toFixed(0)} ms/episode)`
      : '';
    const state =
      r.state === 'in progress' ? `${r.detail}, to resume`
      : r.state === 'no data' ? `cannot start: no ${r.dataset} data given (see below)`
      : r.state === 'refused' ? `refused: ${r.detail}`
      : r.state === 'done' && r.detail ? `done (${r.detail})`
      : r.state;
    lines.push(`${r.key}  [${r.cells.join(', ')}]  ${state}${eta}`);
  }
  const s = dry.summary;
  const noData = Object.values(s.noData).reduce((a, b) => a + b, 0);
  // The probe ran here, one run on every thread; side-by-side runs (--jobs) share the cores and finish more
  // per hour in all (bench/threads.sh measures by how much), so the sum is an upper bound for them.
  const sideBySide = jobs > 1 ? `; with ${jobs} runs side by side (--jobs ${jobs}) the wall time is shorter than this sum` : '';
  const parts = [`${s.done} done`, `${s.inProgress} in progress`, `${s.toRun} to run`];
  if (noData) parts.push(`${noData} cannot start without data (${Object.entries(s.noData).map(([d, n]) => `${d}: ${n}`).join(', ')})`);
  if (s.refused) parts.push(`${s.refused} refused`);
  lines.push(`${s.runs} runs: ${parts.join(', ')}`);
  if (s.toRun + s.inProgress) {
    lines.push(`the ${s.toRun + s.inProgress} to run or resume take ≈ ${hms(s.seconds)} one after the other on ${dry.backend.choice} (measured step speed on this machine, each training and evaluation episode shape once: ${s.probes} probe${s.probes === 1 ? '' : 's'}${sideBySide})`);
  }
  for (const dataset of Object.keys(s.noData)) {
    const first = dry.runs.find((r) => r.state === 'no data' && r.dataset === dataset)!;
    lines.push(`${s.noData[dataset]} ${dataset} run${s.noData[dataset] === 1 ? '' : 's'} cannot start: ${first.detail}`);
    lines.push(`  fix: ${first.fix}`);
  }
  return lines.join('\n') + '\n';
}

/** The flags a worker passes on to the child process that runs one cell (data, backend, folders, plugins). */
function childArgs(flags: ReproduceFlags): string[] {
  const args = ['--results', flags.results, '--runs', flags.runs, '--backend', flags.backend, '--tables', flags.tables];
  for (const d of flags.data ?? []) args.push('--data', d);
  if (flags.cache) args.push('--cache', flags.cache);
  if (flags.testEpisodes !== undefined) args.push('--test-episodes', String(flags.testEpisodes));
  for (const p of flags.plugin ?? []) args.push('--plugin', p);
  return args;
}

/**
 * A worker runs each cell in a child process: the training's synchronous compute would otherwise block the
 * worker's event loop and with it the renewal of its claim on the job. The child is tied to the worker through an
 * IPC channel and exits when the worker goes away, so a killed worker leaves no orphan still writing results.
 * Side by side (`prefixOutput`), a SIGUSR1 to the reproducer is passed on to each child, which checkpoints and
 * stops; it is held back until the child has written its first line (its handlers are installed by then: a node
 * process without a SIGUSR1 handler would open its debugger instead).
 */
function childProcessExecutor(flags: ReproduceFlags, log: (l: string) => void, options: { env?: NodeJS.ProcessEnv; prefixOutput?: boolean } = {}): RunExecutor {
  return (run) =>
    new Promise<void>((resolve, reject) => {
      // Planning with seeds = seed + 1 includes this run; the child re-plans from its own table file.
      const args = [...process.execArgv, process.argv[1], 'reproduce', run.table, '--run', run.key, '--budget', run.budget, '--seeds', String(run.seed + 1), ...childArgs(flags)];
      const out = options.prefixOutput ? 'pipe' : 'inherit';
      const child = spawn(process.execPath, args, { stdio: ['ignore', out, out, 'ipc'], env: options.env ?? process.env });
      if (options.prefixOutput) {
        // Runs side by side: each line says which run it is from.
        for (const [stream, sink] of [[child.stdout, process.stdout], [child.stderr, process.stderr]] as const) {
          createInterface({ input: stream! }).on('line', (line) => sink.write(`[${run.key}] ${line}\n`));
        }
      }
      // A SIGUSR1 that came before the child was up is read back from receivedStopSignal() once it is.
      let ready = false;
      let offStop = () => {};
      if (options.prefixOutput) {
        offStop = onStop((signal) => {
          if (ready && signal === CHECKPOINT_AND_STOP) child.kill(signal);
        });
        for (const stream of [child.stdout!, child.stderr!]) {
          stream.once('data', () => {
            if (ready) return;
            ready = true;
            if (receivedStopSignal() === CHECKPOINT_AND_STOP) child.kill(CHECKPOINT_AND_STOP);
          });
        }
      }
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        offStop();
        if (code === 0) return resolve();
        if (code === exitCodeOf(CHECKPOINT_AND_STOP)) return reject(new StoppedBySignal(CHECKPOINT_AND_STOP, `run ${run.key} stopped at a step boundary with its newest checkpoint written; the same command resumes it`));
        if (code === RUN_IN_USE_EXIT_CODE) {
          const dir = path.join(flags.runs, run.resultDir);
          return reject(new RunInUseError(`run folder ${dir} is in use by another process`, 'wait for it to finish; the same command then fills its cells', dir));
        }
        const problem = `run ${run.key} failed (${signal ? `signal ${signal}` : `exit ${code}`})`;
        // Side by side, one failed run must not stop the others: a UserError is recorded as that run's failure.
        reject(options.prefixOutput ? new UserError(problem, 'read its messages above; the same command resumes it') : new Error(problem));
      });
      log(`started pid ${child.pid} for ${run.key}`);
      crashPoint('reproduce:child-started');
    });
}

/**
 * How many runs `reproduce` runs side by side. Measured on a 2-core machine (wasm, Conv-4 32 px, the CPU budget of
 * the tables): two runs at one thread each train 1.21x (ProtoNet+SLA) to 1.42x (ProtoNet) more episodes per second
 * than one run at two threads — a single training leaves cores idle at every hand-off between its threads. So
 * with the wasm backend (or auto, which is wasm where no native tfjs is installed) the default is 2 runs of one
 * thread; more cores are not assumed to scale the same way without a measurement, and native backends thread
 * themselves.
 */
function jobsFor(flags: ReproduceFlags): number {
  if (flags.jobs !== undefined) return flags.jobs;
  // wasm-onednn too: oneDNN takes as many threads as the wasm pool, so each side-by-side run (FEWSHOT_WASM_THREADS=1)
  // keeps about one core busy.
  return (flags.backend === 'wasm' || flags.backend === 'wasm-onednn' || flags.backend === 'auto') && cpus().length >= 2 && !process.env.FEWSHOT_WASM_THREADS ? 2 : 1;
}

export function registerReproduceCommands(program: Command): void {
  program
    .command('reproduce [table]')
    .description('run (or resume) every cell of a paper table, then write it with published values, paired differences and figures')
    .option('--budget <name>', 'which budget of the table: cpu (what a 2-core machine finishes) or paper (the published protocol)', 'cpu')
    .option('--only <cells...>', 'run only these cells (ids from the table file)')
    .option('--seeds <n>', 'seeds per cell (default: the budget\'s)', intArg('--seeds'))
    .option('--dry-run', 'list the runs, which are done, and the time the rest would take (measured step speed)')
    .option('--table-only', 'run nothing: write the table from what is on disk (finished runs, and runs in progress with their last checkpoint)')
    .option('--queue <url>', 'put the runs on a BullMQ queue on Redis (redis://host:port) for `fewshot worker`s instead of running them here')
    .option('--queue-name <name>', 'queue name', DEFAULT_QUEUE_NAME)
    .addOption(dataLocationsOption('where a dataset\'s source is, e.g. mini-imagenet=data/mini-imagenet (repeat the flag for each dataset)'))
    .option('--backend <name>', 'compute backend', 'auto')
    .option('--results <dir>', 'results root', 'results')
    .option('--runs <dir>', 'checkpoint root', 'runs')
    .addOption(cacheOption('decoded-image cache folder'))
    .option('--test-episodes <n>', 'evaluate only the first n test episodes (quick checks; the table says so)', intArg('--test-episodes'))
    .addOption(pluginOption('modules that register extra heads/backbones/wrappers/datasets (repeat the flag for more)'))
    .option('--tables <dir>', 'folder of table files', TABLES_DIR)
    .option('--run <key>', 'run just this one planned run (used by workers)')
    .addOption(jsonOption())
    .option('--jobs <n>', 'runs side by side, each in its own process with cores/n wasm threads (default: 2 on a machine with 2 or more cores for the wasm backend, where two 1-thread runs finish 1.2-1.4x more episodes per hour than one 2-thread run; else 1)', intArg('--jobs'))
    .action(async (tableArg: string | undefined, flags: ReproduceFlags) => {
      await loadPlugins(flags.plugin);
      const {
        listTables, stderrReporter, readTableSpec, planTable, validateConfig, inProcessExecutor, cliHooks, selectBackend, hasFinishedResult,
        dryRunPlan, enqueueAndWait, executePlan, writeTableOutputs, datasetsWithRuns, prepareCachesFor,
      } = await heavy();
      if (!tableArg) {
        const tables = await listTables(flags.tables);
        if (flags.json) printJson({ tables });
        else process.stdout.write(`tables: ${tables.join(', ')}\n`);
        return;
      }
      const reporter = stderrReporter;
      const { file, table } = await readTableSpec(tableArg, flags.tables);
      const plan = planTable(table, flags.budget, { seeds: flags.seeds, only: flags.only });
      for (const run of plan.runs) validateConfig(run.config); // every cell's config is checked before any compute
      const settings = settingsOf(flags);

      if (flags.run) {
        const run = plan.runs.find((r) => r.key === flags.run);
        if (!run) throw new UserError(`table ${table.id} (budget ${flags.budget}) has no run ${flags.run}`, 'list the runs with --dry-run');
        // Started by a worker: when it goes away (even killed), stop rather than run on as an orphan. The channel
        // may have closed before this listener existed, hence the check of `connected` too.
        if (process.send) {
          process.on('disconnect', () => process.exit(143));
          if (!process.connected) process.exit(143);
          process.channel?.unref(); // the channel alone must not keep this process alive once the run is done
        }
        const hooks = cliHooks();
        try {
          await inProcessExecutor(settings, hooks)(run);
        } catch (err) {
          if (!(err instanceof RunInUseError)) throw err;
          // Another process runs it: the parent records it as in progress elsewhere (not failed) from this exit code.
          process.stderr.write(`error: ${err.problem}\n  fix: ${err.fix}\n`);
          process.exitCode = RUN_IN_USE_EXIT_CODE;
        } finally {
          hooks.done();
        }
        return;
      }

      if (flags.dryRun) {
        const backend = await selectBackend(flags.backend);
        reporter.log(`backend: ${backend.choice} — ${backend.detail}`);
        const dry = await dryRunPlan(plan, settings, backend, { testEpisodes: flags.testEpisodes });
        if (flags.json) printJson(dry);
        else process.stdout.write(dryRunText(dry, jobsFor(flags)));
        return;
      }

      const t0 = performance.now();
      const onState = (s: RunState, done: number, all: number) => {
        const elapsed = (performance.now() - t0) / 1000;
        const eta = done < all ? `, ETA ${hms((elapsed / done) * (all - done))}` : '';
        reporter.log(`[${done}/${all}] ${s.run.key}: ${s.state}${s.message ? ` — ${s.message}` : ''}${eta}`);
      };
      let states: RunState[];
      let jobs = jobsFor(flags);
      const unfinished: PlannedRun[] = []; // the runs side-by-side lanes will start (their caches are prepared first)
      if (jobs > 1 && !flags.tableOnly && !flags.queue) {
        // Side by side only while there are runs for every lane: the last unfinished run of a table gets every thread
        // (two 1-thread lanes with one run left would leave a core idle for the rest of it). A run refused for its
        // folder counts as to do: executePlan reports it.
        let todo = 0;
        for (const run of plan.runs) {
          const state = await hasFinishedResult(settings, run).then((f) => (f ? 'done' : 'to do'), () => 'refused');
          if (state !== 'done') todo++;
          if (state === 'to do') unfinished.push(run);
        }
        if (todo < jobs) {
          jobs = Math.max(1, todo);
          if (todo === 1) reporter.log('one run to do: running it in this process with every thread');
        }
      }
      if (flags.tableOnly) {
        states = []; // each run's state is read from its folders when the table is written
      } else if (flags.queue) {
        const todo = [];
        const done: RunState[] = [];
        for (const run of plan.runs) {
          if (await hasFinishedResult(settings, run)) done.push({ run, state: 'done' });
          else todo.push(run);
        }
        reporter.log(`queue ${flags.queue}: ${todo.length} runs queued, ${done.length} already done; start \`fewshot worker --queue ${flags.queue}\` on any machine that has the data`);
        states = [...done, ...(await enqueueAndWait(plan, todo, { url: flags.queue, queueName: flags.queueName }, onState))];
      } else if (jobs > 1) {
        const threads = Math.max(1, Math.floor(cpus().length / jobs));
        reporter.log(`${jobs} runs side by side, each in its own process with ${threads} wasm thread${threads > 1 ? 's' : ''}`);
        const env = { ...process.env, FEWSHOT_WASM_THREADS: String(threads) };
        const hooks = cliHooks();
        try {
          await prepareCachesFor(unfinished, settings, hooks); // once, here, not by every run at the same time
        } finally {
          hooks.done();
        }
        states = await executePlan(plan, settings, childProcessExecutor(flags, (l) => reporter.log(l), { env, prefixOutput: true }), onState, jobs);
      } else {
        const hooks = cliHooks();
        try {
          states = await executePlan(plan, settings, inProcessExecutor(settings, hooks), onState);
        } finally {
          hooks.done();
        }
      }
      // --only limits what runs, not what the table shows: the table is written from every cell of the table (those
      // outside --only filled from their finished results), for the datasets of the cells that ran.
      const whole = planTable(table, flags.budget, { seeds: flags.seeds });
      const datasets = flags.tableOnly ? await datasetsWithRuns(whole, settings) : [...new Set(plan.runs.map((r) => r.dataset))];
      if (!datasets.length) reporter.log(`no run of ${table.id} (budget ${flags.budget}) is finished or in progress under ${settings.results} and ${settings.runs}: no table written`);
      const { dirs } = await writeTableOutputs(whole, settings, states, path.relative(process.cwd(), file), datasets);
      const elsewhere = states.filter((s) => s.state === 'elsewhere');
      if (elsewhere.length) {
        reporter.log(`${elsewhere.length} run${elsewhere.length > 1 ? 's were' : ' was'} in progress in another process (${elsewhere.map((s) => `${s.run.key}: ${s.message}`).join('; ')}); the table shows ${elsewhere.length > 1 ? 'them' : 'it'} in progress — once finished, \`--table-only\` (or the same command) fills ${elsewhere.length > 1 ? 'their cells' : 'its cell'}`);
      }
      const failed = states.filter((s) => s.state === 'failed');
      if (flags.json) {
        printJson({
          format: 'fewshot-reproduce/1', table: table.id, budget: flags.budget,
          runs: states.map((s) => ({ key: s.run.key, cells: s.run.cells, dataset: s.run.dataset, seed: s.run.seed, state: s.state, ...(s.message ? { message: s.message } : {}) })),
          tables: dirs.map((d) => path.join(d, 'table.md')),
        });
      } else {
        for (const d of dirs) process.stdout.write(`table: ${path.join(d, 'table.md')}\n`);
      }
      if (failed.length) {
        throw new UserError(`${failed.length} of ${states.length} runs failed (the table was written without them): ${failed.map((f) => `${f.run.key}: ${f.message}`).join('; ')}`, 'fix what each message says and run the same command again; finished runs are kept');
      }
      // After SIGUSR1 the table is written (its unfinished runs in progress), then the command ends as stopped. (A
      // reproducer waiting on a queue has nothing to checkpoint: the workers' runs go on, and so does the wait.)
      const stopped = states.filter((s) => s.state === 'stopped');
      const signal = flags.queue ? undefined : receivedStopSignal();
      if (signal || stopped.length) throw new StoppedBySignal(signal ?? CHECKPOINT_AND_STOP, stopped.length ? `${stopped.length} run${stopped.length > 1 ? 's' : ''} stopped mid-way` : undefined);
    });

  program
    .command('worker')
    .description('take reproduce runs from a queue and run them here (each in a child process), until stopped')
    .requiredOption('--queue <url>', 'the Redis the reproducer queued on (redis://host:port)')
    .option('--queue-name <name>', 'queue name', DEFAULT_QUEUE_NAME)
    .addOption(dataLocationsOption('where a dataset\'s source is on this machine (repeat the flag for each dataset)'))
    .option('--backend <name>', 'compute backend on this machine', 'auto')
    .option('--results <dir>', 'results root (shared with the reproducer)', 'results')
    .option('--runs <dir>', 'checkpoint root', 'runs')
    .addOption(cacheOption('decoded-image cache folder'))
    .option('--test-episodes <n>', 'evaluate only the first n test episodes', intArg('--test-episodes'))
    .addOption(pluginOption('plugins installed on this machine, never taken from a job (repeat the flag for more)'))
    .option('--tables <dir>', 'folder of table files', TABLES_DIR)
    .option('--lock-ms <ms>', 'how long a job stays claimed without renewal; a dead worker\'s job is retried after it', intArg('--lock-ms', 100), 60000)
    .option('--stalled-ms <ms>', 'how often to look for jobs of dead workers', intArg('--stalled-ms', 100), 30000)
    .action(async (flags: ReproduceFlags & { lockMs: number; stalledMs: number }) => {
      await loadPlugins(flags.plugin);
      const { startWorker, readTableSpec } = await heavy();
      const log = (l: string) => process.stderr.write(`${l}\n`);
      const worker = await startWorker({
        url: flags.queue!,
        queueName: flags.queueName,
        loadTable: async (id) => (await readTableSpec(id, flags.tables)).table,
        execute: childProcessExecutor(flags, (l) => log(`worker: ${l}`)),
        timing: { lockDuration: flags.lockMs, stalledInterval: flags.stalledMs },
        onLog: log,
      });
      log(`worker: waiting for jobs on ${flags.queue} (${flags.queueName}); Ctrl-C to stop`);
      // SIGUSR1 (checkpoint, then stop) drains: no new job; the run in progress ends first (close() waits for it).
      // A signal that came while the worker was starting counts too (it would otherwise be missed and the worker run on).
      const stop = (signal: string) => {
        if (signal === CHECKPOINT_AND_STOP) log('worker: SIGUSR1: taking no new job; stopping when the run in progress ends');
        void worker.close();
      };
      onStop(stop);
      const early = receivedStopSignal();
      if (early) stop(early);
      await worker.closed;
      // Stopped by SIGINT/SIGTERM: end as stopped (130/143), so a service manager or script sees the stop, not a
      // clean finish. A SIGUSR1 drain is the planned way out and ends cleanly (0).
      const signal = receivedStopSignal();
      if (signal && signal !== CHECKPOINT_AND_STOP) throw new StoppedBySignal(signal);
    });
}
