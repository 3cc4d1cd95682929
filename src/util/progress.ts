import cliProgress from 'cli-progress';

/**
 * Time inside the elapsed time that did not advance the count, and the like still to come: a training's
 * validations (minutes each, every few thousand episodes). The ETA then takes the rate from the counted
 * work alone and adds the time still to come; otherwise a validation just after a resume makes the rate
 * several times too slow, and a rate taken before the first one leaves them out.
 */
export interface UncountedTime {
  /** Seconds of the elapsed time spent outside the counted units. */
  spentSeconds: number;
  /** Estimated seconds of such work still to come. */
  pendingSeconds: number;
}

export interface Progress {
  update(done: number, info?: Record<string, string | number>, uncounted?: UncountedTime): void;
  stop(): void;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/** Where a counted phase began, when its handle is made after the work started (the ETA needs both). */
export interface ProgressStart {
  /** Units already done before this process started (a resumed run's episode). */
  from?: number;
  /** `performance.now()` when this process started on the work. */
  startedAt?: number;
}

/**
 * The seconds left at the rate seen so far: `elapsed` seconds did `done - from` units (a resumed run's
 * earlier units were not done by this process, and counting them would make the ETA too short).
 */
export function etaSeconds(elapsed: number, done: number, total: number, from = 0): number {
  const did = done - from;
  return did > 0 ? (elapsed / did) * (total - done) : Infinity;
}

/**
 * Progress with ETA on stderr: a live bar on a terminal; in logs (CI, `nohup`), a line every
 * `intervalSeconds` so long runs still show they are alive and when they will end. `start` places the
 * clock and the count where the work began when the handle is made later (training makes it at its first
 * report, so that a run refused before training prints nothing).
 */
export function startProgress(
  label: string,
  total: number,
  start: ProgressStart = {},
  intervalSeconds = 20,
  write: (line: string) => void = (line) => process.stderr.write(line),
): Progress {
  const t0 = start.startedAt ?? performance.now();
  const from = start.from ?? 0;
  if (process.stderr.isTTY) {
    // The bar's ETA comes from the rate between its updates, so it needs only the starting count.
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} {percentage}% | ETA {eta_formatted} | {info}`, stream: process.stderr, hideCursor: true, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, from, { info: '' });
    return {
      update: (done, info) =>
        bar.update(done, {
          info: info
            ? Object.entries(info)
                .map(([k, v]) => `${k} ${v}`)
                .join(' ')
            : '',
        }),
      stop: () => bar.stop(),
    };
  }
  let lastPrint = -Infinity; // the first update prints at once
  let lastDone = 0;
  let uncounted: UncountedTime = { spentSeconds: 0, pendingSeconds: 0 };
  const print = (done: number, info?: Record<string, string | number>) => {
    const elapsed = (performance.now() - t0) / 1000;
    const eta = etaSeconds(elapsed - uncounted.spentSeconds, done, total, from) + uncounted.pendingSeconds;
    const extra = info
      ? ' ' +
        Object.entries(info)
          .map(([k, v]) => `${k} ${v}`)
          .join(' ')
      : '';
    write(`${label}: ${done}/${total} (${((100 * done) / total).toFixed(1)}%) elapsed ${formatSeconds(elapsed)} ETA ${formatSeconds(eta)}${extra}\n`);
    lastPrint = performance.now();
  };
  return {
    update: (done, info, time) => {
      lastDone = done;
      if (time) uncounted = time;
      if (performance.now() - lastPrint > intervalSeconds * 1000 || done === total) print(done, info);
    },
    stop: () => {
      if (lastDone !== total) print(lastDone);
    },
  };
}
