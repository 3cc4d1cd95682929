import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { UserError } from '../../util/errors.ts';
import { crashPoint } from '../../util/fault.ts';
import { RunInUseError } from '../../util/lock.ts';
import { packageRoot } from '../../util/package-root.ts';
import { CHECKPOINT_AND_STOP, exitCodeOf, onStop, receivedStopSignal, StoppedBySignal } from '../../util/signal.ts';
import { RUN_IN_USE_EXIT_CODE } from './defaults.ts';
import type { ReproduceSettings, RunExecutor } from './reproduce.ts';

/** What a child `fewshot reproduce --run` needs besides the run: the settings, the table folder and the plugins. */
export interface ChildRunSettings extends ReproduceSettings {
  tables: string;
  plugins?: string[];
}

/**
 * The node arguments that start the fewshot CLI: this process's own when it is the CLI (the same loader and export
 * conditions), else the package's launcher.
 */
function cliEntry(): string[] {
  const self = process.argv[1] ?? '';
  if (/[\\/]cli[\\/]main\.[jt]s$/.test(self)) return [...process.execArgv, self];
  return [path.join(packageRoot(), 'bin', 'fewshot.js')];
}

/** The flags a child process gets to run one cell as this process would (data, backend, folders, plugins). */
function childArgs(s: ChildRunSettings): string[] {
  const args = ['--results', s.results, '--runs', s.runs, '--backend', s.backend, '--tables', s.tables];
  for (const [dataset, location] of Object.entries(s.data)) args.push('--data', `${dataset}=${location}`);
  if (s.cache) args.push('--cache', s.cache);
  if (s.testEpisodes !== undefined) args.push('--test-episodes', String(s.testEpisodes));
  for (const p of s.plugins ?? []) args.push('--plugin', p);
  return args;
}

/**
 * Runs each planned run in a child process (`fewshot reproduce <table> --run <key>`). A worker does so because the
 * training's synchronous compute would otherwise block its event loop and with it the renewal of its claim on the
 * job; side by side (`prefixOutput`), because tfjs has one engine per process. The child is tied to this process
 * through an IPC channel and exits when it goes away, so a killed parent leaves no orphan still writing results.
 * Side by side, a SIGUSR1 to this process is passed on to each child, which checkpoints and stops; it is held back
 * until the child has written its first line (its handlers are installed by then: a node process without a SIGUSR1
 * handler would open its debugger instead).
 */
export function childProcessExecutor(
  settings: ChildRunSettings,
  log: (l: string) => void,
  options: { env?: Record<string, string | undefined>; prefixOutput?: boolean } = {},
): RunExecutor {
  return (run) =>
    new Promise<void>((resolve, reject) => {
      // Planning with seeds = seed + 1 includes this run; the child re-plans from its own table file.
      const args = [...cliEntry(), 'reproduce', run.table, '--run', run.key, '--budget', run.budget, '--seeds', String(run.seed + 1), ...childArgs(settings)];
      const out = options.prefixOutput ? 'pipe' : 'inherit';
      const child = spawn(process.execPath, args, { stdio: ['ignore', out, out, 'ipc'], env: options.env ?? process.env });
      if (options.prefixOutput) {
        // Runs side by side: each line says which run it is from.
        for (const [stream, sink] of [
          [child.stdout, process.stdout],
          [child.stderr, process.stderr],
        ] as const) {
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
        if (code === exitCodeOf(CHECKPOINT_AND_STOP))
          return reject(
            new StoppedBySignal(
              CHECKPOINT_AND_STOP,
              `run ${run.key} stopped at a step boundary with its newest checkpoint written; the same command resumes it`,
            ),
          );
        if (code === RUN_IN_USE_EXIT_CODE) {
          const dir = path.join(settings.runs, run.resultDir);
          return reject(
            new RunInUseError(`run folder ${dir} is in use by another process`, 'wait for it to finish; the same command then fills its cells', dir),
          );
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
 * How many runs `reproduce` runs side by side by default. Measured on a 2-core machine (wasm, Conv-4 32 px, the CPU
 * budget of the tables): two runs at one thread each train 1.21x (ProtoNet+SLA) to 1.42x (ProtoNet) more episodes
 * per second than one run at two threads — a single training leaves cores idle at every hand-off between its
 * threads. So with the wasm backend (or auto, which is wasm where no native tfjs is installed) the default is 2 runs
 * of one thread; more cores are not assumed to scale the same way without a measurement, and native backends
 * thread themselves.
 */
export function defaultJobs(backend: string): number {
  // wasm-onednn too: oneDNN takes as many threads as the wasm pool, so each side-by-side run (FEWSHOT_WASM_THREADS=1)
  // keeps about one core busy.
  return (backend === 'wasm' || backend === 'wasm-onednn' || backend === 'auto') && cpus().length >= 2 && !process.env.FEWSHOT_WASM_THREADS ? 2 : 1;
}
