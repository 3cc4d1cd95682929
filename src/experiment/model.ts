import { listBackbones } from '../backbones/registry.ts';
import { MINI_IMAGENET_NORMALIZATION, type Normalization } from '../data/normalize.ts';
import { getDatasetProvider } from '../data/providers/registry.ts';
import { buildMethodForClasses, type MethodSpec } from '../eval/classify.ts';
import type { EpisodicMethod } from '../methods/contract.ts';
import { resolveMethodName } from '../methods/registry.ts';
import { readCheckpoint, restoreVariables, type LoadedCheckpoint } from '../train/checkpoint.ts';
import { trainConfigSchema, type TrainConfig } from '../train/config.ts';
import { UserError } from '../util/errors.ts';
import { silentReporter, type ExperimentReporter } from './reporter.ts';
import { loadedPlugins, type LoadedPlugin } from './software.ts';
import { parseWithUserError } from './validate.ts';

/**
 * A trained model as `eval`, `predict` and `export` load it from a checkpoint folder: its recorded config, how its
 * images are prepared, and what rebuilds its method. The browser page loads an export (browser/model.ts) instead of
 * a checkpoint (a checkpoint is read with Node's fs), and rebuilds the method through the same MethodSpec →
 * buildMethodForClasses step (eval/classify.ts) that `instantiate` uses here.
 */
export interface LoadedModel {
  checkpoint: string;
  /** The config it was trained with (validated; older checkpoints get today's defaults). */
  config: TrainConfig;
  file: LoadedCheckpoint;
  image: ImageSettings;
  spec: MethodSpec;
  /** The method for `way` classes (default: as trained) on the current backend, with the checkpoint's weights. */
  instantiate(way?: number): EpisodicMethod;
}

/** How a checkpoint's images are prepared: its image size, grey or colour, and its normalisation. */
export interface ImageSettings {
  imageSize: number;
  grayscale: boolean;
  normalization: Normalization;
}

interface RecordedData {
  normalization?: { mean: [number, number, number]; std: [number, number, number] };
  provider?: { id: string; options?: Record<string, unknown> };
}

/** The image settings recorded in a checkpoint (older checkpoints: the provider's constants). */
export function checkpointImageSettings(ckpt: LoadedCheckpoint, config: TrainConfig): ImageSettings {
  const data = (ckpt.file.meta.data ?? {}) as RecordedData;
  let normalization: Normalization = data.normalization ?? MINI_IMAGENET_NORMALIZATION;
  if (!data.normalization) {
    // Checkpoints from before normalisation was recorded: the provider's constants (mini-ImageNet's then).
    try {
      normalization = getDatasetProvider(config.dataset).normalization(config.datasetOptions as never, {} as never);
    } catch {
      normalization = MINI_IMAGENET_NORMALIZATION;
    }
  }
  return { imageSize: config.imageSize, grayscale: data.provider?.options?.grayscale === true, normalization };
}

/** What rebuilds the checkpoint's method (eval/classify.ts). */
export function checkpointMethodSpec(config: TrainConfig): MethodSpec {
  return {
    method: config.method,
    backbone: config.backbone,
    imageSize: config.imageSize,
    seed: config.seed,
    trainedWay: Math.max(config.train.way, config.test.way),
    headConfig: config.headConfig,
    wrapperOptions: config.wrapperOptions,
  };
}

function recordedConfig(checkpointDir: string, ckpt: LoadedCheckpoint): TrainConfig {
  const saved = ckpt.file.meta.config;
  if (ckpt.file.meta.kind === 'classifier') {
    // A classifier's config is not an episodic one: say what the checkpoint is rather than "malformed".
    throw new UserError(
      `${checkpointDir} is a checkpoint of a classifier (fewshot classify train), not of an episodic method`,
      `evaluate it with \`fewshot classify eval ${checkpointDir}\``,
    );
  }
  if (!saved) throw new UserError(`checkpoint ${checkpointDir} has no recorded config`, 'evaluate a checkpoint written by `fewshot train`');
  return parseWithUserError(trainConfigSchema, saved, `config recorded in ${checkpointDir}`, 'retrain with this version of fewshot');
}

/** The config a checkpoint was trained with (validated; older checkpoints get today's defaults). */
export async function checkpointConfig(checkpointDir: string, reporter: ExperimentReporter = silentReporter): Promise<TrainConfig> {
  return recordedConfig(checkpointDir, await readCheckpoint(checkpointDir, { onNotice: (m) => reporter.log(m) }));
}

/**
 * A checkpoint made with plugins whose method or backbone is not registered now: say which plugin made it
 * (from the checkpoint's meta) instead of "unknown method".
 */
export function requirePluginsOf(checkpointDir: string, config: TrainConfig, recorded: unknown): void {
  const plugins = Array.isArray(recorded) ? (recorded as LoadedPlugin[]) : [];
  const missing = plugins.filter((p) => !loadedPlugins().some((l) => l.module === p.module || (p.sha256 !== undefined && l.sha256 === p.sha256)));
  if (missing.length === 0) return;
  let problem: string | undefined;
  try {
    resolveMethodName(config.method);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    problem = `method "${config.method}"`;
  }
  if (!problem && !listBackbones().some((b) => b.id === config.backbone)) problem = `backbone "${config.backbone}"`;
  if (!problem) return;
  const names = missing.map((p) => `${p.module}${p.package ? ` (${p.package})` : ''}`).join(', ');
  throw new UserError(
    `checkpoint ${checkpointDir} was made with plugin ${names}, which registers its ${problem}; that plugin is not loaded`,
    `pass ${missing.map((p) => `--plugin ${p.module}`).join(' ')} (the module${missing.length > 1 ? 's' : ''} the training loaded)`,
  );
}

/**
 * Read a checkpoint once: its config, image settings and method spec; a checkpoint of a plugin's method or backbone
 * that is not loaded is refused here, naming the plugin. No backend is needed until `instantiate`.
 */
export async function loadModel(
  checkpoint: string,
  options: { reporter?: ExperimentReporter /** false: the caller refuses plugin parts itself (export) */; requirePlugins?: boolean } = {},
): Promise<LoadedModel> {
  const reporter = options.reporter ?? silentReporter;
  const file = await readCheckpoint(checkpoint, { onNotice: (m) => reporter.log(m) });
  const config = recordedConfig(checkpoint, file);
  if (options.requirePlugins !== false) requirePluginsOf(checkpoint, config, file.file.meta.plugins);
  const spec = checkpointMethodSpec(config);
  return {
    checkpoint,
    config,
    file,
    spec,
    image: checkpointImageSettings(file, config),
    instantiate(way = spec.trainedWay) {
      const method = buildMethodForClasses(spec, way);
      restoreVariables(file, [...method.trainableVariables(), ...method.stateVariables()]);
      return method;
    },
  };
}
