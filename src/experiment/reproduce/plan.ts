import { createHash } from 'node:crypto';
import path from 'node:path';
import type { CellSpec, TableSpec } from '../../reports/table-spec.ts';
import { UserError } from '../../util/errors.ts';

/**
 * From a table and a budget to the runs that fill it. Cells that need the same training (e.g. SLA+AG and
 * SLA+SI are two inference modes of one trained model) share one run; a run is identified by a hash of its
 * full experiment config (without the seed) and lives in `results/<dataset>/cells/<name>/seed<k>/`, so tables
 * that contain the same cell share its runs too, and a finished run is recognised and never repeated.
 */
export interface PlannedRun {
  /** `<name>/seed<k>`: unique within a results folder. */
  key: string;
  /** Id of the table that planned it. */
  table: string;
  /** Config hash without the seed (16 hex). */
  configKey: string;
  name: string;
  seed: number;
  dataset: string;
  budget: string;
  /** The experiment config, not yet validated (the experiment layer validates it before any compute). */
  config: Record<string, unknown>;
  /** Result folder relative to the dataset's results folder (`results/<dataset name>/`), also the run name. */
  resultDir: string;
  cells: string[];
}

export interface TablePlan {
  table: TableSpec;
  budget: string;
  seeds: number[];
  runs: PlannedRun[];
  /** Cell id → the run key of each seed. */
  cellRuns: Map<string, PlannedRun[]>;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Recursive merge of plain objects (later wins); arrays and scalars are replaced, not merged. */
export function deepMerge(...layers: (Json | undefined)[]): Json {
  const out: Json = {};
  for (const layer of layers) {
    if (!layer) continue;
    for (const [k, v] of Object.entries(layer)) out[k] = isObject(v) && isObject(out[k]) ? deepMerge(out[k] as Json, v) : v;
  }
  return out;
}

/** JSON with sorted keys, so equal configs hash equally whatever order their files list fields in. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isObject(v))
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

export function cellConfig(table: TableSpec, budgetName: string, cell: CellSpec): Json {
  const budget = table.budgets[budgetName];
  const baseTrain = isObject(budget.base.train) ? budget.base.train : {};
  return deepMerge(
    budget.base,
    {
      dataset: cell.dataset,
      method: cell.method,
      test: cell.test,
      train: { way: cell.test.way, shot: cell.test.shot, query: cell.test.query, ...baseTrain, ...(cell.train ?? {}) },
    },
    cell.config,
    cell.budgetConfig?.[budgetName],
  );
}

/** The runs a reproduce table needs at a budget (cells × seeds, optionally only some cells), as `fewshot reproduce` plans them. */
export function planTable(table: TableSpec, budgetName: string, opts: { seeds?: number; only?: string[] } = {}): TablePlan {
  const budget = table.budgets[budgetName];
  if (!budget) {
    throw new UserError(`table ${table.id} has no budget "${budgetName}"`, `use --budget ${Object.keys(table.budgets).join(' or --budget ')}`);
  }
  const unknown = (opts.only ?? []).filter((id) => !table.cells.some((c) => c.id === id));
  if (unknown.length) {
    throw new UserError(`table ${table.id} has no cell ${unknown.map((u) => `"${u}"`).join(', ')}`, `cells are: ${table.cells.map((c) => c.id).join(', ')}`);
  }
  const seeds = Array.from({ length: opts.seeds ?? budget.seeds }, (_, i) => i);
  const runs = new Map<string, PlannedRun>();
  const cellRuns = new Map<string, PlannedRun[]>();
  for (const cell of table.cells) {
    if (cell.skipBudgets?.includes(budgetName)) continue;
    if (opts.only?.length && !opts.only.includes(cell.id)) continue;
    const config = cellConfig(table, budgetName, cell);
    const configKey = createHash('sha256').update(canonicalJson(config)).digest('hex').slice(0, 16);
    const test = cell.test;
    const name = `${cell.method}_${test.way}w${test.shot}s_${budgetName}_${configKey.slice(0, 8)}`;
    const list: PlannedRun[] = [];
    for (const seed of seeds) {
      const key = `${name}/seed${seed}`;
      let run = runs.get(key);
      if (!run) {
        run = {
          key,
          table: table.id,
          configKey,
          name,
          seed,
          dataset: cell.dataset,
          budget: budgetName,
          config: { ...config, seed },
          resultDir: path.join('cells', name, `seed${seed}`),
          cells: [],
        };
        runs.set(key, run);
      }
      run.cells.push(cell.id);
      list.push(run);
    }
    cellRuns.set(cell.id, list);
  }
  return { table, budget: budgetName, seeds, runs: [...runs.values()], cellRuns };
}
