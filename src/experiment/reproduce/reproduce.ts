import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readResult, type ResultRecord } from '../../reports/results.ts';
import { readTrainLogWall } from '../../train/train-log.ts';
import type { TableSpec } from '../../reports/table-spec.ts';
import type { EpisodeSpec } from '../../episodes/spec.ts';
import { summarizeTable, type CellRuns, type TableOutcome } from '../../reports/table-summary.ts';
import { cellsCsv, comparisonsCsv, tableMarkdown } from '../../reports/table-render.ts';
import { accuracyByShotSpec, curvePointsFromLog, forestPlotSpec, renderSvg, trainingCurvesSpec, type CurveReference } from '../../reports/figures.ts';
import { followVersionedDir, recoverDir, replaceDirAtomic } from '../../util/atomic.ts';
import { formatCI, type MeanCI } from '../../eval/stats.ts';
import { UserError } from '../../util/errors.ts';
import { RunInUseError } from '../../util/lock.ts';
import { CHECKPOINT_AND_STOP, receivedStopSignal, StoppedBySignal } from '../../util/signal.ts';
import { datasetOptionsWithData, openDataset, resolveCacheDir, runExperiment, validateConfig, type ExperimentHooks } from '../index.ts';
import { resolveDataset } from '../../data/providers/index.ts';
import { configDifferences, describeDifferences } from '../config-diff.ts';
import { planTable, type PlannedRun, type TablePlan } from './plan.ts';
import { olderEngineNote } from '../engine.ts';

/**
 * `reproduce`: run (or resume) every run a table needs, then fill the table. Runs execute in-process one after
 * the other by default, or as jobs on a queue (queue.ts) that any number of workers take; either way a run
 * writes its result atomically to `results/<dataset>/cells/<name>/seed<k>/`, which is how a finished run is
 * recognised later (same config and episodes: not run again; a different config there: refused).
 */
export interface ReproduceSettings {
  /** Results root (the table goes to `<results>/<dataset>/<table>/<budget>/`). */
  results: string;
  /** Checkpoint root (`<runs>/cells/<name>/seed<k>/{best,last}`). */
  runs: string;
  backend: string;
  /** Source location per dataset (`--data mini-imagenet=DIR`); datasets not listed use their provider's default. */
  data: Record<string, string>;
  episodesDir?: string;
  /** Evaluate only the first n test episodes of each file (small tables in tests). */
  testEpisodes?: number;
  cache?: string;
}

/** Runs one planned run to its result; in-process or in a worker. Throws on failure. */
export type RunExecutor = (run: PlannedRun) => Promise<void>;

/**
 * `stopped`: checkpointed and stopped by SIGUSR1 before its end; the table shows it in progress, from its folders.
 * `elsewhere`: another process holds its run folder (another reproducer or worker is running it): not a failure;
 * the table shows it in progress, and a result that process writes is read from disk like any other.
 */
export type RunState = { run: PlannedRun; state: 'done' | 'ran' | 'failed' | 'stopped' | 'elsewhere'; message?: string };

/**
 * The dataset's name decides the results folder (`results/<name>/`): for benchmarks it is the provider id, for a
 * user folder it comes from the provider's options (e.g. the folder's name). Throws a UserError for an unknown
 * dataset or bad options.
 */
export function datasetNameOf(run: Pick<PlannedRun, 'dataset' | 'config'>, settings: Pick<ReproduceSettings, 'data'>): string {
  const options = (run.config.datasetOptions ?? {}) as Record<string, unknown>;
  return resolveDataset(run.dataset, datasetOptionsWithData(run.dataset, options, settings.data[run.dataset])).name;
}

/** A table's temp folder older than this is a killed writer's (a table is written in seconds). */
const TABLE_TEMP_STALE_MS = 10 * 60 * 1000;

const resultPath = (settings: ReproduceSettings, run: PlannedRun) => path.join(settings.results, datasetNameOf(run, settings), run.resultDir);

/**
 * Is this run's result already there? `true` when a complete result of the same config exists; `false` when
 * none exists; a UserError when the folder holds a different run (never overwritten).
 */
