import path from 'node:path';
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { selectBackend, type SelectedBackend } from '../backend/select.ts';
import { getBackbone } from '../backbones/registry.ts';
import { ClassifierMethod } from '../methods/classifier.ts';
import { resolveTransformSet } from '../methods/transformed.ts';
import { classifyConfigSchema, trainerConfigOf, type ClassifyConfig, type ClassifyConfigInput } from '../train/classify-config.ts';
import { train, type TrainSummary } from '../train/trainer.ts';
import { readCheckpoint, restoreVariables, type LoadedCheckpoint } from '../train/checkpoint.ts';
import { meanCI, pairedDifference, type MeanCI } from '../eval/stats.ts';
import {
  batchSampler,
  checkImbalanceRatio,
  classificationSplit,
  SHOT_GROUPS,
  shotGroupOf,
  type ClassificationSplit,
  type ShotGroup,
} from '../data/classification-split.ts';
import { resolveDataset } from '../data/providers/registry.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { portablePath } from '../util/portable-path.ts';
import { NumericalError, UserError } from '../util/errors.ts';
import { checkRelativeName } from '../util/names.ts';
import { datasetOptionsWithData, openDataset, type OpenedDataset, type OpenedSplit } from './workspace.ts';
import { configHash } from './naming.ts';
import { silentReporter, type ExperimentReporter } from './reporter.ts';
import { pluginRecords, softwareVersions } from './software.ts';
import { refuseCommittedResult, type ExperimentHooks } from './experiment.ts';
import { sharedOptionsSchema } from './options.ts';
import { parseWithUserError } from './validate.ts';
import { backendRecord } from './record.ts';

/*
 * The experiment layer of classification (issue 31 #1, #2; docs/classification.md): train a classifier over all
 * classes of a provider's split (the episodic trainer's run folder, checkpoints, resume and crash-safety), evaluate
 * it on the split's fixed held-out images, overall and per many/medium/few-shot group, and load it as an embedding
 * for the OOD and pre-train-then-few-shot evaluators.
 */

/** `meta.kind` of a classification checkpoint; episodic checkpoints have none. */
export const CLASSIFIER_CHECKPOINT_KIND = 'classifier';

export const classifyOptionsSchema = sharedOptionsSchema
  .extend({
    runs: z.string().default('runs'),
    /** Report the training loss every n steps (default 50). */
    logEvery: z.number().int().positive().optional(),
    /** Save `last/` every n steps (default: every epoch, at most every 500 steps). */
    checkpointEvery: z.number().int().positive().optional(),
    /** Images per forward pass at evaluation. */
    evalBatch: z.number().int().positive().default(100),
    /** Replace a result whose result.json git tracks (a committed reference result); refused otherwise, before training. */
    replaceCommitted: z.boolean().default(false),
  })
  .strict();
export type ClassifyOptionsInput = z.input<typeof classifyOptionsSchema>;
type ClassifyOptions = z.output<typeof classifyOptionsSchema>;

export function validateClassifyConfig(raw: ClassifyConfigInput): ClassifyConfig {
  const config = parseWithUserError(classifyConfigSchema, raw, 'classification configuration', 'fix the field in the config (or the flag that set it)');
  checkImbalanceRatio(config.imbalanceRatio);
  return config;
}

/** Readable run name: classify-sla_conv4_32px_ratio100_10ep_seed0 */
export function classifyRunName(c: ClassifyConfig): string {
  const t = c.variant !== 'plain' && c.transform !== 'rotation' ? `_${c.transform}` : '';
  const h = c.head.kind === 'cosine' ? '_cosine' : '';
  return `classify-${c.variant}${t}${h}_${c.backbone}_${c.imageSize}px_${c.imbalanceRatio === 1 ? 'balanced' : `ratio${c.imbalanceRatio}`}_${c.epochs}ep_seed${c.seed}`;
}

/** The model a config describes, with C classes (weights freshly initialised from the seed). */
export function buildClassifier(config: ClassifyConfig, classes: number): ClassifierMethod {
  const transformSet = resolveTransformSet(config.variant === 'plain' ? 'rotation' : config.transform, config.imageSize);
  const backbone = getBackbone(config.backbone).create({ imageSize: config.imageSize, seed: config.seed });
  return new ClassifierMethod({
    variant: config.variant,
    backbone,
    imageSize: config.imageSize,
    classes,
    head: config.head,
    transformSet,
    options: config.options,
    seed: config.seed,
  });
}

