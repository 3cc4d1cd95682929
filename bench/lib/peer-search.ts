/**
 * The peer at its best, per workload: a greedy search over the settings a careful PyTorch user tries, each a
 * short screening run, then the full timing of the winner.
 *
 *   1. allocator: glibc malloc, glibc with tunables that keep freed memory, jemalloc and tcmalloc (LD_PRELOAD,
 *      where installed), each with OMP_WAIT_POLICY=PASSIVE, 2 threads, contiguous (NCHW) tensors;
 *   2. memory format: the best of 1 with channels_last, kept if faster;
 *   3. OpenMP wait policy: the best so far with libgomp's default (spin, then sleep) instead of PASSIVE;
 *   4. threads: the best so far with 1 thread (only when the bench searches threads; at a fixed --threads, every
 *      setting runs at that count, OMP_NUM_THREADS included, and no step switches it).
 * The winner is then timed under the full step policy; that median is the one the ratio uses. Every peer process
 * is stopped (SIGSTOP) except while it answers a request, and all are closed before the next workload, so no peer
 * thread runs while ours (or another peer setting) is timed.
 */
import { hostBusyFraction } from './machine.ts';
import { allocatorSettings, PEER_OMP_WAIT_POLICY, PeerProcess, processSetting, type PeerProcessSetting, type PeerResponse } from './peer.ts';
import type { StepPolicy } from './policy.ts';
import { summarize } from './stats.ts';

export interface PeerSetting {
  process: PeerProcessSetting;
  channelsLast: boolean;
  threads: number;
}

export const settingId = (s: PeerSetting) =>
  `${s.process.allocator}, ${s.channelsLast ? 'channels_last' : 'contiguous'}, OMP_WAIT_POLICY=${s.process.ompWaitPolicy}, ${s.threads} thread${s.threads > 1 ? 's' : ''}`;

export interface ScreenEntry {
  setting: string;
  stage: 'allocator' | 'memory format' | 'wait policy' | 'threads';
  medianMs: number | null;
  n: number;
  error?: string;
}

export interface PeerSearchResult {
  best: PeerSetting | undefined;
  bestSettingId: string | undefined;
  /** The full-policy run of the winning setting. */
  full: PeerResponse | undefined;
  screen: ScreenEntry[];
  hostBusyBeforeFull: number | null;
  /** hello of every process started (which allocator really loaded, versions). */
  processes: Record<string, unknown>[];
}

/** Screening: one warm-up step, then 2–8 steps within a second; enough to rank settings that differ by > 10 %. */
export const SCREEN_POLICY: StepPolicy = { warmupSteps: 1, warmupSeconds: 0, minSteps: 2, maxSteps: 8, budgetSeconds: 1 };

export async function searchPeer(
  python: string,
  request: Record<string, unknown>,
  policy: StepPolicy,
  log: (msg: string) => void,
  opts: { screen: boolean; threads: number[]; memoryFormat?: boolean } = { screen: true, threads: [2, 1] },
): Promise<PeerSearchResult> {
  const processes = new Map<string, PeerProcess>();
  const hellos: Record<string, unknown>[] = [];
  const screen: ScreenEntry[] = [];
  const getProcess = async (setting: PeerProcessSetting): Promise<PeerProcess> => {
    let p = processes.get(setting.id);
    if (!p) {
      // At a fixed thread count (one entry) the process starts with it (OMP_NUM_THREADS) and never switches.
      p = new PeerProcess(python, log, setting, opts.threads.length === 1 ? opts.threads[0] : undefined);
      processes.set(setting.id, p);
      const hello = await p.request({ op: 'hello' });
      hellos.push({
        setting: setting.id,
        ...(hello.ok
          ? { allocatorLoaded: hello.allocatorLoaded, ompWaitPolicy: hello.ompWaitPolicy, mallocTunables: hello.mallocTunables }
          : { error: hello.error }),
      });
      if (hello.ok && hello.allocatorLoaded !== setting.allocator.replace('-tuned', ''))
        log(`  peer ${setting.id}: allocator loaded is ${String(hello.allocatorLoaded)}`);
      p.pause();
    }
    return p;
  };
  const run = async (s: PeerSetting, pol: StepPolicy): Promise<PeerResponse> => {
    const p = await getProcess(s.process);
    const res = await p.request({ ...request, threads: s.threads, channelsLast: s.channelsLast, policy: pol });
    p.pause();
    return res;
  };
  const median = (r: PeerResponse) => (r.ok ? summarize(r.timesMs as number[]).median : Infinity);
  try {
    const waitPolicy = PEER_OMP_WAIT_POLICY;
    let best: PeerSetting = { process: processSetting('glibc-tuned', waitPolicy), channelsLast: false, threads: opts.threads[0] };
    if (opts.screen) {
      let bestMs = Infinity;
      const tryOne = async (s: PeerSetting, stage: ScreenEntry['stage']) => {
        const r = await run(s, SCREEN_POLICY);
        const ms = median(r);
        screen.push({
          setting: settingId(s),
          stage,
          medianMs: Number.isFinite(ms) ? Math.round(ms * 10) / 10 : null,
          n: r.ok ? (r.timesMs as number[]).length : 0,
          ...(r.ok ? {} : { error: r.error }),
        });
        log(`  screen ${settingId(s)}: ${Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : `FAILED ${r.ok ? '' : r.error}`}`);
        if (ms < bestMs) {
          bestMs = ms;
          best = s;
        }
      };
      for (const allocator of allocatorSettings().available)
        await tryOne({ process: processSetting(allocator, waitPolicy), channelsLast: false, threads: opts.threads[0] }, 'allocator');
      // (Not for workloads without images, e.g. the heads on embeddings.)
      if (opts.memoryFormat !== false) await tryOne({ ...best, channelsLast: true }, 'memory format');
      // A wait policy the user set themselves is kept as it is.
      if (!process.env.OMP_WAIT_POLICY) await tryOne({ ...best, process: processSetting(best.process.allocator, 'default') }, 'wait policy');
      for (const t of opts.threads.slice(1)) await tryOne({ ...best, threads: t }, 'threads');
      if (!Number.isFinite(bestMs))
        return { best: undefined, bestSettingId: undefined, full: screenFailure(screen), screen, hostBusyBeforeFull: null, processes: hellos };
    }
    // Only the winner's process stays; the others are closed so their memory is back before the full run.
    for (const [id, p] of processes) if (id !== best.process.id) await p.close();
    const hostBusyBeforeFull = await hostBusyFraction();
    const full = await run(best, policy);
    log(`  peer best (${settingId(best)}): ${full.ok ? `median ${median(full).toFixed(1)} ms` : `FAILED: ${full.error}`}`);
    return { best, bestSettingId: settingId(best), full, screen, hostBusyBeforeFull, processes: hellos };
  } finally {
    for (const p of processes.values()) await p.close();
  }
}

function screenFailure(screen: ScreenEntry[]): PeerResponse {
  return { ok: false, error: screen.find((s) => s.error)?.error ?? 'every peer setting failed' };
}
