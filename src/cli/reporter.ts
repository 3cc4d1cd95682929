import type { ExperimentHooks, ExperimentReporter } from '../experiment/index.ts';
import { startProgress } from '../util/progress.ts';
import { onStop, StoppedBySignal } from '../util/signal.ts';

/** The CLI's reporter: status lines and progress bars (or periodic lines in logs) on stderr. */
export const stderrReporter: ExperimentReporter = {
  log: (line) => process.stderr.write(`${line}\n`),
  progress: (label, total, start) => startProgress(label, total, start),
};

/**
 * Hooks for one command: the stderr reporter and an abort signal raised by Ctrl-C (prepare then removes
 * its temp folder and the previous cache, if any, stays). Call `done()` when the command ends.
 */
export function cliHooks(): ExperimentHooks & { done(): void } {
  const abort = new AbortController();
  const offStop = onStop((signal) => abort.abort(new StoppedBySignal(signal)));
  return { reporter: stderrReporter, signal: abort.signal, done: offStop };
}
