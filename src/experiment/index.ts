// Public surface of the experiment layer: run, train and evaluate experiments from a validated config.
export {
  checkpointConfig, evaluateCheckpoint, experimentOptionsSchema, runExperiment, trainExperiment,
  type EvaluateCheckpointRequest, type ExperimentHooks, type ExperimentOptions, type ExperimentOptionsInput, type ExperimentResult, type TrainedRun,
} from './experiment.ts';
export { validateConfig } from './validate.ts';
export { loadExperimentConfig, readExperimentFile, type ConfigOverrides } from './config.ts';
export { collectingReporter, silentReporter, type ExperimentReporter, type ProgressHandle } from './reporter.ts';
export { configHash, runName } from './naming.ts';
export { DEFAULT_RESULTS, REFERENCE_RESULTS } from '../util/result-folders.ts';
export { checkData, type DataCheckReport, type DataCheckRequest } from './data-check.ts';
export { loadPlugins, softwareVersions } from './software.ts';
export { listQuery, listSupport, predictImages, type PredictRequest, type PredictResult, type QueryPrediction } from './predict.ts';
export {
  CACHE_ENV_VAR, datasetOptionsWithData, defaultEpisodeFile, defaultImageSize, localEpisodesDir, episodeFileFor, openDataset, openEpisodeList, prepareCache, resolveCacheDir, trainEpisodeSampler,
  type OpenedDataset, type OpenedSplit, type WorkspaceOptions,
} from './workspace.ts';
export {
  CLASSIFIER_CHECKPOINT_KIND, buildClassifier, compareClassifications, classifyOptionsSchema, classifyRunName, evaluateClassifier, formatAccuracy, loadClassifier, modeAccuracy, readClassifierCheckpoint, runClassification, validateClassifyConfig,
  type ClassificationComparison, type ClassifierEvaluation, type ClassifierRun, type ClassifyOptionsInput, type LoadedClassifier, type ModeAccuracy, type SplitRecord,
} from './classify.ts';
