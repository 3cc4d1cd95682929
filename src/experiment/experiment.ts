import path from 'node:path';
import { promises as fs } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { selectBackend, type SelectedBackend } from '../backend/select.ts';
import { constructMethod, type ResolvedMethod } from '../methods/build.ts';
import type { EpisodicMethod } from '../methods/contract.ts';
import type { TrainConfig } from '../train/config.ts';
import { train, validationsLeft, type TrainSummary } from '../train/trainer.ts';
import { readCheckpoint, restoreVariables, type LoadedCheckpoint } from '../train/checkpoint.ts';
import { augmentedSource } from '../train/augment.ts';
import { evaluate } from '../eval/evaluator.ts';
import { formatCI } from '../eval/stats.ts';
import { writeResult, type ResultRecord } from '../reports/results.ts';
import { portablePath } from '../util/portable-path.ts';
import { recoverFiles } from '../util/atomic.ts';
import { NumericalError, UserError } from '../util/errors.ts';
import { checkRelativeName } from '../util/names.ts';
import { diskErrorOf } from '../util/fs-errors.ts';
import type { ResolvedDataset } from '../data/providers/registry.ts';
import { resolveExperiment } from './resolve.ts';
import { configHash, runName } from './naming.ts';
import { parseWithUserError } from './validate.ts';
import { configDifferences, describeDifferences } from './config-diff.ts';
import { silentReporter, type ExperimentReporter } from './reporter.ts';
import { loadedPlugins, pluginRecords, softwareVersions } from './software.ts';
import { loadModel } from './model.ts';
export { checkpointConfig, requirePluginsOf } from './model.ts';
import type { EpisodeList } from '../eval/evaluator.ts';
import { episodeFileFor, openDataset, openEpisodeList, trainEpisodeSampler, type OpenedDataset, type OpenedSplit, type WorkspaceOptions } from './workspace.ts';
import { trackedByGit } from '../util/git-tracked.ts';
import { DEFAULT_RESULTS } from '../util/result-folders.ts';

/**
 * A result folder whose result.json git tracks is a committed reference result: a run or evaluation refuses to
 * replace it (before any training) unless `replaceCommitted` says it is meant.
 */
export function refuseCommittedResult(resultDir: string, options: Pick<ExperimentOptions, 'replaceCommitted'>): void {
  if (options.replaceCommitted || !trackedByGit(path.join(resultDir, 'result.json'))) return;
  throw new UserError(
    `${resultDir} is a committed reference result (its result.json is tracked by git); this would replace it`,
    `write your result elsewhere (--results <dir>; the default is ${DEFAULT_RESULTS}/), or pass --replace-committed to replace the reference on purpose`,
  );
}

/**
 * The experiment layer: prepare → train → evaluate → record as library calls taking a validated config.
 * The CLI parses flags into a config and calls these; a script, a test or a `reproduce` command does the
 * same without flags. Nothing here reads process.argv or prints: messages go to `options.reporter`.
 */
export const experimentOptionsSchema = z
  .object({
    /** Compute backend (`auto`, `wasm`, `cpu`, `node`, ...; see backend/select.ts). */
    backend: z.string().default('auto'),
    /** Source location for the dataset provider (`--data`). */
    data: z.string().optional(),
    /** Explicit cache folder; default `<$FEWSHOT_CACHE or .cache>/<dataset>-<size>`. */
    cache: z.string().optional(),
    /** Where checkpoints go: `<runs>/<name>/{best,last}`. */
    runs: z.string().default('runs'),
    /** Where results go: `<results>/<dataset>/<name>/`. Not the committed `results/` of a checkout (see DEFAULT_RESULTS). */
    results: z.string().default(DEFAULT_RESULTS),
    /** Folder of episode files (`<episodesDir>/<dataset>/…`); default: the package's committed files for
     *  datasets that have them, else ./episodes (see `defaultEpisodeFile`). */
    episodesDir: z.string().optional(),
    valFile: z.string().optional(),
    testFile: z.string().optional(),
    /** Evaluate only the first n test episodes. */
    testEpisodes: z.number().int().positive().optional(),
    /** Run name (default: derived from the config, see `runName`). */
    name: z.string().min(1).optional(),
    /** Recorded in the result as `command` when given (the CLI passes its command line). */
    command: z.string().optional(),
    /** Prepare the cache when missing (default true). */
    autoPrepare: z.boolean().default(true),
    /** Keep an existing result of the same config, checkpoint and episodes instead of re-evaluating. */
    reuseResult: z.boolean().default(false),
    /** Report the training loss (progress) every n episodes (default 100). */
    logEvery: z.number().int().positive().optional(),
    /** Replace a result whose files are tracked by git (a committed reference result); refused otherwise. */
    replaceCommitted: z.boolean().default(false),
  })
  .strict();

