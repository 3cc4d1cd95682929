import type { TopLevelSpec } from 'vega-lite';
import type { TableOutcome } from './table-summary.ts';
import { parseTrainLog } from '../train/train-log.ts';

/**
 * Figures of a filled table, as Vega-Lite specifications rendered to SVG in Node (Vega's headless view; no
 * browser, no canvas). The spec of every figure is kept beside its SVG, so a reader can restyle it in the Vega
 * editor without re-running anything.
 *
 * Vega is imported when a figure is drawn, not when this module loads: `import … from 'fewshot'` reaches this module
 * (reproduceTable), and vega-canvas's top-level await cannot load in a CommonJS plugin, nor should every script pay
 * for Vega.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/**
 * Type sizes every figure uses, and no truncation of labels: a cut label ("ProtoNet + SLA+AG − ProtoNet
 * (mini-ImageNet…", "MetaOptNet-SVM + S…") made the 1-shot and 5-shot rows, and SLA+AG and SLA+SI, look alike.
 * A limit of 0 is Vega's "no limit"; the layout makes room for the longest label.
 */
export const FIGURE_CONFIG = {
  font: 'DejaVu Sans, Verdana, sans-serif',
  title: { fontSize: 16 },
  axis: { labelFontSize: 13, titleFontSize: 14, labelLimit: 0 },
  legend: { labelFontSize: 13, titleFontSize: 13, labelLimit: 0 },
  header: { labelFontSize: 14 },
} as const;
/** A fraction as a percentage with two decimals, as every figure and table shows accuracy. */
export const pct = (x: number) => Math.round(x * 10000) / 100;

/** Forest plot: each paired difference (points) with its pooled 95% CI, the per-seed differences as ticks, 0 marked. */
export function forestPlotSpec(o: TableOutcome): TopLevelSpec | undefined {
  const pooled = o.comparisons
    .filter((c) => c.pooled)
    .map((c) => ({
      label: c.label,
      mean: pct(c.pooled!.mean),
      lo: pct(c.pooled!.mean - c.pooled!.ci95),
      hi: pct(c.pooled!.mean + c.pooled!.ci95),
      verdict: c.verdict,
    }));
  if (!pooled.length) return undefined;
  const seeds = o.comparisons.flatMap((c) => c.perSeed.map((p) => ({ label: c.label, seed: `seed ${p.seed}`, mean: pct(p.difference.mean) })));
  const y = { field: 'label', type: 'nominal', sort: null, title: null } as const;
  return {
    $schema: SCHEMA,
    config: FIGURE_CONFIG,
    title: { text: `${o.table.id}: paired differences A − B (points, 95% CI), budget ${o.budget}`, anchor: 'start' },
    width: 480,
    layer: [
      { data: { values: [{ zero: 0 }] }, mark: { type: 'rule', strokeDash: [4, 3], color: '#888' }, encoding: { x: { field: 'zero', type: 'quantitative' } } },
      {
        data: { values: pooled },
        mark: { type: 'rule', strokeWidth: 2 },
        encoding: { y, x: { field: 'lo', type: 'quantitative', title: 'A − B (points)' }, x2: { field: 'hi' } },
      },
      {
        data: { values: pooled },
        mark: { type: 'point', filled: true, size: 70 },
        encoding: { y, x: { field: 'mean', type: 'quantitative' }, tooltip: [{ field: 'verdict' }] },
      },
      {
        data: { values: seeds },
        mark: { type: 'tick', thickness: 1.5, opacity: 0.6 },
        encoding: { y, x: { field: 'mean', type: 'quantitative' }, color: { field: 'seed', type: 'nominal', title: 'per seed' } },
      },
    ],
  } as TopLevelSpec;
}

