import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/*
 * The PyTorch peer: Debian's python3-torch (1.13, CPU) run as a subprocess that speaks JSON lines
 * (bench/peer/torch_peer.py). It is a benchmark reference only, never a dependency of the toolkit.
 */

export const PEER_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../peer');
export const TORCH_PEER_SCRIPT = path.join(PEER_DIR, 'torch_peer.py');
export const PIL_PREPARE_SCRIPT = path.join(PEER_DIR, 'pil_prepare.py');
/**
 * libgomp's default lets idle OpenMP threads spin at every barrier. On this shared 2-core machine a spinning thread
 * whose partner lost its core burns the time the partner needs: measured here, torch's Conv-4 step at 32 px took
 * 750-970 ms with 2 threads vs 160-220 ms with 1; with PASSIVE, 2 threads took 220-340 ms. PASSIVE (sleep at
 * barriers) is the usual setting for shared machines, so the peer gets it (recorded in the report).
 */
export const PEER_OMP_WAIT_POLICY = process.env.OMP_WAIT_POLICY ?? 'PASSIVE';
const APT_PACKAGES = ['python3-torch', 'python3-pil'];
/** The allocators a careful PyTorch user tries (PyTorch's CPU performance guide recommends jemalloc or tcmalloc). */
export const ALLOCATOR_PACKAGES = ['libjemalloc2', 'libtcmalloc-minimal4'];

/**
 * How one peer process is started: its memory allocator and OpenMP wait policy (both process-wide, so one
 * process per setting). With glibc's default malloc every large tensor PyTorch frees goes back to the OS
 * (mmap threshold) and the next one page-faults in again; the tunables keep freed memory in the process.
 */
export interface PeerProcessSetting {
  /** e.g. `jemalloc+PASSIVE`. */
  id: string;
  allocator: 'glibc' | 'glibc-tuned' | 'jemalloc' | 'tcmalloc';
  /** OMP_WAIT_POLICY, or 'default' (unset: libgomp spins a while at barriers, then sleeps). */
  ompWaitPolicy: string;
  env: Record<string, string>;
}

export const GLIBC_TUNABLES = { MALLOC_MMAP_THRESHOLD_: '4294967296', MALLOC_TRIM_THRESHOLD_: '68719476736', MALLOC_TOP_PAD_: '1073741824' };
const PRELOADS: Record<'jemalloc' | 'tcmalloc', string[]> = {
  jemalloc: ['/usr/lib/x86_64-linux-gnu/libjemalloc.so.2', '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2', '/usr/lib/libjemalloc.so.2'],
  tcmalloc: ['/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4', '/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4', '/usr/lib/libtcmalloc_minimal.so.4'],
};

/** The allocator settings available on this machine (the preloads only where the library is installed). */
export function allocatorSettings(): { available: PeerProcessSetting['allocator'][]; missing: string[]; env: Record<string, Record<string, string>> } {
  const env: Record<string, Record<string, string>> = { glibc: {}, 'glibc-tuned': { ...GLIBC_TUNABLES } };
  const available: PeerProcessSetting['allocator'][] = ['glibc', 'glibc-tuned'];
  const missing: string[] = [];
  for (const name of ['jemalloc', 'tcmalloc'] as const) {
    const lib = PRELOADS[name].find((f) => existsSync(f));
    if (lib) {
      env[name] = { LD_PRELOAD: lib };
      available.push(name);
    } else missing.push(name);
  }
  return { available, missing, env };
}

export function processSetting(allocator: PeerProcessSetting['allocator'], ompWaitPolicy: string): PeerProcessSetting {
  const { env } = allocatorSettings();
  return { id: `${allocator}+${ompWaitPolicy}`, allocator, ompWaitPolicy, env: env[allocator] ?? {} };
}

