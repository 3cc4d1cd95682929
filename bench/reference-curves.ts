/**
 * The 84 px ProtoNet curves of the toolkit beside those of the independent PyTorch reference
 * (bench/peer/protonet_reference.py), one figure per shot, with the published test accuracy drawn across:
 *
 *   npx tsx bench/reference-curves.ts [--runs runs/cells] [--reference results/mini-imagenet/reference]
 *
 * Reads the toolkit's `train-log.jsonl` of the protonet-paper cpu-84px cells and every reference JSON in the
 * reference folder, and writes `curves-5w1s.svg` / `curves-5w5s.svg` (and their Vega-Lite specs) there. It only
 * draws what the runs recorded, so it can be re-run as they go on.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { curvePointsFromLog, renderSvg, trainingCurvesSpec, type CurvePoint } from '../src/reports/figures.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: 'runs/cells' }, reference: { type: 'string', default: 'results/mini-imagenet/reference' } } });
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
    for (const v of r.validation) points.push({ cell, seed: r.seed, episode: v.episode, kind: 'validation accuracy (%)', value: Math.round(v.mean * 10000) / 100 });
  }
  const spec = trainingCurvesSpec(`ProtoNet Conv-4, 84 px, 5-way ${shot}-shot (Chen et al.'s protocol): the toolkit and an independent PyTorch reference`, points, [
    { cell: 'published', value: PUBLISHED[shot], label: `Chen et al. ${PUBLISHED[shot]} (test)` },
  ]);
  if (!spec) continue;
  const base = path.join(refDir, `curves-5w${shot}s`);
  fs.writeFileSync(`${base}.vl.json`, JSON.stringify(spec, null, 1) + '\n');
  fs.writeFileSync(`${base}.svg`, await renderSvg(spec));
  console.log(`${base}.svg: ${points.length} points`);
}