export type ExperimentOptionsInput = z.input<typeof experimentOptionsSchema>;
export type ExperimentOptions = z.output<typeof experimentOptionsSchema>;

/** Things that are not data: the reporter and an abort signal (e.g. Ctrl-C). */
export interface ExperimentHooks {
  reporter?: ExperimentReporter;
  signal?: AbortSignal;
}

export interface TrainedRun {
  config: TrainConfig;
  method: EpisodicMethod;
  backend: SelectedBackend;
  dataset: OpenedDataset;
  summary: TrainSummary;
  runDir: string;
  name: string;
}

export interface ExperimentResult {
  config: TrainConfig;
  runDir: string;
  name: string;
  checkpoint: string;
  training?: TrainSummary;
  resultDir: string;
  record: ResultRecord;
  /** True when an existing result was kept (`reuseResult`). */
  reused: boolean;
}

function validateOptions(raw: ExperimentOptionsInput): ExperimentOptions {
  const options = parseWithUserError(experimentOptionsSchema, raw, 'experiment options', 'fix the option');
  // The name is joined to --runs and --results: it must stay inside them.
  if (options.name !== undefined) checkRelativeName(options.name, '--name', 'give a plain name of letters, digits, `-`, `_` and `.` (not starting with "."), e.g. --name protonet_lr0.01');
  return options;
}

function workspaceOf(config: Pick<TrainConfig, 'dataset' | 'datasetOptions'>, o: ExperimentOptions, resolved: ResolvedDataset): WorkspaceOptions {
  return { dataset: config.dataset, datasetOptions: config.datasetOptions, data: o.data, cache: o.cache, episodesDir: o.episodesDir, resolved };
}

/** Load the backend (saying which one), then construct the method resolved before it (resolve.ts). */
async function backendAndMethod(config: TrainConfig, resolved: ResolvedMethod, backendChoice: string, reporter: ExperimentReporter): Promise<{ backend: SelectedBackend; method: EpisodicMethod }> {
  const backend = await selectBackend(backendChoice);
  reporter.log(`backend: ${backend.choice} — ${backend.detail}`);
  const method = constructMethod(resolved, {
    imageSize: config.imageSize, way: Math.max(config.train.way, config.test.way), seed: config.seed, wrapperOptions: config.wrapperOptions,
  });
  return { backend, method };
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(() => true, () => false);
}

/** Explicitly named input files must exist before any compute (backend loading, cache preparation, training). */
async function requireFiles(files: [flag: string, file: string | undefined][]): Promise<void> {
  for (const [flag, file] of files) {
    if (file !== undefined && !(await exists(file))) {
      throw new UserError(`${flag} ${file} does not exist`, 'check the path, or make the file with `fewshot episodes make` (or omit the flag to use the standard file)');
    }
  }
}

/** An opened test episode file, checked against the data before any training. */
interface TestEpisodes {
  file: string;
  split: OpenedSplit;
  list: EpisodeList & { sha256: string };
}

async function openTestEpisodes(dataset: OpenedDataset, config: TrainConfig, options: ExperimentOptions, reporter: ExperimentReporter): Promise<TestEpisodes> {
  const split = await dataset.split('test');
  const file = await episodeFileFor(dataset, 'test', config.test, options.testFile, reporter);
  return { file, split, list: await openEpisodeList(file, split, config.test) };
}

/** Meta-train a config (resuming from `<runs>/<name>/last` when it exists); keeps best/ and last/. */
export async function trainExperiment(rawConfig: TrainConfig, rawOptions: ExperimentOptionsInput = {}, hooks: ExperimentHooks = {}): Promise<TrainedRun> {
  return trainWithChecks(rawConfig, validateOptions(rawOptions), hooks);
}

