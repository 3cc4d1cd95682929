import { UserError } from '../../util/errors.ts';
import { validateConfig } from '../index.ts';
import { costKeys, estimateSeconds, probeCost, shapeLabel, type CostProbe } from './estimate.ts';
import type { TablePlan } from './plan.ts';
import { describeInProgress, hasFinishedResult, olderEngineOf, runDataProblem, runInProgress, type ReproduceSettings } from './reproduce.ts';

/**
 * `reproduce --dry-run`: what each planned run's state is and what the runs left would cost, without running any.
 * The CLI prints it as lines or, with --json, as this object.
 */
export type DryRunState =
  /** A complete result of the same config is on disk. */
  | 'done'
  | 'to run'
  /** Has a checkpoint: resumes there. */
  | 'in progress'
  /** Cannot start: its dataset's data was not given (no cache, no source found). */
  | 'no data'
  /** Its results folder holds a different run, or its config names something unknown. */
  | 'refused';

export interface DryRunEntry {
  key: string;
  cells: string[];
  dataset: string;
  seed: number;
  state: DryRunState;
  /** `done`: set when an older engine made the result (the note); `in progress`: how far; `no data` / `refused`: the problem. */
  detail?: string;
  /** `no data` / `refused`: what to do. */
  fix?: string;
  /** The episode shapes the cost depends on (`5w15s6q`). */
  shape: { train: string; test: string };
  /** Runs to run or resume: the measured cost per episode and the time left. */
  estimate?: { seconds: number; trainMsPerEpisode: number; evalMsPerEpisode: number; fromEpisode: number };
}

export interface DryRunSummary {
  runs: number;
  done: number;
  toRun: number;
  inProgress: number;
  /** Runs that cannot start, per dataset whose data is missing. */
  noData: Record<string, number>;
  refused: number;
  /** Time of the runs to run and to resume, one after the other, on this machine. */
  seconds: number;
  /** How many probes ran: one per new training or evaluation shape (costKeys). */
  probes: number;
}

export interface DryRun {
  format: 'fewshot-reproduce-dry-run/1';
  table: string;
  budget: string;
  backend: { choice: string; detail: string };
  testEpisodes: number;
  runs: DryRunEntry[];
  summary: DryRunSummary;
}

/**
 * The dry run of a plan on the selected backend. Each training shape and each evaluation shape (costKeys) is
 * measured once, so runs of the same shapes get the same estimate; runs that cannot start are counted apart.
 */
export async function dryRunPlan(
  plan: TablePlan,
  settings: ReproduceSettings,
  backend: { choice: string; detail: string },
  opts: { testEpisodes?: number; probe?: (config: ReturnType<typeof validateConfig>) => CostProbe } = {},
): Promise<DryRun> {
  const testEpisodes = opts.testEpisodes ?? settings.testEpisodes ?? 2000;
  const probe = opts.probe ?? probeCost;
  // ms per episode by cost key (costKeys): each training shape and each evaluation shape is measured once.
  const trainCost = new Map<string, number>();
  const evalCost = new Map<string, number>();
  let probes = 0;
  const runs: DryRunEntry[] = [];
  for (const run of plan.runs) {
    const config = validateConfig(run.config);
    const entry: DryRunEntry = {
      key: run.key, cells: run.cells, dataset: run.dataset, seed: run.seed, state: 'to run',
      shape: { train: shapeLabel(config.train), test: shapeLabel(config.test) },
    };
    runs.push(entry);
    try {
      if (await hasFinishedResult(settings, run)) {
        entry.state = 'done';
        const older = await olderEngineOf(settings, run);
        if (older) entry.detail = older;
        continue;
      }
      const noData = await runDataProblem(settings, run);
      if (noData) {
        Object.assign(entry, { state: 'no data', detail: noData.problem, fix: noData.fix });
        continue;
      }
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      Object.assign(entry, { state: 'refused', detail: err.problem, fix: err.fix });
      continue;
    }
    // A run with a checkpoint resumes there: only the episodes after it (and their validations) are left.
    const progress = await runInProgress(settings, run);
    if (progress) Object.assign(entry, { state: 'in progress', detail: describeInProgress(progress) });
    const keys = costKeys(config);
    if (!trainCost.has(keys.train) || !evalCost.has(keys.eval)) {
      const measured = probe(config);
      if (!trainCost.has(keys.train)) trainCost.set(keys.train, measured.trainMsPerEpisode);
      if (!evalCost.has(keys.eval)) evalCost.set(keys.eval, measured.evalMsPerEpisode);
      probes++;
    }
    const cost: CostProbe = { trainMsPerEpisode: trainCost.get(keys.train)!, evalMsPerEpisode: evalCost.get(keys.eval)! };
    const from = progress?.episode ?? 0;
    entry.estimate = { seconds: estimateSeconds(config, cost, testEpisodes, from), trainMsPerEpisode: cost.trainMsPerEpisode, evalMsPerEpisode: cost.evalMsPerEpisode, fromEpisode: from };
  }
  const count = (state: DryRunState) => runs.filter((r) => r.state === state).length;
  const noData: Record<string, number> = {};
  for (const r of runs) if (r.state === 'no data') noData[r.dataset] = (noData[r.dataset] ?? 0) + 1;
  return {
    format: 'fewshot-reproduce-dry-run/1',
    table: plan.table.id,
    budget: plan.budget,
    backend,
    testEpisodes,
    runs,
    summary: {
      runs: runs.length, done: count('done'), toRun: count('to run'), inProgress: count('in progress'), noData, refused: count('refused'),
      seconds: runs.reduce((sum, r) => sum + (r.estimate?.seconds ?? 0), 0),
      probes,
    },
  };
}
