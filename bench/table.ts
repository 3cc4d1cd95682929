/**
 * Prints the README's benchmark table (markdown) from a bench JSON, so the numbers quoted there are the
 * recorded ones: `npx tsx bench/table.ts [results/bench/latest.json]`.
 */
import fs from 'node:fs';

interface Summary {
  median: number;
}
interface Side {
  ok: boolean;
  msPerEpisode?: Summary;
}
interface Workload {
  id: string;
  kind: string;
  ours: Side & Record<string, unknown>;
  peer?: Record<string, Side> & Record<string, unknown>;
  ratio?: Record<string, number> | number;
  goal?: { oursProjectedSecondsFor60000: number; met: boolean };
}

const file = process.argv[2] ?? 'results/bench/latest.json';
const report = JSON.parse(fs.readFileSync(file, 'utf8')) as { createdAt: string; machine: { loadAverageAtStart: number[] }; ours: { threads: number; backendDetail: string }; workloads: Workload[] };
const ms = (s?: Side) => (s?.ok && s.msPerEpisode ? Math.round(s.msPerEpisode.median).toLocaleString('en-US') : 'fails');
const ratio = (w: Workload, key: string) => (typeof w.ratio === 'object' && w.ratio[key] != null ? w.ratio[key].toFixed(2) : '–');

console.log(`From \`${file}\` (${report.createdAt}; ours: ${report.ours.backendDetail}; load average ${report.machine.loadAverageAtStart.join(' ')} at the start).`);
console.log('Median ms per episode; ratio = PyTorch ms / ours ms, > 1 means we are faster.\n');
console.log('PyTorch is timed in its fastest setting per workload (allocator, memory format, OpenMP wait policy, threads; see bench/README.md).\n');
console.log('| workload (5-way, 15 queries unless `Nq`; Conv-4 unless `resnet12`; `head/…/Vv`: a MetaOptNet head alone at V dual variables) | ours ms | PyTorch ms | ratio | PyTorch setting |');
console.log('|---|---|---|---|---|');
for (const w of report.workloads.filter((x) => x.kind === 'train' || x.kind === 'eval' || x.kind === 'head')) {
  const setting = (w as unknown as { peerSetting?: string | null }).peerSetting ?? '–';
  const peerMs = w.peer?.best ? ms(w.peer.best) : w.ours.ok ? '–' : 'not run';
  console.log(`| \`${w.id}\` | ${ms(w.ours)} | ${peerMs} | ${ratio(w, 'best')} | ${setting} |`);
}
for (const w of report.workloads.filter((x) => x.kind === 'prepare')) {
  const o = w.ours as unknown as { imagesPerSecond: number; wallSeconds: number; images: number };
  const p = w.peer as unknown as { imagesPerSecond: number; workers: number } | undefined;
  console.log(`\n\`${w.id}\`: ${o.images.toLocaleString('en-US')} images in ${o.wallSeconds.toFixed(0)} s, ${Math.round(o.imagesPerSecond).toLocaleString('en-US')} images/s` + (p ? ` (PIL with ${p.workers} processes: ${Math.round(p.imagesPerSecond).toLocaleString('en-US')} images/s)` : ''));
}
for (const w of report.workloads.filter((x) => x.kind === 'memory')) {
  const o = w.ours as unknown as { numTensorsBefore: number; numTensorsAfter: number; rssMiBBefore: number; rssMiBAfter: number };
  console.log(`\n\`${w.id}\` over ${String((w as unknown as { episodes: number }).episodes)} training episodes: ${o.numTensorsBefore} → ${o.numTensorsAfter} live tensors, RSS ${o.rssMiBBefore} → ${o.rssMiBAfter} MiB.`);
}
