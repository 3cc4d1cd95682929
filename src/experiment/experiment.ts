import path from 'node:path';
import { promises as fs } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { selectBackend, type SelectedBackend } from '../backend/select.ts';
import { buildMethod } from '../methods/build.ts';
import { resolveMethodName } from '../methods/registry.ts';
import type { EpisodicMethod } from '../methods/contract.ts';
import { trainConfigSchema, type TrainConfig } from '../train/config.ts';
import { train, type TrainSummary } from '../train/trainer.ts';
import { readCheckpoint, restoreVariables } from '../train/checkpoint.ts';
import { augmentedSource } from '../train/augment.ts';
import { evaluate } from '../eval/evaluator.ts';
import { formatCI } from '../eval/stats.ts';
import { writeResult, type ResultRecord } from '../reports/results.ts';
import { UserError } from '../util/errors.ts';
import { readEpisodeFile } from '../episodes/index.ts';
import { resolveDataset } from '../data/providers/registry.ts';
import { configHash, runName } from './naming.ts';
import { silentReporter, type ExperimentReporter } from './reporter.ts';
import { softwareVersions } from './software.ts';
import { datasetOptionsWithData, episodeFileFor, openDataset, openEpisodeList, trainEpisodeSampler, type OpenedDataset, type WorkspaceOptions } from './workspace.ts';

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
    /** Where results go: `<results>/<dataset>/<name>/`. */
    results: z.string().default('results'),
    /** Folder of episode files (`<episodesDir>/<dataset>/…`). */
    episodesDir: z.string().default('episodes'),
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
    /** Replace an existing, different result of the same name (otherwise that is an error). */
    replaceResult: z.boolean().default(false),
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

function parseWithUserError<T>(schema: z.ZodType<T>, raw: unknown, what: string, fix: string): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new UserError(`invalid ${what}: ${issues}`, fix);
  }
  return parsed.data;
}

/** Validate a training config (defaults filled in); throws a UserError naming the field. */
export function validateConfig(raw: unknown): TrainConfig {
  return parseWithUserError(trainConfigSchema, raw, 'training configuration', 'fix the field in the config (or the flag that set it)');
}

function validateOptions(raw: ExperimentOptionsInput): ExperimentOptions {
  return parseWithUserError(experimentOptionsSchema, raw, 'experiment options', 'fix the option');
}

function workspaceOf(config: Pick<TrainConfig, 'dataset' | 'datasetOptions'>, o: ExperimentOptions): WorkspaceOptions {
  return { dataset: config.dataset, datasetOptions: config.datasetOptions, data: o.data, cache: o.cache, episodesDir: o.episodesDir };
}

/** Load the backend (saying which one), then build the method the config describes. */
async function backendAndMethod(config: TrainConfig, backendChoice: string, reporter: ExperimentReporter): Promise<{ backend: SelectedBackend; method: EpisodicMethod }> {
  resolveMethodName(config.method); // an unknown method fails before the backend loads
  const backend = await selectBackend(backendChoice);
  reporter.log(`backend: ${backend.choice} — ${backend.detail}`);
  const method = buildMethod({
    name: config.method, backbone: config.backbone, imageSize: config.imageSize, way: Math.max(config.train.way, config.test.way),
    seed: config.seed, headConfig: config.headConfig, wrapperOptions: config.wrapperOptions,
  });
  return { backend, method };
}

