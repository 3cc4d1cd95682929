/**
 * The 84 px ProtoNet curves of the toolkit beside those of the independent PyTorch reference
 * (bench/peer/protonet_reference.py), one figure per shot, with the published test accuracy drawn across:
 *
 *   npx tsx bench/reference-curves.ts [--runs runs/cells] [--reference results/mini-imagenet/reference]
 *
 * Reads the toolkit's `train-log.jsonl` of the protonet-paper cpu-84px cells and every reference JSON in the
 * reference folder, and writes `curves-5w1s.svg` / `curves-5w5s.svg` (and their Vega-Lite specs) there, and
 * `curves.md`: every run's validation accuracy at equal episodes. It only shows what the runs recorded, so it can be
 * re-run as they go on.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { curvePointsFromLog, pct, renderSvg, trainingCurvesSpec, type CurvePoint } from '../src/reports/figures.ts';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: 'runs/cells' }, reference: { type: 'string', default: 'results/mini-imagenet/reference' } },
});
const runsDir = values.runs!;
const refDir = values.reference!;

interface ReferenceRecord {
  shot: number;
  seed: number;
  device?: string; // absent in the first CPU runs' records
  train: { episode: number; loss: number }[];
  validation: { episode: number; mean: number }[];
}

/** Chen et al. (ICLR 2019), Conv-4 ProtoNet meta-trained 5-way: the test accuracies the cpu-84px budget aims at. */
const PUBLISHED: Record<number, number> = { 1: 44.42, 5: 64.24 };

const tables: string[] = [
  "# Validation accuracy at equal training episodes (84 px ProtoNet, Chen et al.'s protocol)",
  '',
  'Written by `npx tsx bench/reference-curves.ts` from the run logs and reference records; 600 fixed val episodes,',
  "accuracy in %, 95% CIs about ±0.6–0.9. Runs: the toolkit (wasm, this repository's `runs/cells/`) and the",
  'independent PyTorch reference (`bench/peer/protonet_reference.py`, its own episodes, draws and initial weights).',
];

/** One markdown table: a row per run (label, seed), a column per validated episode. */
function validationTable(shot: number, points: CurvePoint[]): string[] {
  const val = points.filter((p) => p.kind === 'validation accuracy (%)');
  const episodes = [...new Set(val.map((p) => p.episode))].sort((a, b) => a - b);
  const runs = [...new Set(val.map((p) => `${p.cell}|${p.seed}`))];
  const k = (e: number) => (e % 1000 === 0 ? `${e / 1000}k` : String(e));
  return [
    '',
    `## 5-way ${shot}-shot (Chen et al.: ${PUBLISHED[shot]} test)`,
    '',
    `| run | seed | ${episodes.map(k).join(' | ')} |`,
    `|---|---|${episodes.map(() => '---').join('|')}|`,
    ...runs.map((run) => {
      const [cell, seed] = run.split('|');
      const at = (e: number) => val.find((p) => p.cell === cell && String(p.seed) === seed && p.episode === e)?.value.toFixed(2) ?? '';
      return `| ${cell} | ${seed} | ${episodes.map(at).join(' | ')} |`;
    }),
  ];
}

for (const shot of [1, 5]) {
  const points: CurvePoint[] = [];
  const ours = fs.readdirSync(runsDir).filter((d) => d.startsWith(`protonet_5w${shot}s_cpu-84px_`));
  for (const cell of ours) {
    for (const seedDir of fs.readdirSync(path.join(runsDir, cell)).filter((d) => /^seed\d+$/.test(d))) {
      const log = path.join(runsDir, cell, seedDir, 'train-log.jsonl');
      if (fs.existsSync(log)) points.push(...curvePointsFromLog('fewshot (wasm, 2-core CPU)', Number(seedDir.slice(4)), fs.readFileSync(log, 'utf8')));
    }
  }
  for (const file of fs.readdirSync(refDir).filter((f) => f.startsWith(`protonet-chen-84px-5w${shot}s-torch`) && f.endsWith('.json'))) {
    const r = JSON.parse(fs.readFileSync(path.join(refDir, file), 'utf8')) as ReferenceRecord;
    const cell = `PyTorch reference (${!r.device || r.device === 'cpu' ? 'CPU' : r.device})`;
    for (const t of r.train) points.push({ cell, seed: r.seed, episode: t.episode, kind: 'training loss', value: t.loss });
    for (const v of r.validation) points.push({ cell, seed: r.seed, episode: v.episode, kind: 'validation accuracy (%)', value: pct(v.mean) });
  }
  // Two title lines: Vega sizes the figure by an estimate of the title's width, so one long line left a wide blank.
  const title = [`ProtoNet Conv-4, 84 px, 5-way ${shot}-shot (Chen et al.'s protocol):`, 'the toolkit and an independent PyTorch reference'];
  const spec = trainingCurvesSpec(title, points, [{ cell: 'published', value: PUBLISHED[shot], label: `Chen et al. ${PUBLISHED[shot]} (test)` }]);
  if (!spec) continue;
  tables.push(...validationTable(shot, points));
  const base = path.join(refDir, `curves-5w${shot}s`);
  fs.writeFileSync(`${base}.vl.json`, JSON.stringify(spec, null, 1) + '\n');
  fs.writeFileSync(`${base}.svg`, await renderSvg(spec));
  console.log(`${base}.svg: ${points.length} points`);
}
fs.writeFileSync(path.join(refDir, 'curves.md'), tables.join('\n') + '\n');
console.log(`${path.join(refDir, 'curves.md')}`);
