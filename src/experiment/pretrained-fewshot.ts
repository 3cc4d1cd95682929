import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { EpisodeSpec } from '../episodes/spec.ts';
import { disposeEpisode, toEpisodeImages, type EpisodeImages } from '../episodes/images.ts';
import { aggregateJoint, EMBEDDING_HEADS, scoreQueries, type EmbeddingHeadId } from '../eval/embedding-heads.ts';
import type { EpisodeList, EvalResult } from '../eval/evaluator.ts';
import { formatCI, meanCI } from '../eval/stats.ts';
import { jointLabels } from '../methods/aggregate.ts';
import type { ClassifierMethod } from '../methods/classifier.ts';
import { writeResult, type ResultRecord } from '../reports/results.ts';
import { expandImages } from '../transforms/expand.ts';
import { NumericalError, UserError } from '../util/errors.ts';
import { checkRelativeName } from '../util/names.ts';
import { portablePath } from '../util/portable-path.ts';
import { loadClassifier, type LoadedClassifier } from './classify.ts';
import type { ExperimentHooks } from './experiment.ts';
import { silentReporter, type ExperimentReporter } from './reporter.ts';
import { pluginRecords, softwareVersions } from './software.ts';
import { episodeFileFor, openEpisodeList, type OpenedSplit } from './workspace.ts';
import { sharedOptionsSchema } from './options.ts';
import { parseWithUserError } from './validate.ts';
import { backendRecord, testDataRecord } from './record.ts';

/*
 * Few-shot from a pre-trained embedding (issue 31 #4; docs/classification.md): a classification checkpoint's backbone,
 * frozen, embeds each test episode of the same fixed episode files the episodic methods are scored on, and a head is
 * fitted on that episode's support alone (eval/embedding-heads.ts: protonet, cosine, logreg). No meta-training. The
 * result is an ordinary episodic result folder (result.json + per-episode.csv), so `fewshot compare` pairs it with
 * any episodic method's result on the identical episodes.
 *
 * Modes: `<head>` on the upright images' embeddings, and `<head>-ag` (SLA+AG at test): every support and query image
 * expanded to its M transformed copies, the head fitted on the N·M joint (class, transformation) classes and the
 * copies' joint logits aggregated (the episodic SLA's inference on a frozen embedding). `-ag` is computed for SLA /
 * SLA+SD classifiers by default, on request for others.
 */

export const pretrainedFewShotRequestSchema = z
  .object({
    checkpoint: z.string().min(1),
    way: z.number().int().min(2).default(5),
    shot: z.number().int().min(1),
    query: z.number().int().min(1).default(15),
    /** Heads to fit per episode; the first is the headline (default: all three, protonet first). */
    heads: z.array(z.enum(EMBEDDING_HEADS)).min(1).default(['protonet', 'cosine', 'logreg']),
    /** Also score SLA+AG over the M transformed copies (default: when the classifier was trained with SLA). */
    aggregate: z.boolean().optional(),
    /** An explicit episode file (default: the dataset's committed test file of this spec). */
    testFile: z.string().optional(),
    /** Score only the first n episodes of the file. */
    testEpisodes: z.number().int().positive().optional(),
  })
  .strict();
export type PretrainedFewShotRequest = z.input<typeof pretrainedFewShotRequestSchema>;

export const pretrainedFewShotOptionsSchema = sharedOptionsSchema.strict();
export type PretrainedFewShotOptions = z.input<typeof pretrainedFewShotOptionsSchema>;

export interface PretrainedFewShotResult {
  resultDir: string;
  record: ResultRecord;
  evaluation: EvalResult;
}

/** Embeddings [n·copies × d] of images (expanded to the transform set's copies when `expand`), backbone in eval mode. */
function embed(method: ClassifierMethod, images: tf.Tensor4D, expand: boolean): { values: Float32Array; dim: number } {
  const z = tf.tidy(() => method.backbone.apply(expand ? expandImages(method.transformSet, images) : images, false));
  const values = z.dataSync() as Float32Array;
  const dim = z.shape[1];
  z.dispose();
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new NumericalError(`the embedding is not finite (${values[bad]}): the checkpoint's weights produced it`);
  return { values, dim };
}

function accuracy(logits: Float64Array, way: number, labels: Int32Array): number {
  let correct = 0;
  for (let q = 0; q < labels.length; q++) {
    let best = 0;
    for (let c = 1; c < way; c++) if (logits[q * way + c] > logits[q * way + best]) best = c;
    if (best === labels[q]) correct++;
  }
  return correct / labels.length;
}

