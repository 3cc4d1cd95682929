import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { stringify } from 'csv-stringify/sync';
import { z } from 'zod';
import { gatherImages } from '../data/normalize.ts';
import { SPLIT_NAMES, type SplitName } from '../data/split-csv.ts';
import { maxSoftmax, oodMetricsWithCI, requireDisjointClasses, type OodMetricsWithCI } from '../eval/ood.ts';
import type { ClassifierMethod } from '../methods/classifier.ts';
import { writeFilesAtomic } from '../util/atomic.ts';
import { NumericalError } from '../util/errors.ts';
import { checkRelativeName } from '../util/names.ts';
import { portablePath, portableValue } from '../util/portable-path.ts';
import { loadClassifier, type LoadedClassifier } from './classify.ts';
import type { ExperimentHooks } from './experiment.ts';
import { silentReporter, type ExperimentReporter } from './reporter.ts';
import { pluginRecords, softwareVersions } from './software.ts';
import { datasetOptionsWithData, openDataset, type OpenedDataset, type OpenedSplit } from './workspace.ts';
import { sharedOptionsSchema } from './options.ts';
import { parseWithUserError } from './validate.ts';
import { backendRecord } from './record.ts';

/*
 * Out-of-distribution detection with a trained classifier (issue 31 #3; docs/classification.md): every held-out image
 * of the classifier's own classes (in) and every image of an out-distribution (out: another split of the same dataset,
 * e.g. mini-ImageNet's 20 test classes against its 64 base classes, or another dataset) gets a score per inference
 * mode, the maximum softmax probability of that mode's class scores: `plain` for a plain / DA / MT classifier; for an
 * SLA classifier `ag` (softmax of the SLA+AG aggregate over the M transformed copies), `si` (the upright copy's
 * class columns) and, for SLA+SD, `sd` (the distilled single head). AUROC, AUPR-In, AUPR-Out and FPR at 95 % TPR with
 * seeded bootstrap intervals (eval/ood.ts).
 */

export const oodRequestSchema = z
  .object({
    checkpoint: z.string().min(1),
    /** The out-distribution's dataset provider and options; default: the classifier's dataset. */
    outDataset: z.string().min(1).optional(),
    outDatasetOptions: z.record(z.string(), z.unknown()).optional(),
    /** Its source (`--out-data`) and cache, when it is another dataset. */
    outData: z.string().optional(),
    outCache: z.string().optional(),
    /** The split of the out-dataset whose images are "out" (default test). */
    outSplit: z.enum(SPLIT_NAMES).default('test'),
    /** At most this many images of each out class (the first ones in the split's order); default all. */
    outPerClass: z.number().int().positive().optional(),
    /** Bootstrap resamples and their seed. */
    resamples: z.number().int().min(10).default(1000),
    seed: z.number().int().min(0).default(0),
  })
  .strict();
export type OodRequest = z.input<typeof oodRequestSchema>;

export const oodOptionsSchema = sharedOptionsSchema
  .extend({
    /** Images per forward pass. */
    evalBatch: z.number().int().positive().default(100),
  })
  .strict();
export type OodOptions = z.input<typeof oodOptionsSchema>;

export interface OodResult {
  resultDir: string;
  modes: string[];
  metrics: Record<string, OodMetricsWithCI>;
  inImages: number;
  outImages: number;
  inName: string;
  outName: string;
  wallSeconds: number;
}

/** Item indices of the out split: all, or the first `perClass` of each class (in the split's order). */
function outItems(split: OpenedSplit, perClass: number | undefined): Int32Array {
  const labels = split.loaded.labels;
  if (perClass === undefined) return Int32Array.from({ length: labels.length }, (_, i) => i);
  const taken = new Map<number, number>();
  const items: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    const n = taken.get(labels[i]) ?? 0;
    if (n < perClass) {
      items.push(i);
      taken.set(labels[i], n + 1);
    }
  }
  return Int32Array.from(items);
}

