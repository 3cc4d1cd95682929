import { promises as fs } from 'node:fs';
import path from 'node:path';
import { portableValue } from '../../src/util/portable-path.ts';
import { writeFileAtomic } from '../../src/util/atomic.ts';
import type { TimingSummary } from './stats.ts';

/** One side's timing of a train/eval workload. */
export type SideResult =
  | {
      ok: true;
      threads: number;
      /** Ours: the engine that ran (backend, oneDNN version, ISA and threads, wasm threads). */
      engine?: string;
      msPerEpisode: TimingSummary;
      warmupMs: number[];
      /** Live tfjs tensors before/after (ours only): equal means no leak. */
      numTensorsBefore?: number;
      numTensorsAfter?: number;
      rssMiB?: number;
    }
  | { ok: false; error: string };

export interface AgreementCheck {
  what: string;
  ours: number | null;
  peer: number | null;
  /** |ours − peer| / max(|ours|, |peer|) of the compared quantity. */
  relDiff: number | null;
  agrees: boolean | null;
  note?: string;
}

export interface StepWorkloadResult {
  id: string;
  kind: 'train' | 'eval';
  /** The thread count both sides ran at (--threads): ours' wasm and oneDNN threads, the peer's torch threads. */
  threads: number;
  method: string;
  imageSize: number;
  way: number;
  shot: number;
  query: number;
  /** Images through the backbone per episode (support + query, ×4 with SLA). */
  backbone: string;
  /** The head's options (MetaOptNet: C or lambda, label smoothing), the same on both sides. */
  headConfig?: Record<string, unknown>;
  imagesPerEpisode: number;
  loadAverageAtStart: number[];
  /** Fraction of all CPUs busy (other users) in the half second before each side was timed. */
  hostBusyBefore: { ours: number | null; peer: number | null };
  ours: SideResult;
  /** Ours on the plain wasm engine, timed beside (--with-wasm). */
  oursWasm?: SideResult;
  /** `best`: the peer's fastest setting, timed under the full policy. */
  peer: Record<string, SideResult>;
  /** Which setting that was (allocator, memory format, OpenMP wait policy, threads). */
  peerSetting: string | null;
  /** The screening runs that chose it. */
  peerScreen: unknown[];
  peerProcesses: unknown[];
  /** peer median ms / ours median ms: > 1 means we are faster. `best`: ours; `wasm`: ours on plain wasm. */
  ratio: Record<string, number | null>;
  check: AgreementCheck;
  /** The same check for ours on plain wasm (--with-wasm). */
  checkWasm?: AgreementCheck;
}

/** A head workload (bench/lib/heads.ts): the same timing fields as a step workload, on embeddings. */
export interface HeadWorkloadResult
  extends Pick<
    StepWorkloadResult,
    | 'id'
    | 'threads'
    | 'loadAverageAtStart'
    | 'hostBusyBefore'
    | 'ours'
    | 'oursWasm'
    | 'peer'
    | 'peerSetting'
    | 'peerScreen'
    | 'peerProcesses'
    | 'ratio'
    | 'check'
    | 'checkWasm'
  > {
  kind: 'head';
  head: string;
  way: number;
  shot: number;
  query: number;
  rotations: number;
  dim: number;
  dualVariables: number;
  /** Interior-point iterations per step of the peer's SVM solve. */
  peerSolverIterations?: number[];
}

export interface BenchReport {
  format: 'fewshot-bench';
  formatVersion: 3;
  createdAt: string;
  mode: 'full' | 'quick';
  /** The thread counts every timed workload ran at, both sides (--threads). */
  threads: number[];
  only: string[] | null;
  wallSeconds: number;
  machine: Record<string, unknown>;
  ours: Record<string, unknown>;
  peer: Record<string, unknown>;
  policy: Record<string, unknown>;
  workloads: Record<string, unknown>[];
  notes: string[];
  /**
   * Ids of the selected workloads not measured yet: present (and non-empty) only in the partial file a run
   * rewrites after each workload, so a bench stopped half-way still leaves what it measured.
   */
  pending?: string[];
}

/**
 * `<out>/bench-<date>[-quick]-t<threads>.json` plus `<out>/latest.json`, both atomically; returns the dated path.
 * The default out folder is results-local/bench (ignored by git, like `fewshot run`'s results), so a bench never
 * dirties the tree; a run meant for the repository is written with `--out results/bench` and committed by hand.
 * A report with `pending` workloads goes to `bench-<date>….partial.json` only (latest.json stays the last
 * complete run); the complete report replaces it.
 */
export async function writeReport(outDir: string, report: BenchReport): Promise<string> {
  const stamp = report.createdAt.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  const base = path.join(outDir, `bench-${stamp}${report.mode === 'quick' ? '-quick' : ''}-t${report.threads.join('+')}`);
  // no absolute path of this machine in a committed report (dataset folders, temp folders, executables)
  const text = `${JSON.stringify(portableValue(report), null, 2)}\n`;
  await fs.mkdir(outDir, { recursive: true });
  if (report.pending?.length) {
    await writeFileAtomic(`${base}.partial.json`, text);
    return `${base}.partial.json`;
  }
  await writeFileAtomic(`${base}.json`, text);
  await writeFileAtomic(path.join(outDir, 'latest.json'), text);
  await fs.rm(`${base}.partial.json`, { force: true });
  return `${base}.json`;
}

function fmtMs(s: SideResult | undefined): string {
  if (!s) return '-';
  if (!s.ok) return 'FAILED';
  const m = s.msPerEpisode;
  const digits = m.median < 100 ? 1 : 0;
  return `${m.median.toFixed(digits)} ±${(m.iqr / 2).toFixed(digits)} (n=${m.n})`;
}

function fmtRatio(r: number | null | undefined): string {
  return r === null || r === undefined ? '-' : r >= 10 ? r.toFixed(1) : r.toFixed(2);
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}

const fmtCheck = (c: AgreementCheck | undefined) => (!c || c.agrees === null ? '-' : `${c.agrees ? 'ok' : 'DIFFERS'} (${c.relDiff?.toExponential(1)})`);

/** Readable table of the timed workloads: median ms/episode ± half the IQR, the ratios and the checks. */
export function stepTable(results: Array<StepWorkloadResult | HeadWorkloadResult>): string {
  const withWasm = results.some((r) => r.oursWasm);
  const header = [
    'workload',
    'thr',
    'ours ms',
    ...(withWasm ? ['wasm ms'] : []),
    'peer best ms',
    'ratio',
    ...(withWasm ? ['wasm ratio'] : []),
    'check',
    ...(withWasm ? ['wasm check'] : []),
    'peer setting',
  ];
  const rows = results.map((r) => [
    r.id,
    String(r.threads),
    fmtMs(r.ours),
    ...(withWasm ? [fmtMs(r.oursWasm)] : []),
    fmtMs(r.peer.best),
    fmtRatio(r.ratio.best),
    ...(withWasm ? [fmtRatio(r.ratio.wasm)] : []),
    fmtCheck(r.check),
    ...(withWasm ? [fmtCheck(r.checkWasm)] : []),
    r.peerSetting ?? '-',
  ]);
  return table([header, ...rows]);
}