/**
 * Training, with `beforeTraining` run once the data is open and before the first episode (`run` opens and
 * verifies its test file there, so a bad test file is reported before the training, not after it).
 */
async function trainWithChecks(rawConfig: TrainConfig, options: ExperimentOptions, hooks: ExperimentHooks, beforeTraining?: (dataset: OpenedDataset, config: TrainConfig) => Promise<void>): Promise<TrainedRun> {
  // every check of the config, once, before any work: an unknown dataset, option, method or backbone fails here
  const resolved = resolveExperiment(rawConfig, options.data);
  const { config } = resolved;
  const reporter = hooks.reporter ?? silentReporter;
  await requireFiles([['--val-file', options.valFile], ...(beforeTraining ? [['--test-file', options.testFile] as [string, string | undefined]] : [])]);
  const { backend, method } = await backendAndMethod(config, resolved.method, options.backend, reporter);
  const dataset = await openDataset(workspaceOf(config, options, resolved.dataset), config.imageSize, { autoPrepare: options.autoPrepare, reporter, signal: hooks.signal });
  const trainSplit = await dataset.split('train');
  const valSplit = await dataset.split('val');
  const valFile = await episodeFileFor(dataset, 'val', config.test, options.valFile, reporter);
  const valList = await openEpisodeList(valFile, valSplit, config.test);
  await beforeTraining?.(dataset, config);
  const name = options.name ?? runName(config);
  const runDir = path.join(options.runs, name);
  const meta = {
    configHash: configHash(config, trainSplit.splitFingerprint),
    config, method: config.method, name,
    data: {
      dataset: dataset.dataset.name, provider: { id: dataset.dataset.provider.id, options: dataset.dataset.options }, normalization: dataset.normalization,
      splitFingerprint: trainSplit.splitFingerprint, cacheFingerprint: trainSplit.cacheFingerprint, imageSize: config.imageSize,
    },
    // Portable like a result's paths: long runs' checkpoints are committed and resumed from other clones.
    valEpisodes: { file: portablePath(valFile), sha256: valList.sha256 },
    // which plugins made this model: `fewshot eval` without them names them instead of "unknown method"
    plugins: pluginRecords(),
  };
  reporter.log(`training ${config.method} (${config.backbone}, ${config.imageSize}px, ${dataset.dataset.name}, train ${config.train.way}w${config.train.shot}s${config.train.query}q, augmentation ${config.augment === 'metaoptnet' ? 'metaoptnet (random crop + colour jitter + flip)' : 'none'}) for ${config.episodes} episodes → ${runDir}`);
  // The bar starts with the first trained episode: a run refused before training prints no progress.
  let progress: ReturnType<ExperimentReporter['progress']> | undefined;
  let lastLoss = '';
  let lastVal = '';
  // Validation time, kept out of the training rate and added back per validation still to come.
  let validationSeconds = 0;
  let validations = 0;
  const norm = dataset.normalization;
  let summary: TrainSummary;
  const trainStartedAt = performance.now();
  try {
    summary = await train({
      method, config, runDir, meta, logEvery: options.logEvery,
      trainSource: config.augment === 'metaoptnet' ? (i) => augmentedSource(trainSplit.loaded, `${config.seed}/augment/${i}`, norm) : () => trainSplit.source,
      sampleTrainEpisode: trainEpisodeSampler(trainSplit, config.train, config.seed),
      validation: { source: valSplit.source, list: valList },
      onNotice: (message) => reporter.log(message),
      onProgress: (p) => {
        if (p.loss !== undefined) lastLoss = p.loss.toFixed(4);
        if (p.validation) {
          lastVal = `${formatCI(p.validation.accuracy)}${p.validation.best ? '*' : ''}`;
          validationSeconds += p.validation.seconds;
          validations++;
        }
        progress ??= reporter.progress('train', config.episodes, { from: p.from, startedAt: trainStartedAt });
        const perValidation = validations ? validationSeconds / validations : 0;
        progress.update(p.episode, { loss: lastLoss, val: lastVal || '-', lr: p.lr.toExponential(2) },
          { spentSeconds: validationSeconds, pendingSeconds: perValidation * validationsLeft(config, p.episode) });
      },
    });
  } catch (err) {
    throw namingPlugins(err);
  } finally {
    progress?.stop();
  }
  if (summary.resumedFrom) reporter.log(`resumed from episode ${summary.resumedFrom}`);
  if (summary.best) reporter.log(`best validation (${summary.best.mode}) ${formatCI(summary.best.accuracy)} at episode ${summary.best.episode}`);
  return { config, method, backend, dataset, summary, runDir, name };
}

