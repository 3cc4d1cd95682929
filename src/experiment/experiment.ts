import path from 'node:path';
import type { TrainConfig } from '../train/config.ts';
import { evaluateAndRecord, type ExperimentResult } from './evaluate.ts';
import { runName } from './naming.ts';
import { validateOptions, type ExperimentHooks, type ExperimentOptionsInput } from './options.ts';
import { silentReporter } from './reporter.ts';
import { refuseCommittedResult, refuseOtherRunsResult } from './result-policy.ts';
import { openTestEpisodes, type TestEpisodes } from './setup.ts';
import { trainWithChecks } from './training.ts';

/**
 * The experiment layer: prepare → train → evaluate → record as library calls taking a validated config.
 * The CLI parses flags into a config and calls these; a script, a test or a `reproduce` command does the
 * same without flags. Nothing here reads process.argv or prints: messages go to the hooks' reporter.
 *
 * The parts live beside this file: options.ts (the options and hooks), validate.ts (config validation),
 * setup.ts (backend, method, named files, test episodes), training.ts and train-progress.ts (meta-training and its
 * progress/ETA), evaluate.ts (scoring a checkpoint), record.ts (the result record), result-policy.ts (which existing
 * result is kept, replaced or refused), model.ts (a checkpoint as a model).
 */
export { experimentOptionsSchema, type ExperimentHooks, type ExperimentOptions, type ExperimentOptionsInput } from './options.ts';
export { validateConfig } from './validate.ts';
export { trainExperiment, type TrainedRun } from './training.ts';
export { evaluateCheckpoint, type EvaluateCheckpointRequest, type ExperimentResult } from './evaluate.ts';
export { refuseCommittedResult } from './result-policy.ts';
export { checkpointConfig, requirePluginsOf } from './model.ts';

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
