import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../backend/select.ts';
import { decodeImage } from '../data/decode.ts';
import { normalizePixels, type Normalization } from '../data/normalize.ts';
import { toGrayRgb } from '../data/pixels.ts';
import { IMAGE_EXTENSIONS } from '../data/providers/folder.ts';
import { isFolderEntry } from '../util/dir-entry.ts';
import { argmax, classifyQueries } from '../eval/classify.ts';
import { UserError } from '../util/errors.ts';
import { loadModel } from './model.ts';
export { checkpointImageSettings, checkpointMethodSpec, type ImageSettings } from './model.ts';
import { silentReporter, type ExperimentReporter } from './reporter.ts';

/**
 * Few-shot classification of a user's own images with a trained checkpoint: the support folder holds one
 * folder per class, the query is image files or folders of them. Images are decoded and resized exactly
 * as the checkpoint's dataset provider prepared its cache (decode.ts; grey when the dataset was grey) and
 * normalised with the statistics recorded in the checkpoint; the method is fitted on the support and the
 * query is scored. Probabilities are the softmax of the chosen inference mode's scores (default: the
 * method's headline mode, e.g. `ag`, aggregation over transformations, for SLA).
 */
export interface PredictRequest {
  /** A `runs/<name>/best` (or `last`) directory. */
  checkpoint: string;
  /** Folder of class folders: `<support>/<class>/<image>`. */
  support: string;
  /** Image files and/or folders of images. */
  query: string[];
  /** Inference mode to report (one of the method's modes); default the headline one. */
  mode?: string;
  /** Compute backend (default `auto`). */
  backend?: string;
  reporter?: ExperimentReporter;
}

export interface QueryPrediction {
  file: string;
  predicted: string;
  /** Class → probability, in support-class order; sums to 1. */
  probabilities: Record<string, number>;
}

export interface PredictResult {
  checkpoint: string;
  method: string;
  mode: string;
  modes: string[];
  imageSize: number;
  normalization: Normalization;
  classes: string[];
  /** Support images per class, in `classes` order. */
  shots: number[];
  predictions: QueryPrediction[];
}

const isHidden = (name: string) => name.startsWith('.') || name === 'Thumbs.db' || name === 'desktop.ini';
const isImageName = (f: string) => IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase());
const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

async function listDir(dir: string, fix: string): Promise<{ dirs: string[]; files: string[] }> {
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    throw new UserError(`${dir} is missing or not a readable folder`, fix);
  }
  const visible = entries.filter((e) => !isHidden(e.name));
  return {
    dirs: visible
      .filter((e) => isFolderEntry(dir, e))
      .map((e) => e.name)
      .sort(byCodeUnit),
    files: visible
      .filter((e) => !isFolderEntry(dir, e))
      .map((e) => e.name)
      .sort(byCodeUnit),
  };
}

function checkImageName(file: string, fix: string): void {
  if (!isImageName(file))
    throw new UserError(`${file} is not an image file (extension ${path.extname(file) || 'none'})`, `${fix}; images end in ${IMAGE_EXTENSIONS.join(', ')}`);
}

const SUPPORT_FIX = "give --support a folder with one sub-folder per class (at least 2 classes), each holding that class's example images";

/** The support set: `<support>/<class>/<image>`, classes and files in code-unit order. */
export async function listSupport(support: string): Promise<{ name: string; files: string[] }[]> {
  const root = path.resolve(support);
  const top = await listDir(root, SUPPORT_FIX);
  if (top.files.length > 0) throw new UserError(`${path.join(root, top.files[0])} is a file where class folders were expected`, SUPPORT_FIX);
  const classes: { name: string; files: string[] }[] = [];
  for (const name of top.dirs) {
    const dir = path.join(root, name);
    const { dirs, files } = await listDir(dir, SUPPORT_FIX);
    if (dirs.length > 0) throw new UserError(`support class folder ${dir} holds a sub-folder (${dirs[0]})`, SUPPORT_FIX);
    if (files.length === 0)
      throw new UserError(`support class folder ${dir} holds no images`, `add at least one image of class "${name}", or remove the folder`);
    for (const f of files) checkImageName(path.join(dir, f), `remove it from the support folder ${dir}`);
    classes.push({ name, files: files.map((f) => path.join(dir, f)) });
  }
  if (classes.length < 2) {
    throw new UserError(
      `the support folder ${root} has ${classes.length} class folder${classes.length === 1 ? '' : 's'}; few-shot classification needs at least 2 classes`,
      SUPPORT_FIX,
    );
  }
  return classes;
}

