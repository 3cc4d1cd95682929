import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { TableOutcome } from './table-summary.ts';
import { parseTrainLog } from '../train/train-log.ts';

/**
 * Figures of a filled table, as Vega-Lite specifications rendered to SVG in Node (Vega's headless view; no
 * browser, no canvas). The spec of every figure is kept beside its SVG, so a reader can restyle it in the Vega
 * editor without re-running anything.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
/** A fraction as a percentage with two decimals, as every figure and table shows accuracy. */
export const pct = (x: number) => Math.round(x * 10000) / 100;

/** Forest plot: each paired difference (points) with its pooled 95% CI, the per-seed differences as ticks, 0 marked. */
export function forestPlotSpec(o: TableOutcome): TopLevelSpec | undefined {
  const pooled = o.comparisons.filter((c) => c.pooled).map((c) => ({ label: c.label, mean: pct(c.pooled!.mean), lo: pct(c.pooled!.mean - c.pooled!.ci95), hi: pct(c.pooled!.mean + c.pooled!.ci95), verdict: c.verdict }));
  if (!pooled.length) return undefined;
  const seeds = o.comparisons.flatMap((c) => c.perSeed.map((p) => ({ label: c.label, seed: `seed ${p.seed}`, mean: pct(p.difference.mean) })));
  const y = { field: 'label', type: 'nominal', sort: null, title: null, axis: { labelLimit: 360 } } as const;
  return {
    $schema: SCHEMA,
    title: { text: `${o.table.id}: paired differences A − B (points, 95% CI), budget ${o.budget}`, anchor: 'start' },
    width: 420,
    layer: [
      { data: { values: [{ zero: 0 }] }, mark: { type: 'rule', strokeDash: [4, 3], color: '#888' }, encoding: { x: { field: 'zero', type: 'quantitative' } } },
      { data: { values: pooled }, mark: { type: 'rule', strokeWidth: 2 }, encoding: { y, x: { field: 'lo', type: 'quantitative', title: 'A − B (points)' }, x2: { field: 'hi' } } },
      { data: { values: pooled }, mark: { type: 'point', filled: true, size: 70 }, encoding: { y, x: { field: 'mean', type: 'quantitative' }, tooltip: [{ field: 'verdict' }] } },
      { data: { values: seeds }, mark: { type: 'tick', thickness: 1.5, opacity: 0.6 }, encoding: { y, x: { field: 'mean', type: 'quantitative' }, color: { field: 'seed', type: 'nominal', title: 'per seed' } } },
    ],
  } as TopLevelSpec;
}

/** Accuracy by shot: pooled accuracy (95% CI) of every row, one panel per dataset. */
export function accuracyByShotSpec(o: TableOutcome): TopLevelSpec | undefined {
  const values = o.cells
    .filter((c) => c.pooled)
    .map((c) => ({ row: `${c.cell.row}`, dataset: c.cell.dataset, shot: c.cell.test.shot, mean: pct(c.pooled!.mean), lo: pct(c.pooled!.mean - c.pooled!.ci95), hi: pct(c.pooled!.mean + c.pooled!.ci95), published: c.published?.mean }));
  if (!values.length) return undefined;
  return {
    $schema: SCHEMA,
    title: { text: `${o.table.id}: accuracy by shot (budget ${o.budget})`, anchor: 'start' },
    data: { values },
    facet: { column: { field: 'dataset', type: 'nominal', title: null } },
    spec: {
      width: 260,
      height: 220,
      layer: [
        { mark: { type: 'line', point: true }, encoding: { x: { field: 'shot', type: 'ordinal', title: 'shot (K)' }, y: { field: 'mean', type: 'quantitative', title: 'test accuracy (%)', scale: { zero: false } }, color: { field: 'row', type: 'nominal', title: null } } },
        { mark: { type: 'rule' }, encoding: { x: { field: 'shot', type: 'ordinal' }, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' }, color: { field: 'row', type: 'nominal' } } },
      ],
    },
  } as TopLevelSpec;
}

export interface CurvePoint {
  cell: string;
  seed: number;
  episode: number;
  kind: 'training loss' | 'validation accuracy (%)';
  value: number;
}

/** A published number drawn across the validation panel, in the colour of the cell (curve label) it belongs to. */
export interface CurveReference {
  cell: string;
  value: number;
  label: string;
}

/**
 * Training loss (log scale: a Conv-4 ProtoNet starts in the hundreds) and validation accuracy against training
 * episodes, one line per cell and seed; `references` draws published test accuracies across the validation panel
 * (only where the budget runs the published protocol, so that they are a target rather than a different scale).
 */
export function trainingCurvesSpec(title: string, points: CurvePoint[], references: CurveReference[] = []): TopLevelSpec | undefined {
  if (!points.length) return undefined;
  const width = 520;
  const height = 200;
  const x = { field: 'episode', type: 'quantitative', title: 'training episode' };
  const color = { field: 'cell', type: 'nominal', title: null };
  const lines = (kind: CurvePoint['kind'], y: Record<string, unknown>) => ({
    transform: [{ filter: { field: 'kind', equal: kind } }],
    mark: { type: 'line', point: { size: 12 } },
    encoding: { x, y: { field: 'value', type: 'quantitative', ...y }, color, detail: { field: 'run', type: 'nominal' }, strokeDash: { field: 'seed', type: 'nominal', title: 'seed' } },
  });
  const validation = lines('validation accuracy (%)', { title: 'validation accuracy (%)', scale: { zero: false }, axis: { format: '.1f' } });
  return {
    $schema: SCHEMA,
    title: { text: title, anchor: 'start' },
    data: { values: points.map((p) => ({ ...p, run: `${p.cell} s${p.seed}` })) },
    config: { legend: { labelLimit: 400 } },
    resolve: { scale: { x: 'shared' } }, // both panels on one episode axis
    vconcat: [
      { width, height, ...lines('training loss', { title: 'training loss (log scale)', scale: { type: 'log' } }) },
      references.length
        ? {
            width,
            height,
            layer: [
              validation,
              { data: { values: references }, mark: { type: 'rule', strokeDash: [6, 4], opacity: 0.8 }, encoding: { y: { field: 'value', type: 'quantitative' }, color } },
              { data: { values: references }, mark: { type: 'text', align: 'left', dx: 4, dy: -6, fontSize: 10 }, encoding: { x: { value: 0 }, y: { field: 'value', type: 'quantitative' }, text: { field: 'label' }, color } },
            ],
          }
        : { width, height, ...validation },
    ],
  } as TopLevelSpec;
}

/** Parse a run's `train-log.jsonl` (written by the trainer) into curve points. */
export function curvePointsFromLog(cell: string, seed: number, jsonl: string): CurvePoint[] {
  const out: CurvePoint[] = [];
  for (const e of parseTrainLog(jsonl)) {
    if (e.event === 'train' && typeof e.episode === 'number' && typeof e.loss === 'number') out.push({ cell, seed, episode: e.episode, kind: 'training loss', value: e.loss });
    if (e.event === 'validation' && typeof e.episode === 'number' && typeof e.accuracy?.mean === 'number') out.push({ cell, seed, episode: e.episode, kind: 'validation accuracy (%)', value: pct(e.accuracy.mean) });
  }
  return out;
}
