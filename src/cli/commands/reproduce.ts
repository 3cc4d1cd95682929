import { Option, type Command } from 'commander';
import { intArg, jsonOption, printJson, pluginOption, dataLocationsOption, cacheOption } from '../options.ts';
import { loadPlugins } from '../context.ts';
import { parseDataLocations } from '../dataset-flags.ts';
import { DEFAULT_QUEUE_NAME, RUN_IN_USE_EXIT_CODE, TABLES_DIR } from '../../experiment/reproduce/defaults.ts';
import type { ReproduceOutcome, ReproduceRequest } from '../../experiment/index.ts';

// The experiment layer (tfjs, BullMQ, vega) is imported inside the actions: parsing flags and --help load none of it.
const experiment = () => import('../../experiment/index.ts');
const reporter = () => import('../reporter.ts');

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

/** The request's part that runOptions' flags give: the same for the reproducer and a worker. */
function runSettingsOf(flags: ReproduceFlags) {
  return {
    tables: flags.tables,
    results: flags.results,
    runs: flags.runs,
    backend: flags.backend,
    data: parseDataLocations(flags.data),
    cache: flags.cache,
    testEpisodes: flags.testEpisodes,
    plugins: flags.plugin,
  };
}

function requestOf(table: string, flags: ReproduceFlags): ReproduceRequest {
  return {
    table,
    ...runSettingsOf(flags),
    budget: flags.budget,
    seeds: flags.seeds,
    only: flags.only,
    executor: flags.tableOnly ? 'table-only' : flags.queue ? 'queue' : 'auto',
    jobs: flags.jobs,
    queue: flags.queue ? { url: flags.queue, name: flags.queueName } : undefined,
  };
}

/**
 * Started by a worker or a side-by-side reproducer (`--run`): when that parent goes away (even killed), stop rather
 * than run on as an orphan. The channel may have closed before this listener existed, hence the check of `connected`.
 */
function exitWithParentProcess(): void {
  if (!process.send) return;
  process.on('disconnect', () => process.exit(143));
  if (!process.connected) process.exit(143);
  process.channel?.unref(); // the channel alone must not keep this process alive once the run is done
}

function printOutcome(outcome: ReproduceOutcome, json?: boolean): void {
  if (!json) {
    for (const t of outcome.tables) process.stdout.write(`table: ${t}\n`);
    return;
  }
  printJson({
    format: 'fewshot-reproduce/1',
    table: outcome.table.id,
    budget: outcome.budget,
    runs: outcome.states.map((s) => ({
      key: s.run.key,
      cells: s.run.cells,
      dataset: s.run.dataset,
      seed: s.run.seed,
      state: s.state,
      ...(s.message ? { message: s.message } : {}),
    })),
    tables: outcome.tables,
  });
}

async function reproduceAction(tableArg: string | undefined, flags: ReproduceFlags): Promise<void> {
  await loadPlugins(flags.plugin);
  const x = await experiment();
  if (!tableArg) {
    const tables = await x.listTables(flags.tables);
    return flags.json ? printJson({ tables }) : void process.stdout.write(`tables: ${tables.join(', ')}\n`);
  }
  const request = requestOf(tableArg, flags);
  const hooks = (await reporter()).cliHooks();
  try {
    if (flags.run) {
      exitWithParentProcess();
      const done = await x.reproduceRun(request, flags.run, hooks);
      if (done.state === 'in use') {
        // Another process runs it: the parent records it as in progress elsewhere (not failed) from this exit code.
        process.stderr.write(`error: ${done.error.problem}\n  fix: ${done.error.fix}\n`);
        process.exitCode = RUN_IN_USE_EXIT_CODE;
      }
    } else if (flags.dryRun) {
      const dry = await x.estimateReproduction(request, hooks);
      if (flags.json) printJson(dry);
      else process.stdout.write(x.describeDryRun(dry, flags.jobs ?? x.defaultJobs(flags.backend)));
    } else {
      const outcome = await x.reproduceTable(request, hooks);
      printOutcome(outcome, flags.json);
      if (outcome.incomplete) throw outcome.incomplete;
    }
  } finally {
    hooks.done();
  }
}

/**
 * The flags of a planned run that the reproducer and a worker both read (where data, results, checkpoints, cache,
 * plugins and tables are; the backend; a test-episode cap), in one order; `help` says whose machine they describe.
 */
