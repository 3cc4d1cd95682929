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
