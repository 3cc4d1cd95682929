/**
 * Prints the README's benchmark table (markdown) from a bench JSON, so the numbers quoted there are the
 * recorded ones: `npx tsx bench/table.ts [results/bench/latest.json]`.
 *
 * One row per workload, for each thread count the run measured: our median ms, PyTorch's (its fastest setting at
 * that thread count), the ratio (PyTorch ms / ours ms) and the same ratio for ours on plain wasm (when the run was
 * made with --with-wasm). Reports of format 2 (one thread setting, no wasm column) print the same way.
 * `--compact` prints the README's table instead: the train and eval rows measured on a quiet machine (the host less
 * than 30 % busy before each side), one ratio per thread count with the plain-wasm ratio in brackets.
 */
import fs from 'node:fs';

interface Summary {
  median: number;
}
interface Side {
  ok: boolean;
  msPerEpisode?: Summary;
}
interface Check {
  agrees: boolean | null;
  relDiff: number | null;
}
interface Workload {
  id: string;
  hostBusyBefore?: Record<string, number | null> | null;
  kind: string;
  threads?: number;
  ours: Side & Record<string, unknown>;
  oursWasm?: Side;
  peer?: Record<string, Side> & Record<string, unknown>;
  peerSetting?: string | null;
  ratio?: Record<string, number | null> | number | null;
  check?: Check;
  checkWasm?: Check;
}
interface Engine {
  backend: string;
  wasmThreads: number;
  onednn: { version: string; isa: string; threads: number } | null;
}
interface Report {
  createdAt: string;
  formatVersion: number;
  threads?: number[];
  machine: { cpuModel: string; logicalCpus: number; loadAverageAtStart: number[] };
  ours: { threads?: number; backendDetail?: string; engines?: Record<string, Engine>; withWasm?: boolean };
  workloads: Workload[];
}

const compact = process.argv.includes('--compact');
const file = process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 'results/bench/latest.json';
const report = JSON.parse(fs.readFileSync(file, 'utf8')) as Report;
const threadCounts = report.threads ?? [report.ours.threads ?? 1];
const threadsOf = (w: Workload) => w.threads ?? threadCounts[0];
const withWasm = report.workloads.some((w) => w.oursWasm);

const ms = (s?: Side) => (s?.ok && s.msPerEpisode ? Math.round(s.msPerEpisode.median).toLocaleString('en-US') : 'fails');
const ratio = (w: Workload | undefined, key: string) => (w && typeof w.ratio === 'object' && w.ratio?.[key] != null ? w.ratio[key]!.toFixed(2) : '–');
const peerMs = (w: Workload | undefined) => (!w ? '–' : w.peer?.best ? ms(w.peer.best) : w.ours.ok ? '–' : 'not run');
/** `jemalloc, channels_last, OMP_WAIT_POLICY=PASSIVE, 1 thread` → `jemalloc CL`; the wait policy only when not PASSIVE. */
const shortSetting = (s: string | null | undefined) => {
  if (!s) return '–';
  const [allocator, layout, wait] = s.split(', ');
  return [allocator, layout === 'channels_last' ? 'CL' : '', wait && !wait.endsWith('PASSIVE') ? 'spin' : ''].filter(Boolean).join(' ');
};
const checkOf = (rows: Workload[]) => {
  const checks = rows.flatMap((w) => [w.check, w.checkWasm]).filter((c): c is Check => !!c && c.agrees !== null);
  if (!checks.length) return '–';
  const worst = Math.max(...checks.map((c) => c.relDiff ?? 0));
  return `${checks.every((c) => c.agrees) ? 'ok' : 'DIFFERS'} (${worst.toExponential(0)})`;
};

function engineLine(): string {
  if (report.ours.engines) {
    return Object.entries(report.ours.engines)
      .map(
        ([t, e]) =>
          `${t}t: ${e.backend}${e.onednn ? ` (oneDNN ${e.onednn.version}, ${e.onednn.isa}, ${e.onednn.threads} thread${e.onednn.threads > 1 ? 's' : ''})` : ''}, ${e.wasmThreads} wasm thread${e.wasmThreads > 1 ? 's' : ''}`,
      )
      .join('; ');
  }
  return report.ours.backendDetail ?? 'unknown';
}