export async function hasFinishedResult(settings: ReproduceSettings, run: PlannedRun): Promise<boolean> {
  const dir = resultPath(settings, run);
  const exists = await fs.stat(path.join(dir, 'result.json')).then(
    () => true,
    () => false,
  );
  if (!exists) return false;
  const { record } = await readResult(dir);
  const planned = validateConfig(run.config) as unknown as Record<string, unknown>;
  const differences = configDifferences(record.config, planned, run.dataset);
  if (differences.length) {
    throw new UserError(
      `${dir} holds a run with a different configuration than table cell run ${run.key} (${describeDifferences(differences)})`,
      'move that folder away (or pass another --results folder); reproduce never overwrites a different run',
    );
  }
  if (settings.testEpisodes === undefined ? false : record.episodes.evaluated !== settings.testEpisodes) return false;
  return true;
}

/**
 * For a finished run: `undefined` when its result was made by today's engine, else the note `--dry-run` shows
 * beside "done" (the result stands; a rerun today may not match it to the last digit). See experiment/engine.ts.
 */
export async function olderEngineOf(settings: ReproduceSettings, run: PlannedRun): Promise<string | undefined> {
  const { record } = await readResult(resultPath(settings, run));
  return olderEngineNote(record);
}

/**
 * Why this run cannot start for want of data, or `undefined` when it can: its image cache is prepared, or its
 * provider finds the source (from `--data <dataset>=<location>`, the provider's environment variable or default
 * location). The fix is in reproduce's own terms: the provider's `--data <location>` becomes
 * `--data <dataset>=<location>`, the spelling `reproduce` and `worker` take.
 */
export async function runDataProblem(
  settings: Pick<ReproduceSettings, 'data' | 'cache'>,
  run: Pick<PlannedRun, 'dataset' | 'config'>,
): Promise<UserError | undefined> {
  const config = validateConfig(run.config);
  const data = settings.data[run.dataset];
  const dataset = resolveDataset(run.dataset, datasetOptionsWithData(run.dataset, config.datasetOptions, data));
  const cacheDir = resolveCacheDir({ cache: settings.cache }, dataset.name, config.imageSize);
  // A prepared cache of this dataset at this size is enough (one --cache folder may hold another dataset's).
  let manifest: { dataset?: unknown; imageSize?: unknown } | undefined;
  try {
    manifest = JSON.parse(await fs.readFile(path.join(cacheDir, 'manifest.json'), 'utf8'));
  } catch {
    manifest = undefined; // no cache (or an unreadable one): the source must be found
  }
  if (manifest?.dataset === dataset.name && manifest.imageSize === config.imageSize) return undefined;
  try {
    dataset.provider.locate(dataset.options, { flag: data, env: process.env, cwd: process.cwd() });
    return undefined;
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    const inReproduceTerms = err.fix.replace(/--data </g, `--data ${run.dataset}=<`);
    const fix = inReproduceTerms.includes(`--data ${run.dataset}=`)
      ? inReproduceTerms
      : `${inReproduceTerms}; pass its location with --data ${run.dataset}=<location>`;
    return new UserError(`no ${run.dataset} data: ${err.problem}`, fix);
  }
}

/** Where a planned run keeps its checkpoints and training log while it trains (`runExperiment`'s run folder). */
export const runDirOf = (settings: Pick<ReproduceSettings, 'runs'>, run: Pick<PlannedRun, 'resultDir'>) => path.join(settings.runs, run.resultDir);

/** An unfinished run that has trained: where its last complete checkpoint is, and its log up to there. */
export interface RunInProgress {
  /** Episodes trained at the last complete checkpoint (a resume starts here). */
  episode: number;
  total: number;
  /** Best validation so far, as the checkpoint recorded it. */
  best?: { episode: number; mode: string; accuracy: MeanCI };
  /** The training log's lines up to `episode` (lines past it are redone by the resume). */
  log: string;
}

/**
 * The state of a run that has a `last` checkpoint but no result: read from the checkpoint's description (not
 * its weights) and its training log. `undefined` when the run has not checkpointed yet.
 */
