import * as tf from '@tensorflow/tfjs-core';
import { buildMethodForClasses, type MethodSpec } from '../eval/classify.ts';
import type { EpisodicMethod } from '../methods/contract.ts';
import { assignWeights, parseExportManifest, type ExportManifest } from '../methods/portable.ts';
import { UserError } from '../util/errors.ts';
import { readTar } from './tar.ts';

/**
 * Loading an export (`fewshot export`, methods/portable.ts) in the page: from the server (`fewshot serve
 * --model`, via tf.io.http) or from files the user picks or drops (the folder's files, or a .tar / .tar.gz
 * / .tgz of it, via tf.io.browserFiles). Weights stay as plain float32 arrays, so the method can be rebuilt
 * on any backend the user switches to.
 */
declare const __FEWSHOT_VERSION__: string;
/** The fewshot version this page was built from (scripts/build-web.mjs defines it from package.json). */
export const PAGE_VERSION = __FEWSHOT_VERSION__;

export interface LoadedExport {
  manifest: ExportManifest;
  /** Checkpoint key → weights. */
  weights: Map<string, { shape: number[]; values: Float32Array }>;
  /** Where it came from, for messages. */
  source: string;
  weightBytes: number;
}

const INCOMPLETE_FIX =
  'choose the whole export folder (model.json and every .bin file beside it), or an archive of it; `fewshot export <checkpoint>` writes one';

function joinWeightData(data: ArrayBuffer | ArrayBuffer[] | undefined): ArrayBuffer {
  if (data === undefined) return new ArrayBuffer(0);
  if (!Array.isArray(data)) return data;
  const total = data.reduce((n, b) => n + b.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const b of data) {
    out.set(new Uint8Array(b), at);
    at += b.byteLength;
  }
  return out.buffer;
}

function fromArtifacts(artifacts: tf.io.ModelArtifacts, source: string): LoadedExport {
  if (artifacts.format !== undefined && artifacts.format !== 'fewshot-method') {
    throw new UserError(`${source} is a tfjs ${artifacts.format}, not a fewshot export`, INCOMPLETE_FIX);
  }
  const manifest = parseExportManifest(artifacts.modelTopology, PAGE_VERSION, source);
  const specs = artifacts.weightSpecs ?? [];
  const buffer = joinWeightData(artifacts.weightData as ArrayBuffer | ArrayBuffer[] | undefined);
  const expected = specs.reduce((n, s) => n + 4 * s.shape.reduce((a, b) => a * b, 1), 0);
  if (buffer.byteLength !== expected) {
    throw new UserError(
      `${source}: the weight files hold ${buffer.byteLength} bytes but model.json describes ${expected}`,
      `the export is truncated or damaged; ${INCOMPLETE_FIX}`,
    );
  }
  const weights = new Map<string, { shape: number[]; values: Float32Array }>();
  let offset = 0;
  for (const s of specs) {
    if (s.dtype !== 'float32' || s.quantization)
      throw new UserError(`${source}: weight ${s.name} is ${s.quantization ? 'quantized' : s.dtype}, fewshot exports are float32`, INCOMPLETE_FIX);
    const n = s.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(buffer.slice(offset, offset + 4 * n));
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(values[i])) throw new UserError(`${source}: weight ${s.name} holds a non-finite value`, `the export is damaged; ${INCOMPLETE_FIX}`);
    }
    weights.set(s.name, { shape: [...s.shape], values });
    offset += 4 * n;
  }
  return { manifest, weights, source, weightBytes: buffer.byteLength };
}

/** tf.io reports a bad file with a plain Error: say which export and what to do. */
async function loadArtifacts(handler: tf.io.IOHandler, source: string): Promise<tf.io.ModelArtifacts> {
  try {
    return await handler.load!();
  } catch (err) {
    const msg = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new UserError(`${source} cannot be read: ${msg}`, INCOMPLETE_FIX);
  }
}

/** The export the server offers (`fewshot serve --model`). */
export async function loadServedExport(url: string): Promise<LoadedExport> {
  return fromArtifacts(await loadArtifacts(tf.io.http(url), 'the served model'), 'the served model');
}

const isArchive = (name: string) => /\.(tar|tar\.gz|tgz)$/i.test(name);

/** An export from the user's files: the folder's files (model.json + shards) or one archive of them. */
export async function loadExportFiles(files: File[]): Promise<LoadedExport> {
  if (files.length === 1 && isArchive(files[0].name)) {
    let entries: File[];
    try {
      entries = await readTar(files[0]);
    } catch (err) {
      throw new UserError(`${files[0].name} is not a readable archive: ${(err as Error).message}`, INCOMPLETE_FIX);
    }
    return loadExportFiles(entries.map((f) => new File([f], f.name.split('/').pop()!, { type: f.type })).filter((f) => f.name && !f.name.startsWith('.')));
  }
  const jsons = files.filter((f) => f.name === 'model.json');
  if (jsons.length !== 1) {
    const names = files
      .map((f) => f.name)
      .slice(0, 4)
      .join(', ');
    throw new UserError(
      jsons.length === 0 ? `no model.json among the chosen files (${names || 'none'})` : 'more than one model.json among the chosen files',
      INCOMPLETE_FIX,
    );
  }
  const source = files.length === 1 ? 'model.json' : `model.json (+ ${files.length - 1} file${files.length === 2 ? '' : 's'})`;
  let topology: unknown;
  try {
    topology = (JSON.parse(await jsons[0].text()) as { modelTopology?: unknown }).modelTopology;
  } catch (err) {
    throw new UserError(`model.json is not valid JSON (${(err as Error).message})`, INCOMPLETE_FIX);
  }
  // Version and format first: a model from another fewshot is named as such, not as a missing shard.
  parseExportManifest(topology, PAGE_VERSION, 'model.json');
  const shards = files.filter((f) => f.name.endsWith('.bin'));
  return fromArtifacts(await loadArtifacts(tf.io.browserFiles([jsons[0], ...shards]), source), source);
}

export function methodSpecOf(manifest: ExportManifest): MethodSpec {
  const m = manifest.method;
  return {
    method: m.name,
    backbone: m.backbone,
    imageSize: manifest.image.size,
    seed: m.seed,
    trainedWay: m.trainedWay,
    headConfig: m.headConfig,
    wrapperOptions: m.wrapperOptions,
  };
}

/** The export's method for `way` classes on the current backend, with its weights assigned. */
export function instantiate(model: LoadedExport, way: number): EpisodicMethod {
  let method: EpisodicMethod;
  try {
    method = buildMethodForClasses(methodSpecOf(model.manifest), way);
  } catch (err) {
    if (err instanceof UserError) throw new UserError(`${model.source}: ${err.problem}`, `this page has only fewshot's built-in methods; ${INCOMPLETE_FIX}`);
    throw err;
  }
  const named: tf.NamedTensorMap = {};
  for (const [key, w] of model.weights) named[key] = tf.tensor(w.values, w.shape, 'float32');
  try {
    assignWeights(named, [...method.trainableVariables(), ...method.stateVariables()], model.source);
  } finally {
    tf.dispose(Object.values(named));
  }
  return method;
}
