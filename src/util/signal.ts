/**
 * Cooperative stop on signals. The CLI calls `installStopHandlers()`; long loops call `stopRequested()`
 * between steps, which throws `StoppedBySignal` once a signal arrived, so the command unwinds (locks
 * released, progress bars stopped) and exits 128 + the signal's number.
 *  - SIGINT / SIGTERM: stop now (exit 130 / 143). All writers are crash-proof (util/atomic.ts), so
 *    stopping at any step boundary leaves the last complete checkpoint; bin/fewshot.js (the launcher)
 *    enforces the deadline: it SIGKILLs a child that has not stopped within a second (e.g. inside a long
 *    cpu-backend kernel, where no handler can run). The episodes since that checkpoint are trained again.
 *  - SIGUSR1: checkpoint, then stop (exit 138). A training finishes the step in progress, writes a
 *    checkpoint at that episode and stops, so a resumed run repeats nothing: for the end of a working
 *    session, or a batch scheduler's notice before preemption (SLURM: `--signal=USR1@120`). The launcher
 *    sets no deadline for it. An evaluation in progress runs to its end first (its result is written); a
 *    data preparation is abandoned as on SIGINT (no half-written cache); `fewshot worker` takes no new job
 *    and stops when the run in progress ends. SIGINT or SIGTERM after it still stops at once.
 */
export type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGUSR1';

/** The signal that asks a training to write a checkpoint at the current episode before it stops. */
export const CHECKPOINT_AND_STOP: StopSignal = 'SIGUSR1';

const SIGNAL_NUMBERS: Record<StopSignal, number> = { SIGINT: 2, SIGUSR1: 10, SIGTERM: 15 };

/** The shell's convention: a process ended by signal n exits 128 + n. */
export function exitCodeOf(signal: StopSignal): number {
  return 128 + SIGNAL_NUMBERS[signal];
}

export class StoppedBySignal extends Error {
  constructor(
    readonly signal: StopSignal,
    /** What was kept, e.g. "checkpoint at episode 7,250". */
    readonly detail?: string,
  ) {
    super(`stopped by ${signal}${detail ? ` (${detail})` : ''}`);
    this.name = 'StoppedBySignal';
  }
  get exitCode(): number {
    return exitCodeOf(this.signal);
  }
}

let received: StopSignal | undefined;
const listeners = new Set<(signal: StopSignal) => void>();

/** The stop signal received, if any (SIGINT/SIGTERM override an earlier SIGUSR1). */
export function receivedStopSignal(): StopSignal | undefined {
  return received;
}

/** Throw StoppedBySignal if a stop signal arrived since the handlers were installed. */
export function stopRequested(detail?: string): void {
  if (received) throw new StoppedBySignal(received, detail);
}

/** Called when a stop signal arrives, once per kind (e.g. to abort an in-flight prepare, or pass SIGUSR1 on to child processes). */
export function onStop(listener: (signal: StopSignal) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

const MESSAGES: Record<StopSignal, string> = {
  SIGINT: 'stopping at the next step',
  SIGTERM: 'stopping at the next step',
  SIGUSR1: 'a training in progress ends its step, writes a checkpoint there and stops (Ctrl-C stops at once)',
};

export function installStopHandlers(): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGUSR1'] as const) {
    process.on(signal, () => {
      // Repeats (the launcher passes on the signal a terminal already sent the whole group) change nothing; a stop
      // now (SIGINT/SIGTERM) overrides a checkpoint-then-stop (SIGUSR1), never the other way round.
      if (received && (received !== CHECKPOINT_AND_STOP || signal === CHECKPOINT_AND_STOP)) return;
      received = signal;
      process.stderr.write(`\n${signal} received: ${MESSAGES[signal]}\n`);
      for (const l of listeners) l(signal);
    });
  }
}
