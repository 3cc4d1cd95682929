/**
 * Cooperative stop on SIGINT/SIGTERM. The CLI calls `installStopHandlers()`; long loops call
 * `stopRequested()` between steps, which throws `StoppedBySignal` once a signal arrived, so the
 * command unwinds (locks released, progress bars stopped) and exits 130 (SIGINT) or 143 (SIGTERM).
 * All writers are crash-proof (util/atomic.ts), so stopping at any step boundary leaves the last
 * complete checkpoint. bin/fewshot.js (the launcher) enforces the deadline: it SIGKILLs a child that
 * has not stopped within a second (e.g. inside a long cpu-backend kernel, where no handler can run).
 */
export class StoppedBySignal extends Error {
  constructor(readonly signal: 'SIGINT' | 'SIGTERM') {
    super(`stopped by ${signal}`);
    this.name = 'StoppedBySignal';
  }
  get exitCode(): number {
    return this.signal === 'SIGINT' ? 130 : 143;
  }
}

let received: 'SIGINT' | 'SIGTERM' | undefined;
const listeners = new Set<(signal: 'SIGINT' | 'SIGTERM') => void>();

/** The stop signal received, if any. */
export function receivedStopSignal(): 'SIGINT' | 'SIGTERM' | undefined {
  return received;
}

/** Throw StoppedBySignal if SIGINT/SIGTERM arrived since the handlers were installed. */
export function stopRequested(): void {
  if (received) throw new StoppedBySignal(received);
}

/** Called once when a stop signal arrives (e.g. to abort an in-flight prepare). */
export function onStop(listener: (signal: 'SIGINT' | 'SIGTERM') => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function installStopHandlers(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      // Repeats (the launcher passes on the signal a terminal already sent the whole group) change nothing.
      if (received) return;
      received = signal;
      process.stderr.write(`\n${signal} received: stopping at the next step\n`);
      for (const l of listeners) l(signal);
    });
  }
}