export async function runInProgress(
  settings: Pick<ReproduceSettings, 'runs'>,
  run: Pick<PlannedRun, 'resultDir' | 'config'>,
): Promise<RunInProgress | undefined> {
  const dir = runDirOf(settings, run);
  let meta: { episode?: unknown; best?: unknown };
  try {
    const last = await followVersionedDir(path.join(dir, 'last')); // a plain-file stand-in for the link is followed
    meta = (JSON.parse(await fs.readFile(path.join(last, 'checkpoint.json'), 'utf8')) as { meta?: typeof meta }).meta ?? {};
  } catch {
    return undefined;
  }
  if (typeof meta.episode !== 'number') return undefined;
  const episode = meta.episode;
  const text = await fs.readFile(path.join(dir, 'train-log.jsonl'), 'utf8').catch(() => '');
  const log = text
    .split('\n')
    .filter((line) => {
      try {
        return Number((JSON.parse(line) as { episode?: number }).episode ?? Infinity) <= episode;
      } catch {
        return false;
      }
    })
    .map((l) => l + '\n')
    .join('');
  const best = meta.best as RunInProgress['best'] | undefined;
  return { episode, total: Number(run.config.episodes), best: best?.accuracy ? best : undefined, log };
}

/**
 * The datasets of a plan that have anything on disk: a finished run or one in progress. `--table-only` writes
 * their tables only (a dataset nobody has run, e.g. CIFAR-FS without its archive, gets no table of blanks).
 */
export async function datasetsWithRuns(plan: TablePlan, settings: ReproduceSettings): Promise<string[]> {
  const out: string[] = [];
  for (const dataset of new Set(plan.runs.map((r) => r.dataset))) {
    for (const run of plan.runs.filter((r) => r.dataset === dataset)) {
      let finished = false;
      try {
        finished = await fs.stat(path.join(resultPath(settings, run), 'result.json')).then(
          () => true,
          () => false,
        );
      } catch (err) {
        if (!(err instanceof UserError)) throw err; // an unconfigured dataset has nothing on disk
      }
      if (finished || (await runInProgress(settings, run))) {
        out.push(dataset);
        break;
      }
    }
  }
  return out;
}

/** One line for a table cell or a listing: how far the run is and its best validation so far. */
export function describeInProgress(p: RunInProgress): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const best = p.best
    ? `; best validation so far ${formatCI(p.best.accuracy)} (${p.best.accuracy.n} val episodes, ${p.best.mode}) at episode ${n(p.best.episode)}`
    : '';
  return `in progress: ${n(p.episode)} of ${n(p.total)} training episodes at the last checkpoint${best}`;
}

/**
 * Prepare, once and before any run starts, every image cache the given (unfinished) runs will read. Runs side by
 * side (`--jobs`) would otherwise each find the cache missing and decode the same dataset into the same folder at
 * once (twice the work, and one of them replacing the cache under the other). A run whose data cannot be found is
 * left to fail on its own, with the same message, when it runs.
 */
export async function prepareCachesFor(runs: PlannedRun[], settings: ReproduceSettings, hooks: ExperimentHooks = {}): Promise<void> {
  const done = new Set<string>();
  for (const run of runs) {
    const config = validateConfig(run.config);
    const data = settings.data[run.dataset];
    // As runExperiment builds its workspace: the source location folded into the dataset options.
    const ws = { dataset: config.dataset, datasetOptions: datasetOptionsWithData(config.dataset, config.datasetOptions, data), data, cache: settings.cache };
    const key = JSON.stringify([ws.dataset, ws.datasetOptions, config.imageSize]);
    if (done.has(key)) continue;
    done.add(key);
    try {
      await openDataset(ws, config.imageSize, { autoPrepare: true, reporter: hooks.reporter, signal: hooks.signal });
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
    }
  }
}

/** The default executor: runExperiment in this process, then the training log is kept beside the result. */
export function inProcessExecutor(settings: ReproduceSettings, hooks: ExperimentHooks = {}): RunExecutor {
  return async (run) => {
    // Missing data is reported with reproduce's --data spelling, before a backend or model is set up.
    const noData = await runDataProblem(settings, run);
    if (noData) throw noData;
    try {
      const out = await runExperiment(
        run.config as never,
        {
          backend: settings.backend,
          data: settings.data[run.dataset],
          cache: settings.cache,
          runs: settings.runs,
          results: settings.results,
          episodesDir: settings.episodesDir,
          testEpisodes: settings.testEpisodes,
          name: run.resultDir,
          command: `fewshot reproduce (run ${run.key})`,
          reuseResult: true,
        },
        hooks,
      );
      const log = path.join(out.runDir, 'train-log.jsonl');
      const text = await fs.readFile(log, 'utf8').catch(() => '');
      if (text) await fs.writeFile(path.join(out.resultDir, 'train-log.jsonl'), text);
    } finally {
      tf.disposeVariables(); // the next run builds its own model
    }
  };
}

