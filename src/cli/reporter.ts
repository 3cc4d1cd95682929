import type { ExperimentHooks, ExperimentReporter } from '../experiment/index.ts';
import { startProgress } from '../util/progress.ts';

/** The CLI's reporter: status lines and progress bars (or periodic lines in logs) on stderr. */
export const stderrReporter: ExperimentReporter = {
  log: (line) => process.stderr.write(`${line}\n`),
  progress: (label, total) => startProgress(label, total),
};

/**
 * Hooks for one command: the stderr reporter and an abort signal raised by Ctrl-C (prepare then removes
 * its temp folder and the previous cache, if any, stays). Call `done()` when the command ends.
 */
export function cliHooks(): ExperimentHooks & { done(): void } {
  const abort = new AbortController();
  const onSigint = () => abort.abort(new Error('interrupted (Ctrl-C)'));
  process.once('SIGINT', onSigint);
  return { reporter: stderrReporter, signal: abort.signal, done: () => process.off('SIGINT', onSigint) };
}