/** The split record every classification checkpoint and result carries. */
export interface SplitRecord {
  split: string;
  classes: string[];
  testPerClass: number;
  imbalanceRatio: number;
  seed: number;
  trainCounts: number[];
  trainImages: number;
  testImages: number;
  trainSha256: string;
  testSha256: string;
}

function splitRecord(config: ClassifyConfig, opened: OpenedSplit, s: ClassificationSplit): SplitRecord {
  return {
    split: config.split,
    classes: [...opened.loaded.classes],
    testPerClass: s.testPerClass,
    imbalanceRatio: s.imbalanceRatio,
    seed: s.seed,
    trainCounts: s.trainCounts,
    trainImages: s.train.length,
    testImages: s.test.length,
    trainSha256: s.trainSha256,
    testSha256: s.testSha256,
  };
}

interface OpenedClassification {
  config: ClassifyConfig;
  dataset: OpenedDataset;
  opened: OpenedSplit;
  split: ClassificationSplit;
  record: SplitRecord;
  backend: SelectedBackend;
}

async function openClassification(config: ClassifyConfig, options: ClassifyOptions, hooks: ExperimentHooks): Promise<OpenedClassification> {
  const reporter = hooks.reporter ?? silentReporter;
  resolveDataset(config.dataset, config.datasetOptions);
  getBackbone(config.backbone);
  if (config.variant !== 'plain') resolveTransformSet(config.transform, config.imageSize);
  const dataset = await openDataset(
    { dataset: config.dataset, datasetOptions: config.datasetOptions, data: options.data, cache: options.cache },
    config.imageSize,
    { autoPrepare: options.autoPrepare, reporter, signal: hooks.signal },
  );
  const opened = await dataset.split(config.split);
  const split = classificationSplit(opened.loaded.labels, opened.loaded.classes, config, `the ${config.split} split of ${dataset.dataset.name}`);
  const backend = await selectBackend(options.backend);
  reporter.log(`backend: ${backend.choice} — ${backend.detail}`);
  return { config, dataset, opened, split, record: splitRecord(config, opened, split), backend };
}

function withData(config: ClassifyConfig, options: ClassifyOptions): ClassifyConfig {
  return { ...config, datasetOptions: datasetOptionsWithData(config.dataset, config.datasetOptions, options.data) };
}

function validateOptions(raw: ClassifyOptionsInput): ClassifyOptions {
  const options = parseWithUserError(classifyOptionsSchema, raw, 'classification options', 'fix the option');
  if (options.name !== undefined)
    checkRelativeName(options.name, '--name', 'give a plain name of letters, digits, `-`, `_` and `.` (not starting with "."), e.g. --name classify_sla_seed0');
  return options;
}

/** What `runClassification` returns: the config, run name and folder, checkpoint, training summary and class split. */
export interface ClassifierRun {
  config: ClassifyConfig;
  name: string;
  runDir: string;
  checkpoint: string;
  summary: TrainSummary;
  split: SplitRecord;
  evaluation: ClassifierEvaluation;
}

/**
 * Train a classifier (resuming from `<runs>/<name>/last` when there is one), then evaluate its final weights on the
 * held-out images and write `<results>/<dataset>/<name>/result.json`.
 */
