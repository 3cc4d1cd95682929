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
      key: run.key,
      cells: run.cells,
      dataset: run.dataset,
      seed: run.seed,
      state: 'to run',
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
    entry.estimate = {
      seconds: estimateSeconds(config, cost, testEpisodes, from),
      trainMsPerEpisode: cost.trainMsPerEpisode,
      evalMsPerEpisode: cost.evalMsPerEpisode,
      fromEpisode: from,
    };
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
      runs: runs.length,
      done: count('done'),
      toRun: count('to run'),
      inProgress: count('in progress'),
      noData,
      refused: count('refused'),
      seconds: runs.reduce((sum, r) => sum + (r.estimate?.seconds ?? 0), 0),
      probes,
    },
  };
}

const hms = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(0)} s`);

function entryLine(r: DryRunEntry): string {
  const eta = r.estimate
    ? ` ≈ ${hms(r.estimate.seconds)} (train ${r.shape.train}: ${r.estimate.trainMsPerEpisode.toFixed(0)} ms/episode, eval ${r.shape.test}: ${r.estimate.evalMsPerEpisode.toFixed(0)} ms/episode)`
    : '';
  const state =
    r.state === 'in progress'
      ? `${r.detail}, to resume`
      : r.state === 'no data'
        ? `cannot start: no ${r.dataset} data given (see below)`
        : r.state === 'refused'
          ? `refused: ${r.detail}`
          : r.state === 'done' && r.detail
            ? `done (${r.detail})`
            : r.state;
  return `${r.key}  [${r.cells.join(', ')}]  ${state}${eta}`;
}

/** The dry run as text: one line per run, then the totals, with the runs that cannot start counted apart. */
export function describeDryRun(dry: DryRun, jobs: number): string {
  const lines = dry.runs.map(entryLine);
  const s = dry.summary;
  const noData = Object.values(s.noData).reduce((a, b) => a + b, 0);
  // The probe ran here, one run on every thread; side-by-side runs (jobs) share the cores and finish more
  // per hour in all (bench/threads.sh measures by how much), so the sum is an upper bound for them.
  const sideBySide = jobs > 1 ? `; with ${jobs} runs side by side (--jobs ${jobs}) the wall time is shorter than this sum` : '';
  const parts = [`${s.done} done`, `${s.inProgress} in progress`, `${s.toRun} to run`];
  if (noData)
    parts.push(
      `${noData} cannot start without data (${Object.entries(s.noData)
        .map(([d, n]) => `${d}: ${n}`)
        .join(', ')})`,
    );
  if (s.refused) parts.push(`${s.refused} refused`);
  lines.push(`${s.runs} runs: ${parts.join(', ')}`);
  if (s.toRun + s.inProgress) {
    lines.push(
      `the ${s.toRun + s.inProgress} to run or resume take ≈ ${hms(s.seconds)} one after the other on ${dry.backend.choice} (measured step speed on this machine, each training and evaluation episode shape once: ${s.probes} probe${s.probes === 1 ? '' : 's'}${sideBySide})`,
    );
  }
  for (const dataset of Object.keys(s.noData)) {
    const first = dry.runs.find((r) => r.state === 'no data' && r.dataset === dataset)!;
    lines.push(`${s.noData[dataset]} ${dataset} run${s.noData[dataset] === 1 ? '' : 's'} cannot start: ${first.detail}`);
    lines.push(`  fix: ${first.fix}`);
  }
  return lines.join('\n') + '\n';
}
