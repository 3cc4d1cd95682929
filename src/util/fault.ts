/**
 * Fault injection for the crash-safety tests: named crash points inside the writers. With
 * FEWSHOT_CRASH_AT=<point>[:<nth>] in the environment, the nth time (default 1st) the process
 * reaches `crashPoint(<point>)` it kills itself with SIGKILL — no handler, no flush, exactly what a
 * power cut or `kill -9` does at that instant. Without the variable a crash point costs one lookup.
 * `<point>[:<nth>]@<SIGNAL>` sends that signal instead (e.g. `@SIGUSR1`, to stop at a known episode).
 * `<point>[:<nth>]@<ERRNO>` (ENOSPC, EDQUOT, EROFS, EACCES) throws the error a write there would get from a full,
 * over-quota, read-only or forbidden file system, naming the file the writer was writing.
 */
const hits = new Map<string, number>();

/** The file-system errors a crash point can inject, with the messages Node gives them. */
const INJECTABLE_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
};

function target(): { point: string; nth: number; signal?: NodeJS.Signals; errno?: string } | undefined {
  const spec = process.env.FEWSHOT_CRASH_AT;
  if (!spec) return undefined;
  const m = /^([A-Za-z0-9_.:/-]+?)(?::(\d+))?(?:@(SIG[A-Z0-9]+|E[A-Z]+))?$/.exec(spec);
  if (!m || (m[3]?.startsWith('E') && !(m[3] in INJECTABLE_ERRORS))) {
    throw new Error(`FEWSHOT_CRASH_AT must be <point>[:<nth>][@<SIGNAL>|@${Object.keys(INJECTABLE_ERRORS).join('|@')}], got "${spec}"`);
  }
  const at = m[3];
  return { point: m[1], nth: m[2] ? Number(m[2]) : 1, ...(at?.startsWith('E') ? { errno: at } : { signal: (at ?? 'SIGKILL') as NodeJS.Signals }) };
}

/** Every crash point reached so far in this process, with counts (FEWSHOT_CRASH_LIST=1 prints them at exit). */
export function crashPointsReached(): ReadonlyMap<string, number> {
  return hits;
}

/** `file`: what the writer is writing at this point (named by an injected file-system error). */
export function crashPoint(point: string, file?: string): void {
  const n = (hits.get(point) ?? 0) + 1;
  hits.set(point, n);
  const t = target();
  if (!t || t.point !== point || t.nth !== n) return;
  if (t.errno) {
    const err = new Error(`${t.errno}: ${INJECTABLE_ERRORS[t.errno]}, write${file ? ` '${file}'` : ''}`) as NodeJS.ErrnoException;
    Object.assign(err, { code: t.errno, syscall: 'write', ...(file ? { path: file } : {}) });
    throw err;
  }
  process.kill(process.pid, t.signal!);
}

if (process.env.FEWSHOT_CRASH_LIST) {
  // Lets the fault-injection test discover which points a command passes through, and how often.
  process.on('exit', () => process.stderr.write(`crash-points: ${JSON.stringify(Object.fromEntries(hits))}\n`));
}