interface EvaluationTarget {
  config: TrainConfig;
  method: EpisodicMethod;
  backend: SelectedBackend;
  dataset: OpenedDataset;
  /** The result name, or how to derive it from the test file (an evaluation's own result name). */
  name: string | ((testFile: string, evaluated: number, count: number) => string);
  summary?: TrainSummary;
  /** The test episodes, when opened (and checked) before training. */
  test?: TestEpisodes;
  /** Refuse to replace an existing, different result in the result folder (evaluations); a run replaces its own. */
  keepOtherResults?: boolean;
  /** The checkpoint, when already read (an evaluation's loadModel); else it is read here. */
  file?: LoadedCheckpoint;
}

/** A numerical error names the loaded plugins: one of them (a method, backbone or head) may have produced it. */
function namingPlugins(err: unknown): unknown {
  const plugins = loadedPlugins().map((p) => p.module);
  if (!(err instanceof NumericalError) || plugins.length === 0) return err;
  return new NumericalError(`${err.message}; plugin${plugins.length > 1 ? 's' : ''} loaded: ${plugins.join(', ')}`);
}

async function existingResult(dir: string): Promise<ResultRecord | undefined> {
  // A result write killed after its commit point leaves a `.ready` journal: finish it first, so the result
  // compared (and kept) is the one last written, not the one the journal was replacing.
  await recoverFiles(dir);
  try {
    return JSON.parse(await fs.readFile(path.join(dir, 'result.json'), 'utf8')) as ResultRecord;
  } catch {
    return undefined;
  }
}

/**
 * A run's result folder is named from part of its config (`runName` leaves out lr, query, schedule, ...), so two
 * different runs can share it; a run replaces only its own result (the same config), never another's. Checked
 * before training (no hours lost) and again before writing (another process may have written one meanwhile).
 */
async function refuseOtherRunsResult(resultDir: string, config: TrainConfig): Promise<void> {
  const prev = await existingResult(resultDir);
  if (!prev) return;
  const differences = configDifferences(prev.config, config as unknown as Record<string, unknown>, config.dataset);
  if (differences.length === 0) return;
  throw new UserError(
    `${resultDir} already holds a run with a different configuration (its result: ${describeDifferences(differences)}; recorded → this run); it is not replaced`,
    `give this run another --name, or another --results folder, or delete ${resultDir} if you no longer need that result`,
  );
}

