// Public surface of the experiment layer: run, train and evaluate experiments from a validated config.
export {
  evaluateCheckpoint,
  experimentOptionsSchema,
  runExperiment,
  trainExperiment,
  type EvaluateCheckpointRequest,
  type ExperimentHooks,
  type ExperimentOptions,
  type ExperimentOptionsInput,
  type ExperimentResult,
  type TrainedRun,
} from './experiment.ts';
export { validateConfig } from './validate.ts';
export { checkpointConfig } from './model.ts';
export { resolveExperiment, type ResolvedExperiment } from './resolve.ts';
export { loadExperimentConfig, readExperimentFile, type ConfigOverrides } from './config.ts';
export { collectingReporter, silentReporter, type ExperimentReporter, type ProgressHandle } from './reporter.ts';
export { configHash, runName } from './naming.ts';
export { DEFAULT_RESULTS, REFERENCE_RESULTS } from '../util/result-folders.ts';
export { checkData, dataCheckFailure, type DataCheckReport, type DataCheckRequest } from './data-check.ts';
export { loadPlugins, softwareVersions } from './software.ts';
export { listQuery, listSupport, predictImages, type PredictRequest, type PredictResult, type QueryPrediction } from './predict.ts';
export {
  CACHE_ENV_VAR,
  datasetOptionsWithData,
  defaultEpisodeFile,
  defaultImageSize,
  localEpisodesDir,
  episodeFileFor,
  openDataset,
  openEpisodeList,
  prepareCache,
  resolveCacheDir,
  trainEpisodeSampler,
  type OpenedDataset,
  type OpenedSplit,
  type WorkspaceOptions,
} from './workspace.ts';
export {
  CLASSIFIER_CHECKPOINT_KIND,
  buildClassifier,
  compareClassifications,
  classifyOptionsSchema,
  classifyRunName,
  evaluateClassifier,
  formatAccuracy,
  loadClassifier,
  modeAccuracy,
  readClassifierCheckpoint,
  runClassification,
  validateClassifyConfig,
  type ClassificationComparison,
  type ClassifierEvaluation,
  type ClassifierRun,
  type ClassifyOptionsInput,
  type LoadedClassifier,
  type ModeAccuracy,
  type SplitRecord,
} from './classify.ts';
export {
  reproduceTable,
  estimateReproduction,
  reproduceRun,
  startReproduceWorker,
  runReproduceWorker,
  type ReproduceRequest,
  type ReproduceOutcome,
  type ReproduceWorkerRequest,
} from './reproduce/table.ts';
export { defaultJobs } from './reproduce/child-executor.ts';
export { describeDryRun, type DryRun } from './reproduce/dry-run.ts';
export { listTables } from '../reports/table-spec.ts';
export { DEFAULT_QUEUE_NAME, TABLES_DIR, RUN_IN_USE_EXIT_CODE } from './reproduce/defaults.ts';
export { compareResults, type CompareRequest, type Comparison, type ComparisonSide } from './compare.ts';
export { makeEpisodeFile, type MakeEpisodeFileRequest } from './episode-file.ts';
export { describeRegistries, type RegisteredPart, type RegistryListing } from './registries.ts';
export { loadModel, checkpointImageSettings, checkpointMethodSpec, requirePluginsOf, type LoadedModel, type ImageSettings } from './model.ts';