export async function runClassification(
  rawConfig: ClassifyConfigInput,
  rawOptions: ClassifyOptionsInput = {},
  hooks: ExperimentHooks = {},
): Promise<ClassifierRun> {
  const t0 = performance.now();
  const options = validateOptions(rawOptions);
  const config = withData(validateClassifyConfig(rawConfig), options);
  const reporter = hooks.reporter ?? silentReporter;
  const ctx = await openClassification(config, options, hooks);
  const { dataset, opened, split, record } = ctx;
  const classes = opened.loaded.classes.length;
  const method = buildClassifier(config, classes);
  const sampler = batchSampler(split.train, config.batchSize, config.seed);
  const trainerConfig = trainerConfigOf(config, sampler.stepsPerEpoch);
  const name = options.name ?? classifyRunName(config);
  const runDir = path.join(options.runs, name);
  refuseCommittedResult(path.join(options.results, dataset.dataset.name, name), options);
  const data = {
    dataset: dataset.dataset.name,
    provider: { id: dataset.dataset.provider.id, options: dataset.dataset.options },
    normalization: dataset.normalization,
    split: config.split,
    splitFingerprint: opened.splitFingerprint,
    cacheFingerprint: opened.cacheFingerprint,
    imageSize: config.imageSize,
  };
  const meta = {
    kind: CLASSIFIER_CHECKPOINT_KIND,
    configHash: configHash(config, opened.splitFingerprint),
    config,
    name,
    data,
    split: record,
    stepsPerEpoch: sampler.stepsPerEpoch,
    describe: method.describe(),
    plugins: pluginRecords(),
  };
  reporter.log(
    `training classifier ${config.variant} (${config.backbone}, ${config.head.kind} head, ${config.imageSize}px, ${dataset.dataset.name} ${config.split}: ${classes} classes, ${split.train.length} training / ${split.test.length} held-out images${config.imbalanceRatio > 1 ? `, imbalance ratio ${config.imbalanceRatio}` : ''}) for ${config.epochs} epochs × ${sampler.stepsPerEpoch} steps → ${runDir}`,
  );
  const s = opened.loaded.imageSize;
  const labels = opened.loaded.labels;
  let progress: ReturnType<ExperimentReporter['progress']> | undefined;
  let lastLoss = '';
  const startedAt = performance.now();
  let summary: TrainSummary;
  try {
    summary = await train({
      method,
      config: trainerConfig,
      runDir,
      meta,
      logEvery: options.logEvery ?? 50,
      checkpointEvery: options.checkpointEvery ?? Math.min(500, sampler.stepsPerEpoch),
      makeTrainBatch: (step) => {
        const items = sampler.batch(step);
        const images = tf.tensor4d(opened.source.gather(items), [items.length, s, s, 3]);
        return {
          supportImages: tf.zeros([0, s, s, 3]) as tf.Tensor4D,
          supportLabels: new Int32Array(0),
          queryImages: images,
          queryLabels: Int32Array.from(items, (i) => labels[i]),
          way: classes,
        };
      },
      onNotice: (m) => reporter.log(m),
      onProgress: (p) => {
        if (p.loss !== undefined) lastLoss = p.loss.toFixed(4);
        progress ??= reporter.progress('train', trainerConfig.episodes, { from: p.from, startedAt });
        progress.update(p.episode, {
          epoch: `${Math.min(config.epochs, Math.floor(p.episode / sampler.stepsPerEpoch) + 1)}/${config.epochs}`,
          loss: lastLoss,
          lr: p.lr.toExponential(2),
        });
      },
    });
  } finally {
    progress?.stop();
  }
  if (summary.resumedFrom) reporter.log(`resumed from step ${summary.resumedFrom}`);
  const evaluation = await evaluateLoaded({ ...ctx, method, checkpoint: summary.bestCheckpoint, name, summary }, options, reporter, t0);
  tf.disposeVariables();
  return { config, name, runDir, checkpoint: summary.bestCheckpoint, summary, split: record, evaluation };
}

/** Accuracy of one inference mode on the held-out images. */
export interface ModeAccuracy {
  /** Percent correct over all held-out images, with its 95 % interval (1.96·s/√n over images). */
  overall: MeanCI;
  /** Mean per-class accuracy (%), the long-tail papers' headline (equal to overall on a balanced test set). */
  classMean: number;
  groups: Partial<Record<ShotGroup, { classes: number; images: number; accuracy: number }>>;
  perClass: number[];
  /** '1'/'0' per held-out image in the split's test order (paired comparisons between runs). */
  correct: string;
}

/** What `evaluateClassifier` returns: accuracy per inference mode (overall and per shot group) and the result folder. */
export interface ClassifierEvaluation {
  resultDir: string;
  modes: string[];
  accuracy: Record<string, ModeAccuracy>;
  wallSeconds: number;
}

interface EvalTarget extends OpenedClassification {
  method: ClassifierMethod;
  checkpoint: string;
  name: string;
  summary?: TrainSummary;
}

