import path from 'node:path';
import type { SelectedBackend } from '../backend/select.ts';
import { formatCI } from '../eval/stats.ts';
import type { EpisodicMethod } from '../methods/contract.ts';
import { augmentedSource } from '../train/augment.ts';
import type { TrainConfig } from '../train/config.ts';
import { train, type TrainSummary } from '../train/trainer.ts';
import { portablePath } from '../util/portable-path.ts';
import { configHash, runName } from './naming.ts';
import { validateOptions, workspaceOf, type ExperimentHooks, type ExperimentOptions, type ExperimentOptionsInput } from './options.ts';
import { silentReporter } from './reporter.ts';
import { backendAndMethod, namingPlugins, requireFiles } from './setup.ts';
import { pluginRecords } from './software.ts';
import { trainingProgress } from './train-progress.ts';
import { resolveExperiment } from './resolve.ts';
import { episodeFileFor, openDataset, openEpisodeList, trainEpisodeSampler, type OpenedDataset } from './workspace.ts';

/** What `trainExperiment` returns: the trained method on its backend and dataset, with its training summary and run folder. */
export interface TrainedRun {
  config: TrainConfig;
  method: EpisodicMethod;
  backend: SelectedBackend;
  dataset: OpenedDataset;
  summary: TrainSummary;
  runDir: string;
  name: string;
}

/** Meta-train a config (resuming from `<runs>/<name>/last` when it exists); keeps best/ and last/. */
export async function trainExperiment(rawConfig: TrainConfig, rawOptions: ExperimentOptionsInput = {}, hooks: ExperimentHooks = {}): Promise<TrainedRun> {
  return trainWithChecks(rawConfig, validateOptions(rawOptions), hooks);
}

/**
 * Training, with `beforeTraining` run once the data is open and before the first episode (`run` opens and
 * verifies its test file there, so a bad test file is reported before the training, not after it).
 */
export async function trainWithChecks(
  rawConfig: TrainConfig,
  options: ExperimentOptions,
  hooks: ExperimentHooks,
  beforeTraining?: (dataset: OpenedDataset, config: TrainConfig) => Promise<void>,
): Promise<TrainedRun> {
  // every check of the config, once, before any work: an unknown dataset, option, method or backbone fails here
  const resolved = resolveExperiment(rawConfig, options.data);
  const { config } = resolved;
  const reporter = hooks.reporter ?? silentReporter;
  await requireFiles([['--val-file', options.valFile], ...(beforeTraining ? [['--test-file', options.testFile] as [string, string | undefined]] : [])]);
  const { backend, method } = await backendAndMethod(config, resolved.method, options.backend, reporter);
  const dataset = await openDataset(workspaceOf(config, options, resolved.dataset), config.imageSize, {
    autoPrepare: options.autoPrepare,
    reporter,
    signal: hooks.signal,
  });
  const trainSplit = await dataset.split('train');
  const valSplit = await dataset.split('val');
  const valFile = await episodeFileFor(dataset, 'val', config.test, options.valFile, reporter);
  const valList = await openEpisodeList(valFile, valSplit, config.test);
  await beforeTraining?.(dataset, config);
  const name = options.name ?? runName(config);
  const runDir = path.join(options.runs, name);
  const meta = {
    configHash: configHash(config, trainSplit.splitFingerprint),
    config,
    method: config.method,
    name,
    data: {
      dataset: dataset.dataset.name,
      provider: { id: dataset.dataset.provider.id, options: dataset.dataset.options },
      normalization: dataset.normalization,
      splitFingerprint: trainSplit.splitFingerprint,
      cacheFingerprint: trainSplit.cacheFingerprint,
      imageSize: config.imageSize,
    },
    // Portable like a result's paths: long runs' checkpoints are committed and resumed from other clones.
    valEpisodes: { file: portablePath(valFile), sha256: valList.sha256 },
    // which plugins made this model: `fewshot eval` without them names them instead of "unknown method"
    plugins: pluginRecords(),
  };
  reporter.log(
    `training ${config.method} (${config.backbone}, ${config.imageSize}px, ${dataset.dataset.name}, train ${config.train.way}w${config.train.shot}s${config.train.query}q, augmentation ${config.augment === 'metaoptnet' ? 'metaoptnet (random crop + colour jitter + flip)' : 'none'}) for ${config.episodes} episodes → ${runDir}`,
  );
  const norm = dataset.normalization;
  let summary: TrainSummary;
  const progress = trainingProgress(reporter, config);
  try {
    summary = await train({
      method,
      config,
      runDir,
      meta,
      logEvery: options.logEvery,
      trainSource: config.augment === 'metaoptnet' ? (i) => augmentedSource(trainSplit.loaded, `${config.seed}/augment/${i}`, norm) : () => trainSplit.source,
      sampleTrainEpisode: trainEpisodeSampler(trainSplit, config.train, config.seed),
      validation: { source: valSplit.source, list: valList },
      onNotice: (message) => reporter.log(message),
      onProgress: progress.onProgress,
    });
  } catch (err) {
    throw namingPlugins(err);
  } finally {
    progress.stop();
  }
  if (summary.resumedFrom) reporter.log(`resumed from episode ${summary.resumedFrom}`);
  if (summary.best) reporter.log(`best validation (${summary.best.mode}) ${formatCI(summary.best.accuracy)} at episode ${summary.best.episode}`);
  return { config, method, backend, dataset, summary, runDir, name };
}
