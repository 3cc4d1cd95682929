import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../backend/select.ts';
import { RESIZE_METHOD } from '../data/decode.ts';
import { learnerOrigin } from '../learners/registry.ts';
import { checkpointKey } from '../backbones/layers.ts';
import { EXPORT_FORMAT, EXPORT_TFJS_FORMAT, type ExportManifest } from '../methods/portable.ts';
import { resolveMethodName } from '../methods/registry.ts';
import { replaceDirAtomic } from '../util/atomic.ts';
import { UserError } from '../util/errors.ts';
import { packageInfo } from '../util/package-root.ts';
import { BUILTIN_ORIGIN } from '../util/plugin-origin.ts';
import { loadModel } from './model.ts';
import { silentReporter, type ExperimentReporter } from './reporter.ts';

/**
 * `fewshot export`: a checkpoint as the browser page loads it (methods/portable.ts). tfjs's model artifacts:
 * `model.json` (format `fewshot-method`, the manifest as modelTopology, a weightsManifest) and the weights
 * as float32 shards of at most 4 MiB (`group1-shard<i>of<n>.bin`, tfjs-converter's naming and size), so
 * `tf.io.http` / `tf.io.browserFiles` read them. Only the method's variables go in (no optimizer slots).
 * The folder is written atomically: an interrupted export leaves no half-written model.
 */
export interface ExportRequest {
  /** A `runs/<name>/best` (or `last`) directory. */
  checkpoint: string;
  /** Output folder; default `<checkpoint>-web` beside the checkpoint (e.g. runs/<name>/best-web). */
  out?: string;
  /** Where the run's result.json is looked for (its training command); default `results`. */
  results?: string;
  reporter?: ExperimentReporter;
}

export interface ExportResult {
  out: string;
  files: string[];
  weightBytes: number;
  manifest: ExportManifest;
}

/** tfjs-converter's default shard size. */
export const SHARD_BYTES = 4 * 1024 * 1024;

/** The page bundles only fewshot's built-in learners: a plugin's learner cannot run there. */
function refusePluginLearner(checkpoint: string, method: string, plugins: unknown): string {
  const recorded = Array.isArray(plugins) ? (plugins as { module?: string; package?: string }[]) : [];
  const names = recorded.map((p) => `${p.module ?? '?'}${p.package ? ` (${p.package})` : ''}`).join(', ');
  let headId: string;
  try {
    headId = resolveMethodName(method).headId;
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    throw new UserError(
      `checkpoint ${checkpoint} is of method "${method}"${names ? `, made with plugin ${names}` : ''}; the browser page has only fewshot's built-in learners and methods, so it cannot load it`,
      'export a checkpoint of a built-in method (`fewshot list` shows them), or classify with `fewshot predict --plugin <module>` instead',
    );
  }
  const origin = learnerOrigin(headId);
  if (origin !== BUILTIN_ORIGIN) {
    throw new UserError(
      `checkpoint ${checkpoint} uses learner "${headId}" from plugin ${origin}; the browser page has only fewshot's built-in learners, so it cannot load it`,
      'export a checkpoint of a built-in learner (`fewshot list` shows them), or classify with `fewshot predict --plugin <module>` instead',
    );
  }
  return headId;
}

/** The run's training command from its result.json, when that result belongs to this checkpoint's config. */
async function trainingCommand(resultsDir: string, runName: unknown, configHash: unknown): Promise<string | null> {
  if (typeof runName !== 'string') return null;
  try {
    const record = JSON.parse(await fs.readFile(path.join(resultsDir, runName, 'result.json'), 'utf8')) as { command?: unknown; configHash?: unknown };
    return typeof record.command === 'string' && record.configHash === configHash ? record.command : null;
  } catch {
    return null;
  }
}

/** Replacing --out must never delete a user's folder: only a previous export (or nothing) may be there. */
async function refuseForeignOut(out: string): Promise<void> {
  const st = await fs.lstat(out).catch(() => undefined);
  if (!st) return;
  let format: unknown;
  try {
    format = (JSON.parse(await fs.readFile(path.join(out, 'model.json'), 'utf8')) as { format?: unknown }).format;
  } catch {
    format = undefined;
  }
  if (format !== EXPORT_TFJS_FORMAT) {
    throw new UserError(`${out} already exists and is not a fewshot export`, 'choose another --out folder (it is created), or remove that one');
  }
}

