import type { ProgressStart, UncountedTime } from '../util/progress.ts';

export type { ProgressStart, UncountedTime };

/**
 * How the experiment layer tells its caller what it is doing. The layer never prints: the CLI passes a
 * reporter that writes to stderr (with progress bars), a script can collect lines, tests pass `silentReporter`.
 */
export interface ProgressHandle {
  /** `uncounted`: time that did not advance `done` (validations), so the ETA leaves it out of the rate. */
  update(done: number, info?: Record<string, string | number>, uncounted?: UncountedTime): void;
  stop(): void;
}

/** Where an experiment reports: one-line status messages and counted progress phases. */
export interface ExperimentReporter {
  /** A one-line status message (`backend: …`, `training … → runs/x`, `resumed from episode 40`). */
  log(line: string): void;
  /** A counted phase (`decode`, `train`, `eval`, `episodes`): updated as it advances, stopped at the end. */
  progress(label: string, total: number, start?: ProgressStart): ProgressHandle;
}

const noProgress: ProgressHandle = { update: () => {}, stop: () => {} };

/** A reporter that prints nothing. */
export const silentReporter: ExperimentReporter = { log: () => {}, progress: () => noProgress };

/** A reporter that keeps the log lines (for tests and scripts). */
export function collectingReporter(): ExperimentReporter & { lines: string[] } {
  const lines: string[] = [];
  return { lines, log: (l) => lines.push(l), progress: () => noProgress };
}