const QUERY_FIX = 'give --query image files, or folders holding image files';

/** The query images: files as given, folders expanded to their image files (code-unit order). */
export async function listQuery(query: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const q of query) {
    const abs = path.resolve(q);
    const stat = await fs.stat(abs).catch(() => undefined);
    if (!stat) throw new UserError(`query ${abs} does not exist`, QUERY_FIX);
    if (stat.isDirectory()) {
      const { dirs, files } = await listDir(abs, QUERY_FIX);
      if (dirs.length > 0 && files.length === 0)
        throw new UserError(`query folder ${abs} holds only sub-folders (${dirs[0]}, …)`, `${QUERY_FIX}; sub-folders are not searched`);
      for (const f of files) checkImageName(path.join(abs, f), `remove it from the query folder ${abs}`);
      out.push(...files.map((f) => path.join(abs, f)));
    } else {
      checkImageName(abs, QUERY_FIX);
      out.push(abs);
    }
  }
  if (out.length === 0) throw new UserError(`the query (${query.join(', ') || 'nothing'}) holds no images`, QUERY_FIX);
  return out;
}

/** Decode and resize one image as the providers do; a file that cannot be read or decoded is a UserError naming it. */
async function loadImage(file: string, imageSize: number, grayscale: boolean): Promise<Uint8Array> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch {
    throw new UserError(`image ${file} is missing or unreadable`, 'check the path and its permissions, or remove the file');
  }
  const decoded = await decodeImage(bytes, imageSize, path.basename(file), path.dirname(file));
  return grayscale ? toGrayRgb(decoded.pixels) : decoded.pixels;
}

async function loadImages(files: string[], imageSize: number, grayscale: boolean, norm: Normalization): Promise<Float32Array> {
  const per = imageSize * imageSize * 3;
  const pixels = new Uint8Array(files.length * per);
  for (let i = 0; i < files.length; i++) pixels.set(await loadImage(files[i], imageSize, grayscale), i * per);
  return normalizePixels(pixels, norm);
}

export async function predictImages(request: PredictRequest): Promise<PredictResult> {
  const reporter = request.reporter ?? silentReporter;
  // Everything about the input is checked before the backend loads or any weights are read.
  // A plugin's checkpoint without that plugin loaded is refused here, naming the plugin (as eval does).
  const model = await loadModel(request.checkpoint, { reporter });
  const config = model.config;
  const support = await listSupport(request.support);
  const queryFiles = await listQuery(request.query);
  const { normalization, grayscale, imageSize: S } = model.image;

  const supportFiles = support.flatMap((c) => c.files);
  const supportLabels = Int32Array.from(support.flatMap((c, k) => c.files.map(() => k)));
  const supportPixels = await loadImages(supportFiles, S, grayscale, normalization);
  const queryPixels = await loadImages(queryFiles, S, grayscale, normalization);

  const backend = await selectBackend(request.backend ?? 'auto');
  reporter.log(`backend: ${backend.choice} — ${backend.detail}`);
  const way = support.length;
  const classes = support.map((c) => c.name);
  const predictions: QueryPrediction[] = [];
  let modes: string[];
  let mode: string;
  try {
    const method = model.instantiate(way);
    modes = [...method.inferenceModes];
    mode = request.mode ?? modes[0];
    if (!modes.includes(mode)) throw new UserError(`${config.method} has no inference mode "${mode}"`, `use --mode ${modes.join(' or ')}`);
    reporter.log(
      `${config.method} (${config.backbone}, ${S}px) from ${request.checkpoint}: ${way} classes, ${supportFiles.length} support and ${queryFiles.length} query images, mode ${mode}`,
    );
    const probs = await classifyQueries(method, { supportImages: supportPixels, supportLabels, queryImages: queryPixels, imageSize: S, way, mode });
    queryFiles.forEach((file, q) => {
      const row = Array.from(probs.subarray(q * way, (q + 1) * way));
      predictions.push({ file, predicted: classes[argmax(row)], probabilities: Object.fromEntries(classes.map((c, k) => [c, row[k]])) });
    });
  } finally {
    tf.disposeVariables();
  }
  return {
    checkpoint: request.checkpoint,
    method: config.method,
    mode,
    modes,
    imageSize: S,
    normalization: { mean: [...normalization.mean] as [number, number, number], std: [...normalization.std] as [number, number, number] },
    classes,
    shots: support.map((c) => c.files.length),
    predictions,
  };
}