async function evaluateLoaded(target: EvalTarget, options: ClassifyOptions, reporter: ExperimentReporter, t0: number): Promise<ClassifierEvaluation> {
  const { method, split, opened, config, record } = target;
  const ckpt = await readCheckpoint(target.checkpoint, { onNotice: (m) => reporter.log(m) });
  restoreVariables(ckpt, [...method.trainableVariables(), ...method.stateVariables()]);
  const evalStarted = performance.now();
  const s = opened.loaded.imageSize;
  const modes = [...method.inferenceModes];
  const correct: Record<string, Uint8Array> = Object.fromEntries(modes.map((m) => [m, new Uint8Array(split.test.length)]));
  const progress = reporter.progress('eval', split.test.length);
  try {
    for (let start = 0; start < split.test.length; start += options.evalBatch) {
      const items = split.test.subarray(start, start + options.evalBatch);
      const images = tf.tensor4d(opened.source.gather(items), [items.length, s, s, 3]);
      const scores = tf.tidy(() => method.scores(images));
      images.dispose();
      for (const m of modes) {
        const values = (await scores[m].data()) as Float32Array;
        const bad = values.findIndex((v) => !Number.isFinite(v));
        if (bad >= 0)
          throw new NumericalError(
            `the scores of inference mode "${m}" are not finite (${values[bad]}); checkpoint ${target.checkpoint}; no result was written`,
          );
        const c = method.classes;
        for (let r = 0; r < items.length; r++) {
          let best = 0;
          for (let k = 1; k < c; k++) if (values[r * c + k] > values[r * c + best]) best = k;
          correct[m][start + r] = best === opened.loaded.labels[items[r]] ? 1 : 0;
        }
      }
      tf.dispose(Object.values(scores));
      progress.update(Math.min(split.test.length, start + options.evalBatch));
    }
  } finally {
    progress.stop();
  }
  const testLabels = Int32Array.from(split.test, (i) => opened.loaded.labels[i]);
  const accuracy = Object.fromEntries(modes.map((m) => [m, modeAccuracy(correct[m], testLabels, split.trainCounts)]));
  const evalSeconds = (performance.now() - evalStarted) / 1000;
  const resultDir = path.join(options.results, target.dataset.dataset.name, target.name);
  const result = {
    kind: 'classification',
    createdAt: new Date().toISOString(),
    ...(options.command !== undefined ? { command: options.command } : {}),
    configHash: configHash(config, opened.splitFingerprint),
    seed: config.seed,
    backend: backendRecord(target.backend),
    data: {
      dataset: target.dataset.dataset.name,
      provider: { id: target.dataset.dataset.provider.id, options: target.dataset.dataset.options },
      imageSize: config.imageSize,
      split: config.split,
      splitFingerprint: opened.splitFingerprint,
      cacheFingerprint: opened.cacheFingerprint,
    },
    split: record,
    shotGroups: {
      many: `> ${SHOT_GROUPS.manyAbove} training images`,
      medium: `${SHOT_GROUPS.fewBelow}–${SHOT_GROUPS.manyAbove}`,
      few: `< ${SHOT_GROUPS.fewBelow}`,
    },
    modes,
    accuracy,
    wallSeconds: {
      eval: evalSeconds,
      total: (performance.now() - t0) / 1000,
      ...(target.summary
        ? {
            train: target.summary.wallSeconds,
            trainAllSittings: target.summary.allSittings.wallSeconds,
            ...(target.summary.allSittings.estimated ? { trainAllSittingsEstimated: true } : {}),
          }
        : {}),
    },
    training: {
      run: ckpt.file.meta.name,
      trainedAtStep: ckpt.file.meta.episode,
      stepsPerEpoch: ckpt.file.meta.stepsPerEpoch,
      weightsSha256: ckpt.file.weightsSha256,
      ...(target.summary ? { resumedFrom: target.summary.resumedFrom } : {}),
    },
    checkpoint: portablePath(target.checkpoint),
    software: softwareVersions(),
    plugins: pluginRecords(),
    config: { ...config, describe: method.describe() },
  };
  await writeFileAtomic(path.join(resultDir, 'result.json'), JSON.stringify(result, null, 1) + '\n');
  return { resultDir, modes, accuracy, wallSeconds: evalSeconds };
}

export function formatAccuracy(a: ModeAccuracy): string {
  const groups = (['many', 'medium', 'few'] as const)
    .filter((g) => a.groups[g])
    .map((g) => `${g} ${a.groups[g]!.accuracy.toFixed(2)} (${a.groups[g]!.classes} cl.)`);
  return `${a.overall.mean.toFixed(2)} ± ${a.overall.ci95.toFixed(2)} %${groups.length ? ` [${groups.join(', ')}]` : ''}`;
}

