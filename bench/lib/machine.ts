import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';

export interface MachineInfo {
  cpuModel: string;
  logicalCpus: number;
  /** CPU flags that matter for the kernels (SIMD width). */
  cpuSimd: string[];
  totalMemoryGiB: number;
  kernel: string;
  node: string;
  tfjsCore: string;
  /** 1-, 5-, 15-minute load averages when the suite started: the machine is shared, so numbers move with it. */
  loadAverageAtStart: number[];
  git: { commit: string | null; dirtyFiles: number | null };
}

function cpuInfo(): { model: string; simd: string[] } {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const model = /^model name\s*:\s*(.+)$/m.exec(text)?.[1].trim() ?? 'unknown';
    const flags = /^flags\s*:\s*(.+)$/m.exec(text)?.[1].split(/\s+/) ?? [];
    return { model, simd: flags.filter((f) => /^(sse4_2|avx|avx2|fma|avx512f|avx512_vnni|avx_vnni)$/.test(f)) };
  } catch {
    return { model: os.cpus()[0]?.model ?? 'unknown', simd: [] };
  }
}

function git(args: string[]): string | null {
  // --no-optional-locks: read only, never touches the index another engineer may be using.
  const r = spawnSync('git', ['--no-optional-locks', ...args], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

export function machineInfo(): MachineInfo {
  const cpu = cpuInfo();
  const status = git(['status', '--porcelain']);
  return {
    cpuModel: cpu.model,
    logicalCpus: os.cpus().length,
    cpuSimd: cpu.simd,
    totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    tfjsCore: tf.version_core,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    git: { commit: git(['rev-parse', 'HEAD']), dirtyFiles: status === null ? null : status.split('\n').filter(Boolean).length },
  };
}

export function loadAverage(): number[] {
  return os.loadavg().map((x) => Math.round(x * 100) / 100);
}

export function rssBytes(): number {
  return process.memoryUsage.rss();
}

function cpuTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = line[3] + (line[4] ?? 0);
  const total = line.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/**
 * What the host is doing right before a side is timed: the fraction of all CPUs busy over `ms` (from /proc/stat;
 * null where it is not readable). With the bench's own processes idle or stopped, this is other users' load.
 */
export async function hostBusyFraction(ms = 500): Promise<number | null> {
  try {
    const a = cpuTicks();
    await new Promise((r) => setTimeout(r, ms));
    const b = cpuTicks();
    return b.total > a.total ? Math.round(((b.busy - a.busy) / (b.total - a.total)) * 100) / 100 : null;
  } catch {
    return null;
  }
}

/**
 * Make `tf.profile` report each kernel's CPU time (user + system of this process) instead of its wall time:
 * tf.profile times kernels through `backend.time()`, and on a machine shared with other work wall time
 * measures the neighbours too. It is the whole process's CPU time, so work a kernel hands to wasm threads counts.
 */
export function timeKernelsByCpu(): void {
  const backend = tf.backend() as unknown as { time(f: () => void): Promise<{ kernelMs: number }> };
  backend.time = async (f) => {
    const c0 = process.cpuUsage();
    f();
    const c = process.cpuUsage(c0);
    return { kernelMs: (c.user + c.system) / 1000 };
  };
}