export async function exportCheckpoint(request: ExportRequest): Promise<ExportResult> {
  const reporter = request.reporter ?? silentReporter;
  // The page has only built-in parts: a plugin's checkpoint is refused below with that reason, not "load the plugin".
  const model = await loadModel(request.checkpoint, { reporter, requirePlugins: false });
  const { config, spec, image } = model;
  const meta = model.file.file.meta;
  const headId = refusePluginLearner(request.checkpoint, config.method, meta.plugins);
  const { wrapper } = resolveMethodName(config.method);
  const out = path.resolve(request.out ?? `${path.resolve(request.checkpoint)}-web`);
  await refuseForeignOut(out);

  // Build the method and restore the checkpoint into it: the export holds exactly the variables the page
  // will assign (same keys, same shapes), and a checkpoint that does not match its method fails here.
  await selectBackend('cpu');
  let encoded: { data: ArrayBuffer; specs: tf.io.WeightsManifestEntry[] };
  let describe: Record<string, unknown>;
  let inferenceModes: string[];
  try {
    const method = model.instantiate();
    inferenceModes = [...method.inferenceModes];
    const variables = [...method.trainableVariables(), ...method.stateVariables()];
    encoded = await tf.io.encodeWeights(variables.map((v) => ({ name: checkpointKey(v), tensor: v })));
    describe = method.describe();
  } finally {
    tf.disposeVariables();
  }

  const data = meta.data as Record<string, unknown> | undefined;
  const version = packageInfo().version;
  const manifest: ExportManifest = {
    format: EXPORT_FORMAT,
    fewshotVersion: version,
    method: {
      name: config.method,
      head: headId,
      wrapper: wrapper.suffix,
      backbone: config.backbone,
      seed: config.seed,
      trainedWay: spec.trainedWay,
      headConfig: config.headConfig ?? {},
      wrapperOptions: config.wrapperOptions ?? {},
      describe,
      inferenceModes,
    },
    image: {
      size: image.imageSize,
      grayscale: image.grayscale,
      normalization: { mean: [...image.normalization.mean] as [number, number, number], std: [...image.normalization.std] as [number, number, number] },
      resize: RESIZE_METHOD,
    },
    provenance: {
      run: meta.name ?? null,
      checkpoint: path.basename(path.resolve(request.checkpoint)),
      episode: meta.episode ?? null,
      best: meta.best ?? null,
      configHash: meta.configHash ?? null,
      config,
      trainingCommand: await trainingCommand(path.resolve(request.results ?? 'results'), meta.name, meta.configHash),
      checkpointWeightsSha256: model.file.file.weightsSha256 ?? null,
      dataset: data?.dataset ?? config.dataset,
      splitFingerprint: data?.splitFingerprint ?? null,
      cacheFingerprint: data?.cacheFingerprint ?? null,
      valEpisodes: meta.valEpisodes ?? null,
      plugins: meta.plugins ?? [],
    },
  };

  const bytes = new Uint8Array(encoded.data);
  const shardCount = Math.max(1, Math.ceil(bytes.length / SHARD_BYTES));
  const shards = Array.from({ length: shardCount }, (_, i) => `group1-shard${i + 1}of${shardCount}.bin`);
  const modelJson = {
    format: EXPORT_TFJS_FORMAT,
    generatedBy: `fewshot ${version}`,
    convertedBy: null,
    modelTopology: manifest,
    weightsManifest: [{ paths: shards, weights: encoded.specs }],
  };
  await replaceDirAtomic(
    out,
    async (tmp) => {
      for (let i = 0; i < shardCount; i++) await fs.writeFile(path.join(tmp, shards[i]), bytes.subarray(i * SHARD_BYTES, (i + 1) * SHARD_BYTES));
      // model.json last: a folder with it is complete (the atomic rename makes that so anyway).
      await fs.writeFile(path.join(tmp, 'model.json'), `${JSON.stringify(modelJson, null, 1)}\n`);
    },
    'export',
  );
  reporter.log(
    `exported ${config.method} (${config.backbone}, ${image.imageSize}px, ${inferenceModes.join('/')}) to ${out}: model.json + ${shardCount} shard${shardCount === 1 ? '' : 's'} (${bytes.length} bytes)`,
  );
  return { out, files: ['model.json', ...shards], weightBytes: bytes.length, manifest };
}