/** Overall, per-class and per-group accuracy (%) from per-image correctness; groups by training images per class. */
export function modeAccuracy(correct: Uint8Array, testLabels: Int32Array, trainCounts: number[]): ModeAccuracy {
  const hits = trainCounts.map(() => 0);
  const totals = trainCounts.map(() => 0);
  for (let i = 0; i < correct.length; i++) {
    hits[testLabels[i]] += correct[i];
    totals[testLabels[i]]++;
  }
  const perClass = hits.map((h, c) => (totals[c] ? (100 * h) / totals[c] : 0));
  const groups: ModeAccuracy['groups'] = {};
  for (const g of ['many', 'medium', 'few'] as const) {
    const members = trainCounts.map((n, c) => c).filter((c) => shotGroupOf(trainCounts[c]) === g);
    if (!members.length) continue;
    const h = members.reduce((a, c) => a + hits[c], 0);
    const n = members.reduce((a, c) => a + totals[c], 0);
    groups[g] = { classes: members.length, images: n, accuracy: (100 * h) / n };
  }
  const ci = meanCI(Float64Array.from(correct, (v) => 100 * v));
  return { overall: ci, classMean: perClass.reduce((a, v) => a + v, 0) / perClass.length, groups, perClass, correct: Array.from(correct).join('') };
}

/** The classification checkpoint behind `dir`, refused with a clear error when it is an episodic one. */
export async function readClassifierCheckpoint(
  dir: string,
  reporter: ExperimentReporter = silentReporter,
): Promise<LoadedCheckpoint & { config: ClassifyConfig; split: SplitRecord }> {
  const ckpt = await readCheckpoint(dir, { onNotice: (m) => reporter.log(m) });
  if (ckpt.file.meta.kind !== CLASSIFIER_CHECKPOINT_KIND) {
    throw new UserError(
      `${dir} is a checkpoint of the episodic method "${String(ckpt.file.meta.method ?? 'unknown')}", not of a classifier (fewshot classify train)`,
      `evaluate it with \`fewshot eval ${dir}\`, or train a classifier with \`fewshot classify train\``,
    );
  }
  const config = parseWithUserError(classifyConfigSchema, ckpt.file.meta.config, `config recorded in ${dir}`, 'retrain with this version of fewshot');
  return { ...ckpt, config, split: ckpt.file.meta.split as SplitRecord };
}

/** A trained classifier, restored, with its data opened and its split recomputed and checked against the record. */
export interface LoadedClassifier extends OpenedClassification {
  method: ClassifierMethod;
  checkpoint: string;
  meta: Record<string, unknown>;
}

/**
 * Load a classification checkpoint for evaluation or as a pre-trained embedding (the OOD and few-shot evaluators):
 * the model with its weights, its data (same dataset and cache rules as training) and its held-out split, recomputed
 * from the recorded settings and checked against the recorded hashes. Call `tf.disposeVariables()` when done.
 */
export async function loadClassifier(checkpoint: string, rawOptions: ClassifyOptionsInput = {}, hooks: ExperimentHooks = {}): Promise<LoadedClassifier> {
  const options = validateOptions(rawOptions);
  const reporter = hooks.reporter ?? silentReporter;
  const ckpt = await readClassifierCheckpoint(checkpoint, reporter);
  const config = withData(ckpt.config, options);
  const ctx = await openClassification(config, options, hooks);
  if (ctx.record.testSha256 !== ckpt.split.testSha256 || ctx.record.trainSha256 !== ckpt.split.trainSha256) {
    throw new UserError(
      `the ${config.split} split of ${ctx.dataset.dataset.name} here gives another held-out split than the one ${checkpoint} was trained with (test sha256 ${ctx.record.testSha256.slice(0, 12)}…, recorded ${ckpt.split.testSha256.slice(0, 12)}…)`,
      'point --data / --cache at the data the classifier was trained on (its checkpoint.json records the split fingerprint)',
    );
  }
  const method = buildClassifier(config, ctx.opened.loaded.classes.length);
  restoreVariables(ckpt, [...method.trainableVariables(), ...method.stateVariables()]);
  return { ...ctx, method, checkpoint, meta: ckpt.file.meta };
}