type ParsedRequest = z.output<typeof pretrainedFewShotRequestSchema>;
type ParsedOptions = z.output<typeof pretrainedFewShotOptionsSchema>;
/** What each episode is scored with: the heads, the episodes' way, whether SLA+AG is scored too, and the modes' order. */
interface FewShotScoring {
  heads: readonly string[];
  way: number;
  aggregate: boolean;
  modes: string[];
}

/** The scored modes: `<head>-ag` first for a joint (SLA) classifier, last for others, where aggregation is on. */
function fewShotModes(heads: readonly string[], aggregate: boolean, isJoint: boolean): string[] {
  return [...(aggregate && isJoint ? heads.map((h) => `${h}-ag`) : []), ...heads, ...(aggregate && !isJoint ? heads.map((h) => `${h}-ag`) : [])];
}

/**
 * One episode's accuracy per mode, written at index `i` of `perEpisode`: each head fitted on the upright support
 * embeddings and, with `aggregate`, on the M transformed copies' joint classes, the query copies' logits aggregated.
 */
function scoreEpisode(method: ClassifierMethod, ep: EpisodeImages, scoring: FewShotScoring, perEpisode: Record<string, Float64Array>, i: number): void {
  const { heads, way, aggregate } = scoring;
  const m = method.transformSet.transforms.length;
  const support = embed(method, ep.supportImages, false);
  const query = embed(method, ep.queryImages, false);
  for (const head of heads) {
    const logits = scoreQueries(head as EmbeddingHeadId, {
      support: support.values,
      supportLabels: ep.supportLabels,
      query: query.values,
      dim: support.dim,
      way,
    });
    perEpisode[head][i] = accuracy(logits, way, ep.queryLabels);
  }
  if (aggregate) {
    const jointSupport = embed(method, ep.supportImages, true);
    const jointQuery = embed(method, ep.queryImages, true);
    for (const head of heads) {
      const joint = scoreQueries(head as EmbeddingHeadId, {
        support: jointSupport.values,
        supportLabels: jointLabels(ep.supportLabels, m),
        query: jointQuery.values,
        dim: jointSupport.dim,
        way: way * m,
      });
      perEpisode[`${head}-ag`][i] = accuracy(aggregateJoint(joint, ep.queryLabels.length, way, m), way, ep.queryLabels);
    }
  }
}

/** The per-episode accuracies of every mode over the first `total` episodes of `list`, and their summary. */
async function scoreEpisodes(
  method: ClassifierMethod,
  testSplit: OpenedSplit,
  list: EpisodeList,
  total: number,
  scoring: FewShotScoring,
  reporter: ExperimentReporter,
): Promise<EvalResult> {
  const { modes } = scoring;
  const perEpisode: Record<string, Float64Array> = Object.fromEntries(modes.map((mode) => [mode, new Float64Array(total)]));
  const progress = reporter.progress('eval', total);
  const evalStarted = performance.now();
  try {
    for (let i = 0; i < total; i++) {
      const ep = toEpisodeImages(testSplit.source, list.get(i));
      try {
        scoreEpisode(method, ep, scoring, perEpisode, i);
      } finally {
        disposeEpisode(ep);
      }
      progress.update(i + 1);
    }
  } finally {
    progress.stop();
  }
  return {
    modes,
    perEpisode,
    summary: Object.fromEntries(modes.map((mode) => [mode, meanCI(perEpisode[mode])])),
    episodes: total,
    wallSeconds: (performance.now() - evalStarted) / 1000,
  };
}

/** The result's folder name: --name, else `<classifier run>_fewshot_<episode file>[_<n>ep]`. */
function fewShotResultName(request: ParsedRequest, options: ParsedOptions, loaded: LoadedClassifier, file: string, total: number, count: number): string {
  const runName = checkRelativeName(
    String(loaded.meta.name ?? 'classifier'),
    `the run name recorded in ${request.checkpoint}/checkpoint.json`,
    'name the result with --name <name>',
  );
  return options.name ?? `${runName}_fewshot_${path.basename(file).replace(/\.json$/, '')}${total < count ? `_${total}ep` : ''}`;
}

/** What the episodic result records besides the evaluation: the classifier, the data, the episodes, the machine. */
interface FewShotRecordInputs {
  request: ParsedRequest;
  options: ParsedOptions;
  loaded: LoadedClassifier;
  testSplit: OpenedSplit;
  file: string;
  sha256: string;
  spec: EpisodeSpec;
  total: number;
  aggregate: boolean;
  evaluation: EvalResult;
  t0: number;
}