/**
 * Run every planned run that has no finished result; failures are recorded, the other runs go on. With
 * `jobs` > 1, that many runs execute at once (the executor must then run each in its own process: tfjs has one
 * engine per process). States come back in plan order whatever order the runs finish in. After a stop signal no
 * run starts (those have no state); a run that checkpointed and stopped on SIGUSR1 (the executor throws
 * StoppedBySignal) is `stopped`.
 */
export async function executePlan(
  plan: TablePlan,
  settings: ReproduceSettings,
  execute: RunExecutor,
  onState?: (s: RunState, finished: number, total: number) => void,
  jobs = 1,
): Promise<RunState[]> {
  const states: RunState[] = new Array(plan.runs.length);
  let next = 0;
  let finished = 0;
  const one = async (run: PlannedRun): Promise<RunState | undefined> => {
    try {
      if (await hasFinishedResult(settings, run)) return { run, state: 'done' };
      if (receivedStopSignal()) return undefined;
      await execute(run);
      return { run, state: 'ran' };
    } catch (err) {
      if (err instanceof StoppedBySignal && err.signal === CHECKPOINT_AND_STOP) return { run, state: 'stopped', message: err.message };
      if (err instanceof RunInUseError)
        return { run, state: 'elsewhere', message: err.holder ? `process ${err.holder.pid} on ${err.holder.host}` : 'another process' };
      if (!(err instanceof UserError)) throw err;
      return { run, state: 'failed', message: `${err.problem} (fix: ${err.fix})` };
    }
  };
  const lane = async () => {
    while (next < plan.runs.length && !receivedStopSignal()) {
      const i = next++;
      const state = await one(plan.runs[i]);
      if (!state) break;
      states[i] = state;
      onState?.(state, ++finished, plan.runs.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, plan.runs.length)) }, lane));
  return states.filter((s) => s !== undefined);
}

type ProgressLookup = (run: PlannedRun) => Promise<RunInProgress | undefined>;

/** Read the per-episode results of every run into the table's cells (`progressOf`: the state of an unfinished run). */
export async function collectOutcomes(
  plan: TablePlan,
  settings: ReproduceSettings,
  states: RunState[] = [],
  progressOf: ProgressLookup = (run) => runInProgress(settings, run),
): Promise<Map<string, CellRuns>> {
  const out = new Map<string, CellRuns>();
  for (const cell of plan.table.cells) {
    const runs = plan.cellRuns.get(cell.id);
    if (!runs) continue;
    const entry: CellRuns = { seeds: [], missing: [], running: 0 };
    for (const run of runs) {
      // What is on disk decides: a result there is shown whatever this process's attempt at the run came to (another
      // reproducer may have finished a run that this one found locked, or failed on).
      const state = states.find((s) => s.run.key === run.key);
      let dir: string;
      try {
        dir = resultPath(settings, run);
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        entry.missing.push(`seed ${run.seed}: ${err.problem} (fix: ${err.fix})`);
        continue;
      }
      if (
        !(await fs.stat(path.join(dir, 'result.json')).then(
          () => true,
          () => false,
        ))
      ) {
        if (state?.state === 'failed') {
          entry.missing.push(`seed ${run.seed}: ${state.message}`);
          continue;
        }
        const progress = await progressOf(run);
        const elsewhere = state?.state === 'elsewhere' ? `in progress elsewhere (${state.message})` : undefined;
        const described = progress ? describeInProgress(progress) : undefined;
        entry.missing.push(
          `seed ${run.seed}: ${elsewhere && described ? `${elsewhere}, ${described.replace(/^in progress: /, '')}` : (elsewhere ?? described ?? 'not run yet')}`,
        );
        if (progress || elsewhere) entry.running = (entry.running ?? 0) + 1;
        continue;
      }
      const { record, perEpisode } = await readResult(dir);
      if (!perEpisode[cell.mode])
        throw new UserError(
          `${dir} has no inference mode "${cell.mode}" (it has ${record.inferenceModes.join(', ')})`,
          `fix the mode of cell ${cell.id} in the table file`,
        );
      entry.seeds.push({
        seed: run.seed,
        result: path.relative(settings.results, dir),
        perEpisode: perEpisode[cell.mode],
        episodesSha256: record.episodes.sha256,
        wallSeconds: { ...(await trainingWall(record, runDirOf(settings, run))), eval: record.wallSeconds.eval },
      });
    }
    out.set(cell.id, entry);
  }
  return out;
}