/** Accuracy by shot: pooled accuracy (95% CI) of every row side by side within each shot, one panel per dataset. */
export function accuracyByShotSpec(o: TableOutcome): TopLevelSpec | undefined {
  const values = o.cells
    .filter((c) => c.pooled)
    .map((c) => ({
      row: `${c.cell.row}`,
      dataset: c.cell.dataset,
      shot: c.cell.test.shot,
      mean: pct(c.pooled!.mean),
      lo: pct(c.pooled!.mean - c.pooled!.ci95),
      hi: pct(c.pooled!.mean + c.pooled!.ci95),
      published: c.published?.mean,
    }));
  if (!values.length) return undefined;
  return {
    $schema: SCHEMA,
    config: FIGURE_CONFIG,
    title: { text: `${o.table.id}: accuracy by shot (budget ${o.budget})`, anchor: 'start' },
    data: { values },
    facet: { column: { field: 'dataset', type: 'nominal', title: null } },
    spec: {
      width: 320,
      height: 280,
      layer: [
        // Each row a little apart within its shot (xOffset), so rows with equal accuracy do not hide one another; a
        // point and its 95% CI per row and shot (1-shot and 5-shot are separate tasks, not joined by a line).
        {
          mark: { type: 'point', filled: true, size: 70 },
          encoding: {
            x: { field: 'shot', type: 'ordinal', title: 'shot (K)', axis: { labelAngle: 0 } },
            xOffset: { field: 'row', type: 'nominal' },
            y: { field: 'mean', type: 'quantitative', title: 'test accuracy (%)', scale: { zero: false } },
            color: { field: 'row', type: 'nominal', title: null },
          },
        },
        {
          mark: { type: 'rule' },
          encoding: {
            x: { field: 'shot', type: 'ordinal' },
            xOffset: { field: 'row', type: 'nominal' },
            y: { field: 'lo', type: 'quantitative' },
            y2: { field: 'hi' },
            color: { field: 'row', type: 'nominal' },
          },
        },
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
export function trainingCurvesSpec(title: string | string[], points: CurvePoint[], references: CurveReference[] = []): TopLevelSpec | undefined {
  if (!points.length) return undefined;
  const width = 640;
  const height = 240;
  const x = { field: 'episode', type: 'quantitative', title: 'training episode' };
  const color = { field: 'cell', type: 'nominal', title: null };
  const lines = (kind: CurvePoint['kind'], y: Record<string, unknown>) => ({
    transform: [{ filter: { field: 'kind', equal: kind } }],
    mark: { type: 'line', point: { size: 12 } },
    // The seed legend shows each seed's dash pattern as a stroke (the line's point symbol made three identical dots).
    encoding: {
      x,
      y: { field: 'value', type: 'quantitative', ...y },
      color,
      detail: { field: 'run', type: 'nominal' },
      strokeDash: {
        field: 'seed',
        type: 'nominal',
        title: 'seed',
        legend: { symbolType: 'stroke', symbolStrokeWidth: 2, symbolSize: 600, encode: { symbols: { update: { stroke: { value: '#444' } } } } },
      },
    },
  });
  const validation = lines('validation accuracy (%)', { title: 'validation accuracy (%)', scale: { zero: false }, axis: { format: '.1f' } });
  return {
    $schema: SCHEMA,
    title: { text: title, anchor: 'start' },
    data: { values: points.map((p) => ({ ...p, run: `${p.cell} s${p.seed}` })) },
    config: FIGURE_CONFIG,
    resolve: { scale: { x: 'shared' } }, // both panels on one episode axis
    vconcat: [
      { width, height, ...lines('training loss', { title: 'training loss (log scale)', scale: { type: 'log' } }) },
      references.length
        ? {
            width,
            height,
            layer: [
              validation,
              {
                data: { values: references },
                mark: { type: 'rule', strokeDash: [6, 4], opacity: 0.8 },
                encoding: { y: { field: 'value', type: 'quantitative' }, color },
              },
              {
                data: { values: references },
                mark: { type: 'text', align: 'left', dx: 4, dy: -6, fontSize: 12 },
                encoding: { x: { value: 0 }, y: { field: 'value', type: 'quantitative' }, text: { field: 'label' }, color },
              },
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
    if (e.event === 'train' && typeof e.episode === 'number' && typeof e.loss === 'number')
      out.push({ cell, seed, episode: e.episode, kind: 'training loss', value: e.loss });
    if (e.event === 'validation' && typeof e.episode === 'number' && typeof e.accuracy?.mean === 'number')
      out.push({ cell, seed, episode: e.episode, kind: 'validation accuracy (%)', value: pct(e.accuracy.mean) });
  }
  return out;
}