/** Maximum softmax probability per inference mode of the given images, in item order. */
async function mspScores(
  method: ClassifierMethod,
  gather: (items: ArrayLike<number>) => Float32Array,
  items: Int32Array,
  imageSize: number,
  batch: number,
  progress: { update(done: number): void },
): Promise<Record<string, Float64Array>> {
  const modes = [...method.inferenceModes];
  const out: Record<string, Float64Array> = Object.fromEntries(modes.map((m) => [m, new Float64Array(items.length)]));
  for (let start = 0; start < items.length; start += batch) {
    const chunk = items.subarray(start, start + batch);
    const images = tf.tensor4d(gather(chunk), [chunk.length, imageSize, imageSize, 3]);
    const scores = tf.tidy(() => method.scores(images));
    images.dispose();
    try {
      for (const m of modes) {
        const logits = (await scores[m].data()) as Float32Array;
        const bad = logits.findIndex((v) => !Number.isFinite(v));
        if (bad >= 0) throw new NumericalError(`the scores of inference mode "${m}" are not finite (${logits[bad]}); no result was written`);
        out[m].set(maxSoftmax(logits, scores[m].shape[1]), start);
      }
    } finally {
      tf.dispose(Object.values(scores));
    }
    progress.update(Math.min(items.length, start + batch));
  }
  return out;
}

type ParsedOodRequest = z.output<typeof oodRequestSchema>;
type ParsedOodOptions = z.output<typeof oodOptionsSchema>;

/** The out-distribution's dataset: the classifier's own, or the one the request names (at the classifier's image size). */
async function openOutDataset(
  request: ParsedOodRequest,
  options: ParsedOodOptions,
  loaded: LoadedClassifier,
  reporter: ExperimentReporter,
  hooks: ExperimentHooks,
): Promise<OpenedDataset> {
  if (request.outDataset === undefined) return loaded.dataset;
  return openDataset(
    {
      dataset: request.outDataset,
      datasetOptions: datasetOptionsWithData(request.outDataset, request.outDatasetOptions ?? {}, request.outData),
      cache: request.outCache,
    },
    loaded.config.imageSize,
    { autoPrepare: options.autoPrepare, reporter, signal: hooks.signal },
  );
}

interface OodScores {
  inScores: Record<string, Float64Array>;
  outScores: Record<string, Float64Array>;
  scoreSeconds: number;
}

/** The MSP scores of the in-images and then the out-images, under one progress bar. */
async function scoreInAndOut(
  loaded: LoadedClassifier,
  outSplit: OpenedSplit,
  inItems: Int32Array,
  outIdx: Int32Array,
  evalBatch: number,
  reporter: ExperimentReporter,
): Promise<OodScores> {
  const { method, config, opened: inSplit } = loaded;
  const s = config.imageSize;
  const progress = reporter.progress('ood', inItems.length + outIdx.length);
  let inScores: Record<string, Float64Array>;
  let outScores: Record<string, Float64Array>;
  const started = performance.now();
  try {
    inScores = await mspScores(method, (items) => inSplit.source.gather(items), inItems, s, evalBatch, progress);
    // Out-images are normalised as the classifier's training images were (its dataset's statistics), not with
    // the out-dataset's own: the classifier sees them exactly as it would any new input.
    outScores = await mspScores(method, (items) => gatherImages(outSplit.loaded, items, loaded.dataset.normalization), outIdx, s, evalBatch, {
      update: (done) => progress.update(inItems.length + done),
    });
  } finally {
    progress.stop();
  }
  return { inScores, outScores, scoreSeconds: (performance.now() - started) / 1000 };
}