function runOptions(help: { data: string; backend: string; results: string; testEpisodes: string; plugins: string }): Option[] {
  return [
    dataLocationsOption(help.data),
    new Option('--backend <name>', help.backend).default('auto'),
    new Option('--results <dir>', help.results).default('results'),
    new Option('--runs <dir>', 'checkpoint root').default('runs'),
    cacheOption('decoded-image cache folder'),
    new Option('--test-episodes <n>', help.testEpisodes).argParser(intArg('--test-episodes')),
    pluginOption(help.plugins),
    new Option('--tables <dir>', 'folder of table files').default(TABLES_DIR),
  ];
}

/** `cmd` with each of `options` added, in order. */
function withOptions(cmd: Command, options: Option[]): Command {
  for (const o of options) cmd.addOption(o);
  return cmd;
}

export function registerReproduceCommands(program: Command): void {
  registerReproduceCommand(program);
  registerWorkerCommand(program);
}

function registerReproduceCommand(program: Command): void {
  const reproduce = program
    .command('reproduce [table]')
    .description('run (or resume) every cell of a paper table, then write it with published values, paired differences and figures')
    .option('--budget <name>', 'which budget of the table: cpu (what a 2-core machine finishes) or paper (the published protocol)', 'cpu')
    .option('--only <cells...>', 'run only these cells (ids from the table file)')
    .option('--seeds <n>', "seeds per cell (default: the budget's)", intArg('--seeds'))
    .option('--dry-run', 'list the runs, which are done, and the time the rest would take (measured step speed)')
    .option('--table-only', 'run nothing: write the table from what is on disk (finished runs, and runs in progress with their last checkpoint)')
    .option('--queue <url>', 'put the runs on a BullMQ queue on Redis (redis://host:port) for `fewshot worker`s instead of running them here')
    .option('--queue-name <name>', 'queue name', DEFAULT_QUEUE_NAME);
  withOptions(
    reproduce,
    runOptions({
      data: "where a dataset's source is, e.g. mini-imagenet=data/mini-imagenet (repeat the flag for each dataset)",
      backend: 'compute backend',
      results: 'results root',
      testEpisodes: 'evaluate only the first n test episodes (quick checks; the table says so)',
      plugins: 'modules that register extra heads/backbones/wrappers/datasets (repeat the flag for more)',
    }),
  )
    .option('--run <key>', 'run just this one planned run (used by workers)')
    .addOption(jsonOption())
    .option(
      '--jobs <n>',
      'runs side by side, each in its own process with cores/n wasm threads (default: 2 on a machine with 2 or more cores for the wasm backend, where two 1-thread runs finish 1.2-1.4x more episodes per hour than one 2-thread run; else 1)',
      intArg('--jobs'),
    )
    .action(reproduceAction);
}

type WorkerFlags = ReproduceFlags & { lockMs: number; stalledMs: number };

function registerWorkerCommand(program: Command): void {
  const worker = program
    .command('worker')
    .description('take reproduce runs from a queue and run them here (each in a child process), until stopped')
    .requiredOption('--queue <url>', 'the Redis the reproducer queued on (redis://host:port)')
    .option('--queue-name <name>', 'queue name', DEFAULT_QUEUE_NAME);
  withOptions(
    worker,
    runOptions({
      data: "where a dataset's source is on this machine (repeat the flag for each dataset)",
      backend: 'compute backend on this machine',
      results: 'results root (shared with the reproducer)',
      testEpisodes: 'evaluate only the first n test episodes',
      plugins: 'plugins installed on this machine, never taken from a job (repeat the flag for more)',
    }),
  )
    .option('--lock-ms <ms>', "how long a job stays claimed without renewal; a dead worker's job is retried after it", intArg('--lock-ms', 100), 60000)
    .option('--stalled-ms <ms>', 'how often to look for jobs of dead workers', intArg('--stalled-ms', 100), 30000)
    .action(workerAction);
}

async function workerAction(flags: WorkerFlags): Promise<void> {
  await loadPlugins(flags.plugin);
  await (await experiment()).runReproduceWorker({
    queue: { url: flags.queue!, name: flags.queueName },
    ...runSettingsOf(flags),
    timing: { lockDuration: flags.lockMs, stalledInterval: flags.stalledMs },
    onLog: (l) => process.stderr.write(`${l}\n`),
  });
}