if (compact) {
  const quiet = (w: Workload) => Object.values(w.hostBusyBefore ?? {}).every((b) => b == null || b < 0.3);
  const rows = report.workloads.filter((w) => w.kind === 'train' || w.kind === 'eval');
  console.log(`| workload (5-way; Conv-4 unless \`resnet12\`) | ${threadCounts.map((t) => `${t} thread${t > 1 ? 's' : ''}`).join(' | ')} |`);
  console.log(`|---|${threadCounts.map(() => '---').join('|')}|`);
  for (const id of [...new Set(rows.map((w) => w.id))]) {
    const at = threadCounts.map((t) => rows.find((w) => w.id === id && threadsOf(w) === t));
    if (!at.every((w) => w && quiet(w))) continue;
    console.log(`| \`${id}\` | ${at.map((w) => (w!.ours.ok ? `${ratio(w, 'best')} (${ratio(w, 'wasm')})` : 'fails (heap)')).join(' | ')} |`);
  }
  process.exit(0);
}

console.log(
  `From \`${file}\` (${report.createdAt}; ${report.machine.cpuModel} ×${report.machine.logicalCpus}; load average ${report.machine.loadAverageAtStart.join(' ')} at the start).`,
);
console.log(`Ours: ${engineLine()}${withWasm ? '; the wasm column times plain wasm (the accelerator off) in the same run' : ''}.\n`);
console.log(
  'Median ms per episode at each thread count (both sides at that count); ratio = PyTorch ms / ours ms, > 1 means we are faster. PyTorch is timed in its fastest setting per workload and thread count (allocator, memory format, OpenMP wait policy; see bench/README.md); `check`: the first training loss / first eval scores of both sides agree within 1e-3 (the worst relative difference in brackets).\n',
);
const perThread = (t: number) => [`${t}t ours ms`, `${t}t PyTorch ms`, `${t}t ratio`, ...(withWasm ? [`${t}t wasm ratio`] : [])];
const header = [
  'workload (5-way, 15 queries unless `Nq`; Conv-4 unless `resnet12`; `head/…/Vv`: a MetaOptNet head alone at V dual variables)',
  ...threadCounts.flatMap(perThread),
  'check',
  `PyTorch setting (${threadCounts.map((t) => `${t}t`).join(' / ')})`,
];
console.log(`| ${header.join(' | ')} |`);
console.log(`|${header.map(() => '---').join('|')}|`);
const timed = report.workloads.filter((x) => x.kind === 'train' || x.kind === 'eval' || x.kind === 'head');
for (const id of [...new Set(timed.map((w) => w.id))]) {
  const rows = timed.filter((w) => w.id === id);
  const at = (t: number) => rows.find((w) => threadsOf(w) === t);
  const cells = threadCounts.flatMap((t) => {
    const w = at(t);
    return [w ? ms(w.ours) : '–', peerMs(w), ratio(w, 'best'), ...(withWasm ? [ratio(w, 'wasm')] : [])];
  });
  console.log(`| \`${id}\` | ${cells.join(' | ')} | ${checkOf(rows)} | ${threadCounts.map((t) => shortSetting(at(t)?.peerSetting)).join(' / ')} |`);
}
for (const w of report.workloads.filter((x) => x.kind === 'prepare')) {
  const o = w.ours as unknown as { imagesPerSecond: number; wallSeconds: number; images: number };
  const p = w.peer as unknown as { imagesPerSecond: number; workers: number } | undefined;
  console.log(
    `\n\`${w.id}\`: ${o.images.toLocaleString('en-US')} images in ${o.wallSeconds.toFixed(0)} s, ${Math.round(o.imagesPerSecond).toLocaleString('en-US')} images/s` +
      (p ? ` (PIL with ${p.workers} processes: ${Math.round(p.imagesPerSecond).toLocaleString('en-US')} images/s)` : ''),
  );
}
for (const w of report.workloads.filter((x) => x.kind === 'memory')) {
  const o = w.ours as unknown as { numTensorsBefore: number; numTensorsAfter: number; rssMiBBefore: number; rssMiBAfter: number };
  console.log(
    `\n\`${w.id}\` over ${String((w as unknown as { episodes: number }).episodes)} training episodes: ${o.numTensorsBefore} → ${o.numTensorsAfter} live tensors, RSS ${o.rssMiBBefore} → ${o.rssMiBAfter} MiB.`,
  );
}
