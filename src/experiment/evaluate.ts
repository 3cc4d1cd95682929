import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { SelectedBackend } from '../backend/select.ts';
import { evaluate } from '../eval/evaluator.ts';
import type { EpisodicMethod } from '../methods/contract.ts';
import type { ResultRecord } from '../reports/results.ts';
import { readCheckpoint, restoreVariables, type LoadedCheckpoint } from '../train/checkpoint.ts';
import type { TrainConfig } from '../train/config.ts';
import type { TrainSummary } from '../train/trainer.ts';
import { NumericalError } from '../util/errors.ts';
import { checkRelativeName } from '../util/names.ts';
import { loadModel } from './model.ts';
import { configHash } from './naming.ts';
import { validateOptions, workspaceOf, type ExperimentHooks, type ExperimentOptions, type ExperimentOptionsInput } from './options.ts';
import { recordEvaluation } from './record.ts';
import { silentReporter, type ExperimentReporter } from './reporter.ts';
import { keptResult, refuseCommittedResult, refuseOtherRunsResult } from './result-policy.ts';
import { backendAndMethod, namingPlugins, openTestEpisodes, requireFiles, type TestEpisodes } from './setup.ts';
import { resolveExperiment } from './resolve.ts';
import { openDataset, type OpenedDataset } from './workspace.ts';

/** What `runExperiment` returns: the config, run and result folders, checkpoint, training summary and result record. */
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

/** What an evaluation scores: a method on a backend and dataset, and how its result is named and kept. */
export interface EvaluationTarget {
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

/** Restore a checkpoint into the target's method, score it on the test episodes, write the result (or keep an identical one). */
export async function evaluateAndRecord(
  target: EvaluationTarget,
  checkpointDir: string,
  options: ExperimentOptions,
  reporter: ExperimentReporter,
  t0: number,
): Promise<{ record: ResultRecord; resultDir: string; reused: boolean; name: string }> {
  const { config, method, dataset } = target;
  const ckpt = target.file ?? (await readCheckpoint(checkpointDir, { onNotice: (m) => reporter.log(m) }));
  const { file: testFile, split: testSplit, list } = target.test ?? (await openTestEpisodes(dataset, config, options, reporter));
  const total = Math.min(options.testEpisodes ?? list.count, list.count);
  const name = typeof target.name === 'string' ? target.name : target.name(testFile, total, list.count);
  const resultDir = path.join(options.results, dataset.dataset.name, name);
  const hash = configHash(config, testSplit.splitFingerprint);
  const identity = {
    configHash: hash,
    episodesSha256: list.sha256,
    evaluated: total,
    trainedAtEpisode: ckpt.file.meta.episode,
    weightsSha256: ckpt.file.weightsSha256,
  };
  const kept = await keptResult(resultDir, identity, { reuse: options.reuseResult, keepOthers: target.keepOtherResults === true });
  if (kept) {
    reporter.log(`kept the existing result ${resultDir} (same config, checkpoint and episodes)`);
    return { record: kept, resultDir, reused: true, name };
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
  const facts = {
    config,
    configHash: hash,
    method,
    backend: target.backend,
    dataset,
    testSplit,
    test: { file: testFile, sha256: list.sha256, evaluated: total },
    checkpointDir,
    checkpoint: ckpt,
    summary: target.summary,
    command: options.command,
    startedAt: t0,
  };
  return { record: await recordEvaluation(resultDir, facts, result), resultDir, reused: false, name };
}

/** What `evaluateCheckpoint` evaluates: a checkpoint folder, optionally at another shot or on another dataset. */
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
export async function evaluateCheckpoint(
  request: EvaluateCheckpointRequest,
  rawOptions: ExperimentOptionsInput = {},
  hooks: ExperimentHooks = {},
): Promise<ExperimentResult> {
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
  const opened = await openDataset(workspaceOf(config, options, resolved.dataset), config.imageSize, {
    autoPrepare: options.autoPrepare,
    reporter,
    signal: hooks.signal,
  });
  // The recorded run name becomes part of the result's path: a shared checkpoint's name must not lead out of --results.
  const run =
    options.name !== undefined
      ? ''
      : checkRelativeName(
          String(ckpt.file.meta.name ?? path.basename(path.dirname(path.resolve(request.checkpoint)))),
          `the run name recorded in ${request.checkpoint}/checkpoint.json`,
          "name the evaluation's result yourself with --name <name>",
        );
  // An evaluation gets its own result, never the run's: <run>_eval_<test file stem>[_<n>ep].
  const nameOf = (testFile: string, evaluated: number, count: number) =>
    options.name ?? `${run}_eval_${path.basename(testFile).replace(/\.json$/, '')}${evaluated < count ? `_${evaluated}ep` : ''}`;
  try {
    const { record, resultDir, reused, name } = await evaluateAndRecord(
      { config, method, backend, dataset: opened, name: nameOf, keepOtherResults: true, file: ckpt },
      request.checkpoint,
      options,
      reporter,
      t0,
    );
    return { config, runDir: path.dirname(request.checkpoint), name, checkpoint: request.checkpoint, resultDir, record, reused };
  } finally {
    tf.disposeVariables();
  }
}
