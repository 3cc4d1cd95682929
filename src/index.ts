/**
 * fewshot's public API: everything a plugin or a script imports, as `import { ... } from 'fewshot'`.
 * Importing it registers the built-in backbones, heads, method wrappers and transform sets, so a plugin's
 * registrations join them. Anything not exported here is internal and may change between versions.
 */
import './builtin.ts';

// The tfjs-core and zod instances fewshot itself uses: a plugin that takes them from here can never end up
// with a second tfjs engine (whose tensors and gradients fewshot's would not see) or an incompatible zod.
export * as tf from '@tensorflow/tfjs-core';
// …with the types of the chained tensor methods (`x.toFloat()`, `x.mul(y)`) that src/tf-gradients.ts registers
// at run time: tfjs-core declares them in a module augmentation that only an import of this file brings into a
// program. A type-only export: nothing is loaded at run time, and it stays in the published .d.ts.
export type {} from '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';
export { z } from 'zod';

// --- Plugin API version -----------------------------------------------------------------------------------
export { FEWSHOT_API_VERSION } from './util/plugin-origin.ts';
export { UserError, NumericalError } from './util/errors.ts';

// --- Registries: what a plugin registers -----------------------------------------------------------------
export { registerHead, registerLearner, registerAdaptiveLearner, getLearner, listLearners } from './learners/registry.ts';
export { registerBackbone, getBackbone, listBackbones } from './backbones/registry.ts';
export { registerWrapper, listWrappers } from './methods/registry.ts';
export { registerTransformSet, getTransformSet, listTransformSets } from './transforms/registry.ts';
export { registerDatasetProvider, getDatasetProvider, listDatasetProviders } from './data/providers/registry.ts';
export type { DatasetProvider, LocateContext, ProviderPrepareRequest } from './data/providers/contract.ts';

// --- The cache writer a dataset provider's `prepare` feeds its items to -------------------------------------
export {
  writeImageCache,
  cacheDirFor,
  readCacheManifest,
  type CacheManifest,
  type FileClass,
  type FileItem,
  type FileSplit,
  type PrepareProgress,
  type PrepareResult,
  type QuarterTurns,
  type RawImage,
  type WriteImageCacheOptions,
} from './data/index.ts';

// --- The experiment layer: prepare → train → evaluate → record, from a validated config -----------------
export {
  runExperiment,
  trainExperiment,
  evaluateCheckpoint,
  validateConfig,
  collectingReporter,
  silentReporter,
  loadPlugins,
  prepareCache,
  defaultEpisodeFile,
  loadExperimentConfig,
  type ConfigOverrides,
  type EvaluateCheckpointRequest,
  type ExperimentHooks,
  type ExperimentOptions,
  type ExperimentOptionsInput,
  type ExperimentResult,
  type TrainedRun,
  type ExperimentReporter,
  type ProgressHandle,
  type WorkspaceOptions,
} from './experiment/index.ts';
export {
  reproduceTable,
  estimateReproduction,
  compareResults,
  makeEpisodeFile,
  describeRegistries,
  loadModel,
  type LoadedModel,
  type ReproduceRequest,
  type ReproduceOutcome,
  type CompareRequest,
  type Comparison,
  type MakeEpisodeFileRequest,
  type RegistryListing,
} from './experiment/index.ts';
// Classification (issue 31; docs/classification.md): train / evaluate a classifier, load it as a pre-trained embedding.
export {
  runClassification,
  evaluateClassifier,
  loadClassifier,
  readClassifierCheckpoint,
  CLASSIFIER_CHECKPOINT_KIND,
  type ClassifierEvaluation,
  type ClassifierRun,
  type LoadedClassifier,
  type ModeAccuracy,
  type SplitRecord,
} from './experiment/index.ts';
export { ClassifierMethod } from './methods/classifier.ts';
export { classificationSplit, longTailCounts, shotGroupOf, SHOT_GROUPS } from './data/classification-split.ts';
export { planTable } from './experiment/reproduce/plan.ts';
export { readResult, type ResultRecord, type LoadedResult } from './reports/results.ts';

// --- Contracts ---------------------------------------------------------------------------------------------
export type { Backbone, BackboneFactory, FastWeights } from './backbones/contract.ts';
export type {
  AdaptedTask,
  AdaptiveLearner,
  AdaptiveLearnerFactory,
  EmbeddedEpisode,
  FewShotHead,
  HeadFactory,
  ImageTask,
  Learner,
  LearnerFactory,
  LearnerSetup,
} from './learners/contract.ts';
export { isAdaptive } from './learners/contract.ts';
export type { EpisodicMethod, MethodWrapper, MethodWrapperOptions } from './methods/contract.ts';
export type { ImageTransform, TransformSet } from './transforms/contract.ts';

// --- Building blocks for learners -------------------------------------------------------------------------
export { classMeans, oneHotLabels, squaredDistances } from './learners/ops.ts';
export { detach, fastWeights, innerSgdStep, learnerVariable, type InnerStepOptions } from './learners/adaptive.ts';
export { crossEntropy, crossEntropyTwiceDifferentiable } from './losses/cross-entropy.ts';
export { aggregateJointLogits, jointLabels, repeatLabels, singleInferenceLogits, transformLabels } from './methods/aggregate.ts';
export { stopGradient } from './methods/distill.ts';
export { fitTask, type FittedTask } from './methods/fit.ts';

// --- Programmatic use: episodes, methods, training, evaluation, statistics --------------------------------
export {
  sampleEpisode,
  sampleEpisodes,
  readEpisodeFile,
  makeEpisodes,
  writeEpisodeFile,
  episodeFileName,
  STANDARD_EPISODE_SETS,
  registerStandardEpisodeSets,
  type StandardEpisodeSet,
  type EpisodeSpec,
  type ClassLayout,
  type SampledEpisode,
  type EpisodeSet,
  type LoadedEpisodeFile,
} from './episodes/index.ts';
export { buildMethod, type MethodRequest } from './methods/build.ts';
export { selectBackend, type BackendChoice, type SelectedBackend } from './backend/select.ts';
export { train, type TrainerInputs, type TrainProgress, type TrainSummary } from './train/trainer.ts';
export type { TrainConfig } from './train/config.ts';
export { toEpisodeImages, disposeEpisode, type EpisodeImages, type EpisodeIndices, type ImageSource } from './episodes/images.ts';
export { evaluate, accuracyOf, type EpisodeList, type EvalResult } from './eval/evaluator.ts';
export { meanCI, pairedDifference, formatCI, type MeanCI } from './eval/stats.ts';