/** Evaluate a classification checkpoint on its held-out images; writes `<results>/<dataset>/<name>/result.json`. */
export async function evaluateClassifier(
  request: { checkpoint: string },
  rawOptions: ClassifyOptionsInput = {},
  hooks: ExperimentHooks = {},
): Promise<ClassifierEvaluation> {
  const t0 = performance.now();
  const options = validateOptions(rawOptions);
  const reporter = hooks.reporter ?? silentReporter;
  const loaded = await loadClassifier(request.checkpoint, rawOptions, hooks);
  const run =
    options.name ??
    `${checkRelativeName(String(loaded.meta.name ?? 'classifier'), `the run name recorded in ${request.checkpoint}/checkpoint.json`, 'name the result with --name <name>')}_eval`;
  try {
    refuseCommittedResult(path.join(options.results, loaded.dataset.dataset.name, run), options);
    return await evaluateLoaded({ ...loaded, name: run }, options, reporter, t0);
  } finally {
    tf.disposeVariables();
  }
}

/** One side of a classification comparison, as read from its result.json. */
interface ClassificationResultFile {
  kind?: string;
  modes: string[];
  split: SplitRecord;
  data: { splitFingerprint: string };
  seed: number;
  config: { variant: string; imbalanceRatio: number };
  accuracy: Record<string, ModeAccuracy>;
}

async function readClassificationResult(dir: string): Promise<ClassificationResultFile> {
  const file = dir.endsWith('.json') ? dir : path.join(dir, 'result.json');
  let parsed: ClassificationResultFile;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8')) as ClassificationResultFile;
  } catch {
    throw new UserError(`no readable classification result at ${file}`, 'pass a result folder that `fewshot classify train` or `classify eval` wrote');
  }
  if (parsed.kind !== 'classification') throw new UserError(`${file} is not a classification result`, 'compare episodic results with `fewshot compare`');
  return parsed;
}

export interface ClassificationComparison {
  a: { result: string; variant: string; mode: string; seed: number; accuracy: MeanCI };
  b: { result: string; variant: string; mode: string; seed: number; accuracy: MeanCI };
  /** Percentage points, paired over the identical held-out images: mean ± 1.96·s/√n of (correct_A − correct_B)·100. */
  pairedDifference: MeanCI;
  /** Group accuracy differences (points), A − B, where both have the group. */
  groups: Partial<Record<ShotGroup, number>>;
}

/**
 * The paired difference A − B of two classifiers on the identical held-out images (same split: same test item
 * hashes). Refused for results on different held-out images, where a pairing means nothing.
 */
export async function compareClassifications(a: string, b: string, modes: { a?: string; b?: string } = {}): Promise<ClassificationComparison> {
  const ra = await readClassificationResult(a);
  const rb = await readClassificationResult(b);
  if (ra.split.testSha256 !== rb.split.testSha256 || ra.data.splitFingerprint !== rb.data.splitFingerprint) {
    throw new UserError(
      `${a} and ${b} were scored on different held-out images (another split, seed or --test-per-class)`,
      'compare classifiers trained with the same dataset, --split, --seed and --test-per-class',
    );
  }
  const side = (r: ClassificationResultFile, m: string | undefined, dir: string) => {
    const mode = m ?? r.modes[0];
    if (!r.accuracy[mode]) throw new UserError(`${dir} has no inference mode "${mode}"`, `use one of: ${r.modes.join(', ')}`);
    return { mode, acc: r.accuracy[mode] };
  };
  const sa = side(ra, modes.a, a);
  const sb = side(rb, modes.b, b);
  const bits = (s: string) => Float64Array.from(s, (c) => (c === '1' ? 100 : 0));
  const groups: ClassificationComparison['groups'] = {};
  for (const g of ['many', 'medium', 'few'] as const) {
    const ga = sa.acc.groups[g];
    const gb = sb.acc.groups[g];
    if (ga && gb) groups[g] = ga.accuracy - gb.accuracy;
  }
  return {
    a: { result: a, variant: ra.config.variant, mode: sa.mode, seed: ra.seed, accuracy: sa.acc.overall },
    b: { result: b, variant: rb.config.variant, mode: sb.mode, seed: rb.seed, accuracy: sb.acc.overall },
    pairedDifference: pairedDifference(bits(sa.acc.correct), bits(sb.acc.correct)),
    groups,
  };
}