/** The episodic result's record (written by writeResult beside the per-episode accuracies). */
function fewShotRecord(r: FewShotRecordInputs): Omit<ResultRecord, 'format' | 'summary' | 'inferenceModes'> {
  const { request, options, loaded, testSplit, spec } = r;
  const { method, config, dataset } = loaded;
  return {
    method: `pretrained-${config.variant}`,
    createdAt: new Date().toISOString(),
    ...(options.command !== undefined ? { command: options.command } : {}),
    seed: config.seed,
    backend: backendRecord(loaded.backend),
    data: testDataRecord(dataset, config.imageSize, testSplit),
    episodes: { file: portablePath(r.file), sha256: r.sha256, split: 'test', way: spec.way, shot: spec.shot, query: spec.query, evaluated: r.total },
    wallSeconds: { eval: r.evaluation.wallSeconds, total: (performance.now() - r.t0) / 1000 },
    training: {
      classifier: loaded.meta.name,
      variant: config.variant,
      trainedOn: `${dataset.dataset.name} ${config.split}`,
      trainedAtStep: loaded.meta.episode,
      heads: request.heads,
      aggregate: r.aggregate,
      metaTraining: 'none: heads fitted per episode on the frozen embedding',
    },
    checkpoint: portablePath(request.checkpoint),
    software: softwareVersions(),
    plugins: pluginRecords(),
    config: { ...config, describe: method.describe() },
  };
}

/**
 * Score a classification checkpoint on fixed test episodes with heads fitted per episode on its frozen embedding, and
 * write `<results>/<dataset>/<name>/` as an episodic result. A classifier trained on the episodes' own split (its
 * classes would not be novel) and an episodic checkpoint are refused before any episode is scored.
 */
export async function evaluatePretrainedFewShot(
  rawRequest: PretrainedFewShotRequest,
  rawOptions: PretrainedFewShotOptions = {},
  hooks: ExperimentHooks = {},
): Promise<PretrainedFewShotResult> {
  const t0 = performance.now();
  const request = parseWithUserError(pretrainedFewShotRequestSchema, rawRequest, 'few-shot request', 'fix the option (see `fewshot pretrained-eval --help`)');
  const options = parseWithUserError(pretrainedFewShotOptionsSchema, rawOptions, 'few-shot options', 'fix the option (see `fewshot pretrained-eval --help`)');
  if (options.name !== undefined)
    checkRelativeName(options.name, '--name', 'give a plain name of letters, digits, `-`, `_` and `.`, e.g. --name classify_sla_protonet_5w1s');
  const reporter = hooks.reporter ?? silentReporter;
  // Refuses an episodic checkpoint with a UserError naming `fewshot eval` (experiment/classify.ts).
  const loaded = await loadClassifier(
    request.checkpoint,
    { backend: options.backend, data: options.data, cache: options.cache, autoPrepare: options.autoPrepare },
    hooks,
  );
  try {
    const { method, config, dataset } = loaded;
    if (config.split === 'test') {
      throw new UserError(
        `${request.checkpoint} was trained on the test split of ${dataset.dataset.name}, whose classes the test episodes are drawn from: they would not be novel classes`,
        'pre-train the classifier on the base classes (`fewshot classify train --split train`)',
      );
    }
    const spec = { way: request.way, shot: request.shot, query: request.query };
    const testSplit = await dataset.split('test');
    const file = await episodeFileFor(dataset, 'test', spec, request.testFile, reporter);
    const list = await openEpisodeList(file, testSplit, spec);
    const total = Math.min(request.testEpisodes ?? list.count, list.count);
    const aggregate = request.aggregate ?? method.isJoint;
    const modes = fewShotModes(request.heads, aggregate, method.isJoint);
    reporter.log(
      `few-shot from ${request.checkpoint} (${config.variant} classifier, frozen): ${total} ${spec.way}-way ${spec.shot}-shot episodes of ${path.basename(file)}, modes ${modes.join(', ')}`,
    );
    const evaluation = await scoreEpisodes(method, testSplit, list, total, { heads: request.heads, way: spec.way, aggregate, modes }, reporter);
    const name = fewShotResultName(request, options, loaded, file, total, list.count);
    const resultDir = path.join(options.results, dataset.dataset.name, name);
    const record = await writeResult(
      resultDir,
      fewShotRecord({ request, options, loaded, testSplit, file, sha256: list.sha256, spec, total, aggregate, evaluation, t0 }),
      evaluation,
    );
    return { resultDir, record, evaluation };
  } finally {
    tf.disposeVariables();
  }
}

/** `protonet-ag 5-way 1-shot: 41.20 ± 0.80 % (95% CI, n=2000)` per mode. */
export function formatPretrainedFewShot(r: PretrainedFewShotResult): string[] {
  const e = r.record.episodes;
  return r.evaluation.modes.map(
    (mode) => `${r.record.method} [${mode}] ${e.way}-way ${e.shot}-shot: ${formatCI(r.evaluation.summary[mode])} % (95% CI, n=${e.evaluated})`,
  );
}