/**
 * Training wall time over all of a run's sittings. Results written before `trainAllSittings` was recorded hold only
 * the last sitting's; for a resumed one of those the run's train log gives an estimate (train/train-log.ts).
 */
async function trainingWall(record: ResultRecord, runDir: string): Promise<{ train?: number; trainEstimated?: boolean }> {
  const w = record.wallSeconds;
  if (w.trainAllSittings !== undefined) return { train: w.trainAllSittings, trainEstimated: w.trainAllSittingsEstimated === true };
  if (!Number(record.training?.resumedFrom)) return { train: w.train };
  const logged = await readTrainLogWall(path.join(runDir, 'train-log.jsonl'));
  return logged ? { train: logged.seconds, trainEstimated: true } : { train: w.train };
}

/** Restrict a filled table to one dataset (each dataset's table goes to its own results folder). */
function forDataset(o: TableOutcome, dataset: string): TableOutcome {
  const cells = o.cells.filter((c) => c.cell.dataset === dataset);
  const ids = new Set(cells.map((c) => c.cell.id));
  return { ...o, cells, comparisons: o.comparisons.filter((c) => ids.has(c.a)) };
}

/**
 * The training-curves figure of one dataset's table: one curve per run (the SLA+AG and SLA+SI cells of one run share
 * its training), labelled by method and task.
 */
async function trainingCurvesFigure(
  plan: TablePlan,
  settings: ReproduceSettings,
  dataset: string,
  o: TableOutcome,
  progressOf: ProgressLookup,
): Promise<ReturnType<typeof trainingCurvesSpec>> {
  const curves = [];
  const references = new Map<string, CurveReference>();
  const published = plan.table.budgets[plan.budget].protocol === 'published';
  for (const run of plan.runs.filter((r) => r.dataset === dataset)) {
    let log = '';
    let label = '';
    try {
      log = await fs.readFile(path.join(resultPath(settings, run), 'train-log.jsonl'), 'utf8');
    } catch {
      // Not finished (or no data for it): a run still training shows its curve so far, from its run folder.
      const progress = await progressOf(run);
      if (progress) {
        log = progress.log;
        label = ' (in progress)';
      }
    }
    const test = run.config.test as EpisodeSpec;
    const cell = `${String(run.config.method)} ${test.way}w${test.shot}s${label}`;
    curves.push(...curvePointsFromLog(cell, run.seed, log));
    // The published test accuracy this run aims at, where the budget is the published protocol.
    const target = published ? o.cells.find((c) => c.cell.id === run.cells[0])?.published : undefined;
    if (target) references.set(cell, { cell, value: target.mean, label: `published ${target.mean.toFixed(2)} (test)` });
  }
  return trainingCurvesSpec(`${plan.table.id}: training loss and validation accuracy (budget ${plan.budget})`, curves, [...references.values()]);
}

/** One run's entry in reproduce.json: its state (done, ran, failed, in progress, not run) and, unfinished, its progress. */
async function manifestRunEntry(r: PlannedRun, states: RunState[], outcomes: Map<string, CellRuns>, progressOf: ProgressLookup) {
  const s = states.find((x) => x.run.key === r.key);
  // A run not executed this time (outside --only, or --table-only) is reported by what its folders hold.
  const finished = outcomes.get(r.cells[0])?.seeds.some((o) => o.seed === r.seed);
  const progress = finished ? undefined : await progressOf(r);
  // From disk first: a run finished by another process is done here too.
  const state = finished
    ? s?.state === 'ran'
      ? 'ran'
      : 'done'
    : s?.state === 'failed'
      ? 'failed'
      : s?.state === 'elsewhere'
        ? 'in progress elsewhere'
        : progress
          ? 'in progress'
          : 'not run';
  return {
    key: r.key,
    cells: r.cells,
    result: r.resultDir,
    state,
    message: finished ? undefined : s?.message,
    ...(progress ? { episode: progress.episode, episodes: progress.total, best: progress.best } : {}),
  };
}

