import { UserError, NumericalError } from '../util/errors.ts';
import { diskErrorOf } from '../util/fs-errors.ts';
import { exitWithParent } from '../util/orphan.ts';
import { packageInfo } from '../util/package-root.ts';
import { FEWSHOT_API_VERSION } from '../util/plugin-origin.ts';
import { startProgress } from '../util/progress.ts';
import { exitCodeOf, installStopHandlers, onStop, receivedStopSignal, StoppedBySignal } from '../util/signal.ts';
import type { ExperimentHooks } from './experiment.ts';
import type { ExperimentReporter } from './reporter.ts';
import { describeUnexpectedError } from './unexpected-error.ts';

/*
 * What a front end (the CLI; a server or a script that runs commands) needs around the experiment calls: a
 * reporter on stderr, hooks that Ctrl-C interrupts, the process's stop signals and parent watch, and what to tell
 * the user (and which exit code) for an error a call threw. Loads no tfjs, data or table code, so a front end can
 * import it before parsing its arguments.
 */

/** The package version and the plugin API version, as `--version` prints them. */
export function versionLine(): string {
  return `fewshot ${packageInfo().version} (plugin API ${FEWSHOT_API_VERSION})`;
}

/** Status lines and progress bars (or periodic lines in logs) on stderr. */
export const stderrReporter: ExperimentReporter = {
  log: (line) => process.stderr.write(`${line}\n`),
  progress: (label, total, start) => startProgress(label, total, start),
};

/**
 * Hooks for one command: the reporter and an abort signal raised by Ctrl-C (prepare then removes its temp folder
 * and the previous cache, if any, stays). Call `done()` when the command ends.
 */
export function interruptibleHooks(reporter: ExperimentReporter = stderrReporter): ExperimentHooks & { done(): void } {
  const abort = new AbortController();
  const offStop = onStop((signal) => abort.abort(new StoppedBySignal(signal)));
  return { reporter, signal: abort.signal, done: offStop };
}

/** Stop signals become a clean stop at the next step boundary (util/signal.ts); the process exits with its parent. */
export function superviseProcess(): void {
  installStopHandlers();
  exitWithParent();
}

/** Resolves at the first stop signal (SIGINT, SIGTERM, SIGUSR1): a server's "run until stopped". */
export function untilStopped(): Promise<void> {
  return new Promise<void>((resolve) => {
    if (receivedStopSignal()) return resolve();
    onStop(() => resolve());
  });
}

/** What a user reads for an error a command ended with, and the exit code (docs/cli.md). */
export interface Failure {
  text: string;
  code: number;
}

/**
 * After a stop signal any error (StoppedBySignal, an aborted prepare's AbortError) is the stop itself: the line that
 * says so and the signal's exit code (130, 143, 138). Undefined when no stop signal came.
 */
export function stopFailure(err: unknown): Failure | undefined {
  const signal = err instanceof StoppedBySignal ? err.signal : receivedStopSignal();
  if (!signal) return undefined;
  const kept = err instanceof StoppedBySignal && err.detail ? `, ${err.detail}` : '';
  return {
    text: `stopped by ${signal}${kept}; every checkpoint, result and cache on disk is complete (a resumed run continues from the last checkpoint)\n`,
    code: exitCodeOf(signal),
  };
}

/**
 * Bad input (a UserError, a full or read-only disk) → 2 with `error:` and `fix:` lines; a NumericalError → 3;
 * anything else → 1 (a bug) or 2 (a loaded plugin threw), with a short stack.
 */
export async function describeFailure(err: unknown): Promise<Failure> {
  if (err instanceof UserError) return { text: `error: ${err.problem}\n  fix: ${err.fix}\n`, code: 2 };
  if (err instanceof NumericalError) return { text: `numerical error: ${err.message}\n`, code: 3 };
  // A full, read-only or forbidden disk is the machine's state, not a bug: the folder and the cure, exit 2.
  const disk = diskErrorOf(err);
  if (disk) return { text: `error: ${disk.problem}\n  fix: ${disk.fix}\n`, code: 2 };
  return describeUnexpectedError(err);
}
