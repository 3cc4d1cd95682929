import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, info?: Record<string, string | number>): void;
  stop(): void;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/**
 * Progress with ETA on stderr: a live bar on a terminal; in logs (CI, `nohup`), a line every
 * `intervalSeconds` so long runs still show they are alive and when they will end.
 */
export function startProgress(label: string, total: number, intervalSeconds = 20): Progress {
  const t0 = performance.now();
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} {percentage}% | ETA {eta_formatted} | {info}`, stream: process.stderr, hideCursor: true, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { info: '' });
    return {
      update: (done, info) => bar.update(done, { info: info ? Object.entries(info).map(([k, v]) => `${k} ${v}`).join(' ') : '' }),
      stop: () => bar.stop(),
    };
  }
  let lastPrint = 0;
  let lastDone = 0;
  const print = (done: number, info?: Record<string, string | number>) => {
    const elapsed = (performance.now() - t0) / 1000;
    const eta = done > 0 ? (elapsed / done) * (total - done) : Infinity;
    const extra = info ? ' ' + Object.entries(info).map(([k, v]) => `${k} ${v}`).join(' ') : '';
    process.stderr.write(`${label}: ${done}/${total} (${((100 * done) / total).toFixed(1)}%) elapsed ${formatSeconds(elapsed)} ETA ${formatSeconds(eta)}${extra}\n`);
    lastPrint = performance.now();
  };
  return {
    update: (done, info) => {
      lastDone = done;
      if (performance.now() - lastPrint > intervalSeconds * 1000 || done === total) print(done, info);
    },
    stop: () => {
      if (lastDone !== total) print(lastDone);
    },
  };
}