/** `scores.csv`: one row per image (set, item, the score of each mode), in then out. */
function scoresCsv(inItems: Int32Array, outIdx: Int32Array, modes: string[], scores: OodScores): string {
  const rows: (string | number)[][] = [];
  for (let i = 0; i < inItems.length; i++) rows.push(['in', inItems[i], ...modes.map((m) => scores.inScores[m][i])]);
  for (let i = 0; i < outIdx.length; i++) rows.push(['out', outIdx[i], ...modes.map((m) => scores.outScores[m][i])]);
  return stringify(rows, { header: true, columns: ['set', 'item', ...modes] });
}

/** What `result.json` records besides the metrics: what was compared, on which machine, with which classifier. */
interface OodRecordInputs {
  request: ParsedOodRequest;
  options: ParsedOodOptions;
  loaded: LoadedClassifier;
  outDataset: OpenedDataset;
  outSplit: OpenedSplit;
  inItems: Int32Array;
  outIdx: Int32Array;
  modes: string[];
  metrics: Record<string, OodMetricsWithCI>;
  scoreSeconds: number;
  t0: number;
}

/** The content of `result.json` (paths made portable). */
function oodResultRecord(r: OodRecordInputs): unknown {
  const { request, options, loaded, outDataset, outSplit } = r;
  const { method, config, opened: inSplit, dataset: inDataset } = loaded;
  return portableValue({
    kind: 'ood',
    createdAt: new Date().toISOString(),
    ...(options.command !== undefined ? { command: options.command } : {}),
    score: "maximum softmax probability of each inference mode's class scores (higher = in-distribution)",
    modes: r.modes,
    metrics: r.metrics,
    metricDefinitions: {
      auroc: 'area under the ROC curve, in-images positive, ties ½ (sklearn roc_auc_score)',
      auprIn: 'average precision, in-images positive (sklearn average_precision_score)',
      auprOut: 'average precision, out-images positive, scores negated',
      fprAt95Tpr: 'fraction of out-images scored at or above the highest threshold that keeps ≥ 95 % of the in-images',
      interval: `2.5th–97.5th percentile over ${request.resamples} bootstrap resamples (in and out drawn separately), mulberry32 seed ${request.seed}`,
    },
    in: {
      dataset: inDataset.dataset.name,
      split: config.split,
      images: r.inItems.length,
      classes: inSplit.loaded.classes.length,
      testSha256: loaded.split.testSha256,
      splitFingerprint: inSplit.splitFingerprint,
      cacheFingerprint: inSplit.cacheFingerprint,
    },
    out: {
      dataset: outDataset.dataset.name,
      provider: { id: outDataset.dataset.provider.id, options: outDataset.dataset.options },
      split: request.outSplit,
      images: r.outIdx.length,
      classes: outSplit.loaded.classes.length,
      perClass: request.outPerClass ?? null,
      splitFingerprint: outSplit.splitFingerprint,
      cacheFingerprint: outSplit.cacheFingerprint,
      normalizedWith: inDataset.dataset.name,
    },
    backend: backendRecord(loaded.backend),
    classifier: {
      checkpoint: portablePath(request.checkpoint),
      run: loaded.meta.name,
      variant: config.variant,
      trainedAtStep: loaded.meta.episode,
      describe: method.describe(),
    },
    wallSeconds: { score: r.scoreSeconds, total: (performance.now() - r.t0) / 1000 },
    software: softwareVersions(),
    plugins: pluginRecords(),
  });
}

/** The result's folder name: --name, else `<classifier run>_ood_<out dataset>-<out split>`. */
function oodRunName(request: ParsedOodRequest, options: ParsedOodOptions, loaded: LoadedClassifier, outDataset: OpenedDataset): string {
  return (
    options.name ??
    `${checkRelativeName(String(loaded.meta.name ?? 'classifier'), `the run name recorded in ${request.checkpoint}/checkpoint.json`, 'name the result with --name <name>')}_ood_${outDataset.dataset.name}-${request.outSplit}`
  );
}