/** Meta-train a config (resuming from `<runs>/<name>/last` when it exists); keeps best/ and last/. */
export async function trainExperiment(rawConfig: TrainConfig, rawOptions: ExperimentOptionsInput = {}, hooks: ExperimentHooks = {}): Promise<TrainedRun> {
  const options = validateOptions(rawOptions);
  const validated = validateConfig(rawConfig);
  const config = { ...validated, datasetOptions: datasetOptionsWithData(validated.dataset, validated.datasetOptions, options.data) };
  const reporter = hooks.reporter ?? silentReporter;
  resolveDataset(config.dataset, config.datasetOptions); // an unknown dataset or option fails before any work
  const { backend, method } = await backendAndMethod(config, options.backend, reporter);
  const dataset = await openDataset(workspaceOf(config, options), config.imageSize, { autoPrepare: options.autoPrepare, reporter, signal: hooks.signal });
  const trainSplit = await dataset.split('train');
  const valSplit = await dataset.split('val');
  const valFile = await episodeFileFor(dataset, 'val', config.test, options.valFile, reporter);
  const valList = await openEpisodeList(valFile, valSplit, config.test);
  const name = options.name ?? runName(config);
  const runDir = path.join(options.runs, name);
  const meta = {
    configHash: configHash(config, trainSplit.splitFingerprint),
    config, method: config.method, name,
    data: {
      dataset: dataset.dataset.name, provider: { id: dataset.dataset.provider.id, options: dataset.dataset.options }, normalization: dataset.normalization,
      splitFingerprint: trainSplit.splitFingerprint, cacheFingerprint: trainSplit.cacheFingerprint, imageSize: config.imageSize,
    },
    valEpisodes: { file: valFile, sha256: valList.sha256 },
  };
  reporter.log(`training ${config.method} (${config.backbone}, ${config.imageSize}px, ${dataset.dataset.name}, train ${config.train.way}w${config.train.shot}s${config.train.query}q) for ${config.episodes} episodes → ${runDir}`);
  // The bar starts with the first report, i.e. once the trainer has accepted the run folder (lock, config check).
  let progress: ReturnType<ExperimentReporter['progress']> | undefined;
  let lastLoss = '';
  let lastVal = '';
  const norm = dataset.normalization;
  let summary: TrainSummary;
  try {
    summary = await train({
      method, config, runDir, meta,
      trainSource: config.augment === 'metaoptnet' ? (i) => augmentedSource(trainSplit.loaded, `${config.seed}/augment/${i}`, norm) : () => trainSplit.source,
      sampleTrainEpisode: trainEpisodeSampler(trainSplit, config.train, config.seed),
      validation: { source: valSplit.source, list: valList },
      onNotice: (message) => reporter.log(message),
      onProgress: (p) => {
        if (p.loss !== undefined) lastLoss = p.loss.toFixed(4);
        if (p.validation) lastVal = `${formatCI(p.validation.accuracy)}${p.validation.best ? '*' : ''}`;
        progress ??= reporter.progress('train', config.episodes);
        progress.update(p.episode, { loss: lastLoss, val: lastVal || '-', lr: p.lr.toExponential(2) });
      },
    });
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
  name: string;
  summary?: TrainSummary;
}

async function existingResult(dir: string): Promise<ResultRecord | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(dir, 'result.json'), 'utf8')) as ResultRecord;
  } catch {
    return undefined;
  }
}

/** Restore a checkpoint into the target's method, score it on the test episodes, write the result. */
async function evaluateAndRecord(target: EvaluationTarget, checkpointDir: string, options: ExperimentOptions, reporter: ExperimentReporter, t0: number): Promise<{ record: ResultRecord; resultDir: string; reused: boolean }> {
  const { config, method, dataset } = target;
  const ckpt = await readCheckpoint(checkpointDir);
  const testSplit = await dataset.split('test');
  const testFile = await episodeFileFor(dataset, 'test', config.test, options.testFile, reporter);
  const list = await openEpisodeList(testFile, testSplit, config.test);
  const total = Math.min(options.testEpisodes ?? list.count, list.count);
  const resultDir = path.join(options.results, dataset.dataset.name, target.name);
  const hash = configHash(config, testSplit.splitFingerprint);
  const prev = await existingResult(resultDir);
  if (prev) {
    const t = prev.training as { trainedAtEpisode?: unknown } | undefined;
    const same = prev.configHash === hash && prev.episodes.sha256 === list.sha256 && prev.episodes.evaluated === total && t?.trainedAtEpisode === ckpt.file.meta.episode;
    if (same && options.reuseResult) {
      reporter.log(`kept the existing result ${resultDir} (same config, checkpoint and episodes)`);
      return { record: prev, resultDir, reused: true };
    }
    // Never replace a different result silently (e.g. a 2,000-episode result by a 5-episode evaluation).
    if (!same && !options.replaceResult) {
      throw new UserError(
        `${resultDir} already holds a different result (${prev.episodes.evaluated} episodes of ${prev.episodes.file}, checkpoint at episode ${String(t?.trainedAtEpisode)}); this evaluation (${total} episodes of ${testFile}, checkpoint at episode ${String(ckpt.file.meta.episode)}) would replace it`,
        'pass --name to write this result under another name (or --replace-result to replace it)',
      );
    }
  }
  restoreVariables(ckpt, [...method.trainableVariables(), ...method.stateVariables()]);
  const progress = reporter.progress('eval', total);
  let result;
  try {
    result = evaluate(method, testSplit.source, list, { limit: total, onProgress: (d) => progress.update(d) });
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
      backend: { choice: target.backend.choice, detail: target.backend.detail },
      data: {
        dataset: dataset.dataset.name, provider: { id: dataset.dataset.provider.id, options: dataset.dataset.options }, normalization: dataset.normalization,
        imageSize: config.imageSize, splitFingerprint: testSplit.splitFingerprint, cacheFingerprint: testSplit.cacheFingerprint,
      },
      episodes: { file: testFile, sha256: list.sha256, split: 'test', ...config.test, evaluated: total },
      wallSeconds: { train: target.summary?.wallSeconds, eval: result.wallSeconds, total: (performance.now() - t0) / 1000 },
      training: {
        ...(target.summary ? { episodesTrained: target.summary.episodesTrained, resumedFrom: target.summary.resumedFrom, best: target.summary.best, wallSeconds: target.summary.wallSeconds } : {}),
        run: ckpt.file.meta.name, trainedAtEpisode: ckpt.file.meta.episode, trainData: ckpt.file.meta.data, valEpisodes: ckpt.file.meta.valEpisodes,
      },
      checkpoint: checkpointDir,
      software: softwareVersions(),
      config: { ...config, describe: method.describe() },
    },
    result,
  );
  return { record, resultDir, reused: false };
}