/** Restore a checkpoint into the target's method, score it on the test episodes, write the result. */
async function evaluateAndRecord(target: EvaluationTarget, checkpointDir: string, options: ExperimentOptions, reporter: ExperimentReporter, t0: number): Promise<{ record: ResultRecord; resultDir: string; reused: boolean; name: string }> {
  const { config, method, dataset } = target;
  const ckpt = target.file ?? (await readCheckpoint(checkpointDir, { onNotice: (m) => reporter.log(m) }));
  const { file: testFile, split: testSplit, list } = target.test ?? (await openTestEpisodes(dataset, config, options, reporter));
  const total = Math.min(options.testEpisodes ?? list.count, list.count);
  const name = typeof target.name === 'string' ? target.name : target.name(testFile, total, list.count);
  const resultDir = path.join(options.results, dataset.dataset.name, name);
  const hash = configHash(config, testSplit.splitFingerprint);
  const weightsSha256 = ckpt.file.weightsSha256;
  if (options.reuseResult || target.keepOtherResults) {
    const prev = await existingResult(resultDir);
    const t = prev?.training as { trainedAtEpisode?: unknown; weightsSha256?: unknown } | undefined;
    const same = prev && prev.configHash === hash && prev.episodes.sha256 === list.sha256 && prev.episodes.evaluated === total && t?.trainedAtEpisode === ckpt.file.meta.episode
      && (t?.weightsSha256 === undefined || t.weightsSha256 === weightsSha256);
    if (prev && same) {
      reporter.log(`kept the existing result ${resultDir} (same config, checkpoint and episodes)`);
      return { record: prev, resultDir, reused: true, name };
    }
    if (prev && target.keepOtherResults) {
      const what = prev.episodes.evaluated !== total ? `${prev.episodes.evaluated} episodes, this evaluation ${total}` : prev.episodes.sha256 !== list.sha256 ? 'another episode file' : 'another checkpoint or config';
      throw new UserError(
        `${resultDir} already holds a different result (${prev.method}, ${what}); it is not replaced`,
        `give this evaluation another --name, or delete ${resultDir} if you no longer need it`,
      );
    }
  }
  refuseCommittedResult(resultDir, options);
  if (!target.keepOtherResults) await refuseOtherRunsResult(resultDir, config);
  restoreVariables(ckpt, [...method.trainableVariables(), ...method.stateVariables()]);
  const progress = reporter.progress('eval', total);
  let result;
  try {
    result = evaluate(method, testSplit.source, list, { limit: total, onProgress: (d) => progress.update(d) });
  } catch (err) {
    if (!(err instanceof NumericalError)) throw err;
    // Name what could have produced the non-finite scores: the checkpoint's weights, or a loaded plugin.
    throw namingPlugins(new NumericalError(`${err.message}; checkpoint ${checkpointDir}; no result was written`));
  } finally {
    progress.stop();
  }
  const record = await writeResult(
    resultDir,
    {
      method: config.method,
      createdAt: new Date().toISOString(),
      ...(options.command !== undefined ? { command: options.command } : {}),
      configHash: hash,
      seed: config.seed,
      backend: { choice: target.backend.choice, detail: target.backend.detail, ...(target.backend.accelerator ? { accelerator: target.backend.accelerator } : {}) },
      data: {
        dataset: dataset.dataset.name, provider: { id: dataset.dataset.provider.id, options: dataset.dataset.options }, normalization: dataset.normalization,
        imageSize: config.imageSize, splitFingerprint: testSplit.splitFingerprint, cacheFingerprint: testSplit.cacheFingerprint,
      },
      episodes: { file: testFile, sha256: list.sha256, split: 'test', ...config.test, evaluated: total },
      wallSeconds: {
        train: target.summary?.wallSeconds, eval: result.wallSeconds, total: (performance.now() - t0) / 1000,
        ...(target.summary ? { trainAllSittings: target.summary.allSittings.wallSeconds, ...(target.summary.allSittings.estimated ? { trainAllSittingsEstimated: true as const } : {}) } : {}),
      },
      training: {
        ...(target.summary ? { episodesTrained: target.summary.episodesTrained, resumedFrom: target.summary.resumedFrom, best: target.summary.best, wallSeconds: target.summary.wallSeconds } : {}),
        run: ckpt.file.meta.name, trainedAtEpisode: ckpt.file.meta.episode, trainData: ckpt.file.meta.data, valEpisodes: ckpt.file.meta.valEpisodes,
        ...(weightsSha256 ? { weightsSha256 } : {}),
      },
      checkpoint: checkpointDir,
      software: softwareVersions(),
      plugins: pluginRecords(),
      config: { ...config, describe: method.describe() },
    },
    result,
  ).catch((err: unknown) => {
    // The evaluation itself is done: say its accuracy even though the result could not be recorded.
    const disk = diskErrorOf(err);
    if (!disk) throw err;
    const headline = result.modes[0];
    throw new UserError(
      `the evaluation finished (${headline} ${formatCI(result.summary[headline])} % over ${result.episodes} test episodes) but its result could not be written: ${disk.problem}`,
      disk.fix.replace(/, then run the same command again.*/, ', then run the same command again to record it'),
    );
  });
  return { record, resultDir, reused: false, name };
}