/**
 * Score a classification checkpoint's held-out images (in) against an out-distribution's images (out) and write
 * `<results>/<dataset>/<name>/result.json` (the metrics, intervals and provenance) and `scores.csv` (every image's
 * score per mode, so the metrics can be recomputed). An out-distribution sharing a class with the in-distribution
 * is refused before any image is scored.
 */
export async function evaluateOod(rawRequest: OodRequest, rawOptions: OodOptions = {}, hooks: ExperimentHooks = {}): Promise<OodResult> {
  const t0 = performance.now();
  const request = parseWithUserError(oodRequestSchema, rawRequest, 'OOD request', 'fix the option (see `fewshot ood --help`)');
  const options = parseWithUserError(oodOptionsSchema, rawOptions, 'OOD options', 'fix the option (see `fewshot ood --help`)');
  if (options.name !== undefined)
    checkRelativeName(options.name, '--name', 'give a plain name of letters, digits, `-`, `_` and `.`, e.g. --name classify_sla_ood');
  const reporter: ExperimentReporter = hooks.reporter ?? silentReporter;
  const loaded = await loadClassifier(
    request.checkpoint,
    { backend: options.backend, data: options.data, cache: options.cache, autoPrepare: options.autoPrepare },
    hooks,
  );
  try {
    const { method, config, opened: inSplit, split } = loaded;
    const inDataset = loaded.dataset;
    const outDataset = await openOutDataset(request, options, loaded, reporter, hooks);
    const outSplit = await outDataset.split(request.outSplit as SplitName);
    const inName = `${inDataset.dataset.name} ${config.split} (held-out images)`;
    const outName = `${outDataset.dataset.name} ${request.outSplit}`;
    requireDisjointClasses({ name: inName, classes: inSplit.loaded.classes }, { name: outName, classes: outSplit.loaded.classes });

    const inItems = split.test;
    const outIdx = outItems(outSplit, request.outPerClass);
    reporter.log(`OOD: ${inItems.length} in-images (${inName}) vs ${outIdx.length} out-images (${outName}), modes ${method.inferenceModes.join(', ')}`);
    const scores = await scoreInAndOut(loaded, outSplit, inItems, outIdx, options.evalBatch, reporter);
    const modes = [...method.inferenceModes];
    const metrics = Object.fromEntries(
      modes.map((m) => [m, oodMetricsWithCI(scores.inScores[m], scores.outScores[m], { seed: request.seed, resamples: request.resamples })]),
    );

    const resultDir = path.join(options.results, inDataset.dataset.name, oodRunName(request, options, loaded, outDataset));
    const csv = scoresCsv(inItems, outIdx, modes, scores);
    const result = oodResultRecord({ request, options, loaded, outDataset, outSplit, inItems, outIdx, modes, metrics, scoreSeconds: scores.scoreSeconds, t0 });
    await writeFilesAtomic(
      resultDir,
      [
        ['scores.csv', csv],
        ['result.json', JSON.stringify(result, null, 1) + '\n'],
      ],
      'ood-result',
    );
    return { resultDir, modes, metrics, inImages: inItems.length, outImages: outIdx.length, inName, outName, wallSeconds: (performance.now() - t0) / 1000 };
  } finally {
    tf.disposeVariables();
  }
}

/** `ag  AUROC 78.31 [77.60, 79.02]  AUPR-In …`: one line per mode, in percent. */
export function formatOodMetrics(mode: string, m: OodMetricsWithCI): string {
  const f = (k: 'auroc' | 'auprIn' | 'auprOut' | 'fprAt95Tpr') =>
    `${(100 * m[k].value).toFixed(2)} [${(100 * m[k].low).toFixed(2)}, ${(100 * m[k].high).toFixed(2)}]`;
  return `${mode}: AUROC ${f('auroc')}  AUPR-In ${f('auprIn')}  AUPR-Out ${f('auprOut')}  FPR@95%TPR ${f('fprAt95Tpr')} (%, 95% bootstrap interval)`;
}