/** An explicit episode file exists, parses and holds the task shape asked for (its fingerprint is checked on use). */
async function checkEpisodeFileShape(file: string, spec: { way: number; shot: number; query: number }): Promise<void> {
  const ep = await readEpisodeFile(file);
  const s = ep.header.spec;
  if (s.way !== spec.way || s.shot !== spec.shot || s.query !== spec.query) {
    throw new UserError(
      `${file} holds ${s.way}-way ${s.shot}-shot ${s.query}-query episodes, but ${spec.way}-way ${spec.shot}-shot ${spec.query}-query was asked for`,
      `make a matching file with \`fewshot episodes make --split test --way ${spec.way} --shot ${spec.shot} --query ${spec.query}\` and pass it with --test-file`,
    );
  }
}

/** Prepare (if needed) → train (resuming) → evaluate the best checkpoint → record. */
export async function runExperiment(rawConfig: TrainConfig, rawOptions: ExperimentOptionsInput = {}, hooks: ExperimentHooks = {}): Promise<ExperimentResult> {
  const t0 = performance.now();
  const options = validateOptions(rawOptions);
  const reporter = hooks.reporter ?? silentReporter;
  // Every file the evaluation will need is checked before the first training episode.
  if (options.testFile) await checkEpisodeFileShape(options.testFile, validateConfig(rawConfig).test);
  const run = await trainExperiment(rawConfig, options, hooks);
  const { record, resultDir, reused } = await evaluateAndRecord(run, run.summary.bestCheckpoint, options, reporter, t0);
  return { config: run.config, runDir: run.runDir, name: run.name, checkpoint: run.summary.bestCheckpoint, training: run.summary, resultDir, record, reused };
}

export interface EvaluateCheckpointRequest {
  /** A `runs/<name>/best` (or `last`) directory. */
  checkpoint: string;
  /** Evaluate at this shot instead of the trained one (result name gets `_eval<shot>s`). */
  shot?: number;
  /** Evaluate on another dataset than the one trained on (cross-domain); default: the trained one. */
  dataset?: string;
  datasetOptions?: Record<string, unknown>;
}

/** The config a checkpoint was trained with (validated; older checkpoints get today's defaults). */
export async function checkpointConfig(checkpointDir: string): Promise<TrainConfig> {
  const ckpt = await readCheckpoint(checkpointDir);
  const saved = ckpt.file.meta.config;
  if (!saved) throw new UserError(`checkpoint ${checkpointDir} has no recorded config`, 'evaluate a checkpoint written by `fewshot train`');
  return parseWithUserError(trainConfigSchema, saved, `config recorded in ${checkpointDir}`, 'retrain with this version of fewshot');
}

/** Score a saved checkpoint on fixed test episodes and write the result. */
export async function evaluateCheckpoint(request: EvaluateCheckpointRequest, rawOptions: ExperimentOptionsInput = {}, hooks: ExperimentHooks = {}): Promise<ExperimentResult> {
  const t0 = performance.now();
  const options = validateOptions(rawOptions);
  const reporter = hooks.reporter ?? silentReporter;
  const saved = await checkpointConfig(request.checkpoint);
  const ckpt = await readCheckpoint(request.checkpoint);
  const dataset = request.dataset ?? saved.dataset;
  const baseOptions = request.dataset !== undefined ? (request.datasetOptions ?? {}) : (request.datasetOptions ?? saved.datasetOptions);
  const config: TrainConfig = {
    ...saved,
    test: { ...saved.test, shot: request.shot ?? saved.test.shot },
    dataset,
    datasetOptions: datasetOptionsWithData(dataset, baseOptions, options.data),
  };
  resolveDataset(config.dataset, config.datasetOptions);
  const { backend, method } = await backendAndMethod(config, options.backend, reporter);
  const opened = await openDataset(workspaceOf(config, options), config.imageSize, { autoPrepare: options.autoPrepare, reporter, signal: hooks.signal });
  const name = options.name ?? `${String(ckpt.file.meta.name ?? path.basename(path.dirname(request.checkpoint)))}${request.shot ? `_eval${config.test.shot}s` : ''}`;
  try {
    const { record, resultDir, reused } = await evaluateAndRecord({ config, method, backend, dataset: opened, name }, request.checkpoint, options, reporter, t0);
    return { config, runDir: path.dirname(request.checkpoint), name, checkpoint: request.checkpoint, resultDir, record, reused };
  } finally {
    tf.disposeVariables();
  }
}