/** Install the allocator libraries with apt-get when missing (best effort; the bench runs without them). */
export function installAllocators(log: (msg: string) => void): void {
  if (!allocatorSettings().missing.length) return;
  log(`installing peer allocators: apt-get install -y ${ALLOCATOR_PACKAGES.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const r = spawnSync('apt-get', ['install', '-y', ...ALLOCATOR_PACKAGES], { stdio: 'inherit', env });
  if (r.status !== 0) log(`apt-get install failed (exit ${r.status ?? r.error?.message}); the peer runs with the allocators present`);
}
const PROBE = 'import torch, numpy, PIL';

export interface PeerPython {
  /** Interpreter that imports torch, numpy and PIL. */
  python: string;
  /** What was done to get it: found, or installed with apt-get. */
  how: string;
}

function imports(python: string): boolean {
  const r = spawnSync(python, ['-c', PROBE], { stdio: 'ignore', timeout: 120_000 });
  return r.status === 0;
}

/**
 * Candidates in order: $BENCH_PYTHON, `python3` on PATH, /usr/bin/python3 (Debian's, where apt puts python3-torch;
 * a pyenv or venv python3 on PATH does not see it). When none imports torch and `install` is set, runs
 * `apt-get update && apt-get install -y python3-torch python3-pil` with its output shown, then probes again.
 */
export function findPeerPython(opts: { install: boolean; log: (msg: string) => void }): PeerPython | { error: string } {
  const candidates = [process.env.BENCH_PYTHON, 'python3', '/usr/bin/python3'].filter((c): c is string => !!c);
  for (const python of candidates) if (imports(python)) return { python, how: `found (${python} imports torch)` };
  if (!opts.install) return { error: `no python imports torch (tried ${candidates.join(', ')}); install with: apt-get install -y ${APT_PACKAGES.join(' ')}` };
  opts.log(`no python with torch found (tried ${candidates.join(', ')}); installing the peer: apt-get update && apt-get install -y ${APT_PACKAGES.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
  const install = update.status === 0 ? spawnSync('apt-get', ['install', '-y', ...APT_PACKAGES, ...ALLOCATOR_PACKAGES], { stdio: 'inherit', env }) : update;
  if (install.status !== 0)
    return { error: `apt-get failed (exit ${install.status ?? install.error?.message}); run as root or install ${APT_PACKAGES.join(' ')} yourself` };
  for (const python of ['/usr/bin/python3', ...candidates]) if (imports(python)) return { python, how: `installed with apt-get (${APT_PACKAGES.join(', ')})` };
  return { error: `installed ${APT_PACKAGES.join(' ')} but no python imports torch` };
}

export type PeerResponse = { ok: true; [key: string]: unknown } | { ok: false; error: string };

/**
 * A torch_peer.py process: requests are answered one at a time, in order. Between requests the process is
 * stopped (SIGSTOP), so no thread of it (OpenMP workers, torch's inter-op pool) can take CPU while the other side
 * or another peer setting is timed; `request` continues it (SIGCONT) for the request only.
 */
export class PeerProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending: ((line: string | undefined) => void)[] = [];
  private exited: string | undefined;
  private stopped = false;

  /**
   * `fixedThreads`: the one thread count this process will be asked for (a bench at a fixed --threads); OpenMP
   * and MKL are started with it. Without it their variables are removed, as they would fight
   * torch.set_num_threads, which the peer calls per request.
   */
  constructor(
    python: string,
    private readonly log: (msg: string) => void,
    readonly setting?: PeerProcessSetting,
    fixedThreads?: number,
  ) {
    const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1', OMP_WAIT_POLICY: PEER_OMP_WAIT_POLICY, ...(setting?.env ?? {}) };
    if (setting) {
      for (const k of Object.keys(GLIBC_TUNABLES)) if (!(k in setting.env)) delete env[k];
      if (!setting.env.LD_PRELOAD) delete env.LD_PRELOAD;
      if (setting.ompWaitPolicy === 'default') delete env.OMP_WAIT_POLICY;
      else env.OMP_WAIT_POLICY = setting.ompWaitPolicy;
    }
    delete env.OMP_NUM_THREADS;
    delete env.MKL_NUM_THREADS;
    if (fixedThreads !== undefined) {
      env.OMP_NUM_THREADS = String(fixedThreads);
      env.MKL_NUM_THREADS = String(fixedThreads);
    }
    this.child = spawn(python, [TORCH_PEER_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'], env });
    const lines = createInterface({ input: this.child.stdout });
    lines.on('line', (line) => this.pending.shift()?.(line));
    createInterface({ input: this.child.stderr }).on('line', (line) => this.log(`  ${line}`));
    this.child.on('exit', (code, signal) => {
      this.exited = `peer exited (code ${code}, signal ${signal})`;
      for (const resolve of this.pending.splice(0)) resolve(undefined);
    });
  }

  /** Freeze every thread of the process until the next request (see the class comment). */
  pause(): void {
    if (this.exited || this.stopped) return;
    this.child.kill('SIGSTOP');
    this.stopped = true;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  request(req: Record<string, unknown>): Promise<PeerResponse> {
    if (this.exited) return Promise.resolve({ ok: false, error: this.exited });
    if (this.stopped) {
      this.child.kill('SIGCONT');
      this.stopped = false;
    }
    return new Promise((resolve) => {
      this.pending.push((line) => {
        if (line === undefined) resolve({ ok: false, error: this.exited ?? 'peer closed' });
        else {
          try {
            resolve(JSON.parse(line) as PeerResponse);
          } catch {
            resolve({ ok: false, error: `peer wrote a line that is not JSON: ${line.slice(0, 200)}` });
          }
        }
      });
      this.child.stdin.write(`${JSON.stringify(req)}\n`);
    });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    if (this.stopped) {
      this.child.kill('SIGCONT');
      this.stopped = false;
    }
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end(`${JSON.stringify({ op: 'quit' })}\n`);
    const timer = setTimeout(() => this.child.kill('SIGTERM'), 10_000);
    await done;
    clearTimeout(timer);
  }
}