/** Prepare (if needed) → train (resuming) → evaluate the best checkpoint → record. */
export async function runExperiment(rawConfig: TrainConfig, rawOptions: ExperimentOptionsInput = {}, hooks: ExperimentHooks = {}): Promise<ExperimentResult> {
  const t0 = performance.now();
  const options = validateOptions(rawOptions);
  const reporter = hooks.reporter ?? silentReporter;
  let test: TestEpisodes | undefined;
  const run = await trainWithChecks(rawConfig, options, hooks, async (dataset, config) => {
    // Refused here, before the training, rather than after it when the result is written.
    const resultDir = path.join(options.results, dataset.dataset.name, options.name ?? runName(config));
    if (!options.reuseResult) refuseCommittedResult(resultDir, options);
    test = await openTestEpisodes(dataset, config, options, reporter);
    await refuseOtherRunsResult(resultDir, config);
  });
  const { record, resultDir, reused } = await evaluateAndRecord({ ...run, test }, run.summary.bestCheckpoint, options, reporter, t0);
  return { config: run.config, runDir: run.runDir, name: run.name, checkpoint: run.summary.bestCheckpoint, training: run.summary, resultDir, record, reused };
}

export interface EvaluateCheckpointRequest {
  /** A `runs/<name>/best` (or `last`) directory. */
  checkpoint: string;
  /** Evaluate at this shot instead of the trained one (the test file, and so the result name, says it). */
  shot?: number;
  /** Evaluate on another dataset than the one trained on (cross-domain); default: the trained one. */
  dataset?: string;
  datasetOptions?: Record<string, unknown>;
}

/** Score a saved checkpoint on fixed test episodes and write the result. */
export async function evaluateCheckpoint(request: EvaluateCheckpointRequest, rawOptions: ExperimentOptionsInput = {}, hooks: ExperimentHooks = {}): Promise<ExperimentResult> {
  const t0 = performance.now();
  const options = validateOptions(rawOptions);
  const reporter = hooks.reporter ?? silentReporter;
  // The checkpoint read once (as predict and export read it); a plugin's model without its plugin is refused here.
  const model = await loadModel(request.checkpoint, { reporter });
  const saved = model.config;
  const ckpt = model.file;
  const dataset = request.dataset ?? saved.dataset;
  const baseOptions = request.dataset !== undefined ? (request.datasetOptions ?? {}) : (request.datasetOptions ?? saved.datasetOptions);
  const asked: TrainConfig = { ...saved, test: { ...saved.test, shot: request.shot ?? saved.test.shot }, dataset, datasetOptions: baseOptions };
  // every check of the config, once, before the backend loads (loadModel named any plugin the checkpoint needs)
  const resolved = resolveExperiment(asked, options.data);
  const { config } = resolved;
  await requireFiles([['--test-file', options.testFile]]);
  const { backend, method } = await backendAndMethod(config, resolved.method, options.backend, reporter);
  const opened = await openDataset(workspaceOf(config, options, resolved.dataset), config.imageSize, { autoPrepare: options.autoPrepare, reporter, signal: hooks.signal });
  // The recorded run name becomes part of the result's path: a shared checkpoint's name must not lead out of --results.
  const run = options.name !== undefined ? '' : checkRelativeName(String(ckpt.file.meta.name ?? path.basename(path.dirname(path.resolve(request.checkpoint)))),
    `the run name recorded in ${request.checkpoint}/checkpoint.json`, 'name the evaluation\'s result yourself with --name <name>');
  // An evaluation gets its own result, never the run's: <run>_eval_<test file stem>[_<n>ep].
  const nameOf = (testFile: string, evaluated: number, count: number) =>
    options.name ?? `${run}_eval_${path.basename(testFile).replace(/\.json$/, '')}${evaluated < count ? `_${evaluated}ep` : ''}`;
  try {
    const { record, resultDir, reused, name } = await evaluateAndRecord({ config, method, backend, dataset: opened, name: nameOf, keepOtherResults: true, file: ckpt }, request.checkpoint, options, reporter, t0);
    return { config, runDir: path.dirname(request.checkpoint), name, checkpoint: request.checkpoint, resultDir, record, reused };
  } finally {
    tf.disposeVariables();
  }
}
