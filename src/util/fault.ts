/**
 * Fault injection for the crash-safety tests: named crash points inside the writers. With
 * FEWSHOT_CRASH_AT=<point>[:<nth>] in the environment, the nth time (default 1st) the process
 * reaches `crashPoint(<point>)` it kills itself with SIGKILL — no handler, no flush, exactly what a
 * power cut or `kill -9` does at that instant. Without the variable a crash point costs one lookup.
 * `<point>[:<nth>]@<SIGNAL>` sends that signal instead (e.g. `@SIGUSR1`, to stop at a known episode).
 */
const hits = new Map<string, number>();

function target(): { point: string; nth: number; signal: NodeJS.Signals } | undefined {
  const spec = process.env.FEWSHOT_CRASH_AT;
  if (!spec) return undefined;
  const m = /^([A-Za-z0-9_.:/-]+?)(?::(\d+))?(?:@(SIG[A-Z0-9]+))?$/.exec(spec);
  if (!m) throw new Error(`FEWSHOT_CRASH_AT must be <point>[:<nth>][@<SIGNAL>], got "${spec}"`);
  return { point: m[1], nth: m[2] ? Number(m[2]) : 1, signal: (m[3] ?? 'SIGKILL') as NodeJS.Signals };
}

/** Every crash point reached so far in this process, with counts (FEWSHOT_CRASH_LIST=1 prints them at exit). */
export function crashPointsReached(): ReadonlyMap<string, number> {
  return hits;
}

export function crashPoint(point: string): void {
  const n = (hits.get(point) ?? 0) + 1;
  hits.set(point, n);
  const t = target();
  if (t && t.point === point && t.nth === n) process.kill(process.pid, t.signal);
}

if (process.env.FEWSHOT_CRASH_LIST) {
  // Lets the fault-injection test discover which points a command passes through, and how often.
  process.on('exit', () => process.stderr.write(`crash-points: ${JSON.stringify(Object.fromEntries(hits))}\n`));
}