/**
 * Write `<results>/<dataset>/<table>/<budget>/`: table.md, cells.csv, comparisons.csv, figures. `plan` is the whole
 * table's plan (every cell, whatever ran this time: `--only` limits what runs, not what the table shows); `datasets`
 * limits which datasets' tables are written (default: every dataset of the plan).
 */
export async function writeTableOutputs(
  plan: TablePlan,
  settings: ReproduceSettings,
  states: RunState[],
  tableFile: string,
  datasets = [...new Set(plan.runs.map((r) => r.dataset))],
): Promise<{ dirs: string[]; outcome: TableOutcome }> {
  // An unfinished run's checkpoint and log are read once here, for its cell, its curve and the manifest alike.
  const progressRead = new Map<string, Promise<RunInProgress | undefined>>();
  const progressOf: ProgressLookup = (run) => {
    if (!progressRead.has(run.key)) progressRead.set(run.key, runInProgress(settings, run));
    return progressRead.get(run.key)!;
  };
  const outcomes = await collectOutcomes(plan, settings, states, progressOf);
  const outcome = summarizeTable(plan.table, plan.budget, outcomes);
  const folderName = (dataset: string) => {
    try {
      return datasetNameOf(plan.runs.find((r) => r.dataset === dataset)!, settings);
    } catch {
      return dataset; // unknown or unconfigured dataset: its table still renders, with the cells marked missing
    }
  };
  const tableSha = createHash('sha256')
    .update(await fs.readFile(tableFile))
    .digest('hex');
  const dirs: string[] = [];
  for (const dataset of datasets) {
    const o = forDataset(outcome, dataset);
    const dir = path.join(settings.results, folderName(dataset), plan.table.id, plan.budget);
    const figures: Record<string, string> = {};
    const specs = { forest: forestPlotSpec(o), 'accuracy-by-shot': accuracyByShotSpec(o) } as Record<string, ReturnType<typeof forestPlotSpec>>;
    specs['training-curves'] = await trainingCurvesFigure(plan, settings, dataset, o, progressOf);
    for (const [name, spec] of Object.entries(specs)) {
      if (!spec) continue;
      figures[`${name}.svg`] = await renderSvg(spec);
      figures[`${name}.vl.json`] = JSON.stringify(spec, null, 1) + '\n';
    }
    const manifest = {
      format: 'fewshot-reproduce/1',
      table: { id: plan.table.id, file: tableFile, sha256: tableSha },
      budget: plan.budget,
      seeds: plan.seeds,
      writtenAt: new Date().toISOString(),
      runs: await Promise.all(plan.runs.filter((r) => r.dataset === dataset).map((r) => manifestRunEntry(r, states, outcomes, progressOf))),
    };
    // A table write killed before its swap leaves `.<budget>.<hex>.tmp`; the next write removes it once no
    // writer can still own it (two reproducers of one table may write it at once).
    await recoverDir(dir, { staleTempAgeMs: TABLE_TEMP_STALE_MS });
    await replaceDirAtomic(
      dir,
      async (tmp) => {
        await fs.writeFile(path.join(tmp, 'table.md'), tableMarkdown(o) + figureLinks(figures));
        await fs.writeFile(path.join(tmp, 'cells.csv'), cellsCsv(o));
        await fs.writeFile(path.join(tmp, 'comparisons.csv'), comparisonsCsv(o));
        await fs.writeFile(path.join(tmp, 'reproduce.json'), JSON.stringify(manifest, null, 2) + '\n');
        if (Object.keys(figures).length) await fs.mkdir(path.join(tmp, 'figures'));
        for (const [f, text] of Object.entries(figures)) await fs.writeFile(path.join(tmp, 'figures', f), text);
      },
      'table',
    );
    dirs.push(dir);
  }
  return { dirs, outcome };
}

function figureLinks(figures: Record<string, string>): string {
  const svgs = Object.keys(figures).filter((f) => f.endsWith('.svg'));
  return svgs.length ? `\nFigures (Vega-Lite specs beside them):\n\n${svgs.map((f) => `![${f}](figures/${f})`).join('\n\n')}\n` : '';
}

export { planTable };
export type { TableSpec };
