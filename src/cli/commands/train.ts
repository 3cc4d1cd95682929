import type { Command } from 'commander';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { backendOption, floatArg, intArg } from '../main.ts';
import { configHash, resolveTrainConfig, runName, type TrainFlags } from '../config.ts';
import { loadPlugins, softwareVersions } from '../context.ts';
import { selectBackend, type SelectedBackend } from '../../backend/select.ts';
import { buildMethod } from '../../methods/build.ts';
import { resolveMethodName } from '../../methods/registry.ts';
import type { EpisodicMethod } from '../../methods/contract.ts';
import type { TrainConfig } from '../../train/config.ts';
import { train, type TrainSummary } from '../../train/trainer.ts';
import { readCheckpoint, restoreVariables } from '../../train/checkpoint.ts';
import { evaluate } from '../../eval/evaluator.ts';
import { formatCI } from '../../eval/stats.ts';
import { writeResult } from '../../reports/results.ts';
import { startProgress } from '../../util/progress.ts';
import { augmentedSource } from '../../train/augment.ts';
import { UserError } from '../../util/errors.ts';
import { openDataset, openEpisodeList, defaultEpisodeFile, trainEpisodeSampler, type OpenedDataset } from '../workspace.ts';

interface CommonFlags extends TrainFlags {
  backend: string;
  data?: string;
  cache?: string;
  plugin?: string[];
  runs: string;
  results: string;
  valFile?: string;
  testFile?: string;
  testEpisodes?: number;
  name?: string;
}

function addTrainOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'experiment config (JSON, see experiments/); flags override its fields')
    .option('--way <n>', 'classes per test episode (N)', intArg('--way', 2))
    .option('--shot <n>', 'support images per class at test (K)', intArg('--shot'))
    .option('--query <n>', 'query images per class at test', intArg('--query'))
    .option('--train-way <n>', 'classes per training episode (default: --way)', intArg('--train-way', 2))
    .option('--train-shot <n>', 'support images per class in training (default: --shot)', intArg('--train-shot'))
    .option('--train-query <n>', 'query images per class in training (default: --query)', intArg('--train-query'))
    .option('--episodes <n>', 'meta-training episodes', intArg('--episodes'))
    .option('--episodes-per-step <n>', 'episodes averaged per optimizer step', intArg('--episodes-per-step'))
    .option('--lr <x>', 'base learning rate', floatArg('--lr'))
    .option('--seed <n>', 'seed for initialisation and the training episode stream', intArg('--seed', 0))
    .option('--backbone <id>', 'backbone (conv4, resnet12, ...)')
    .option('--image-size <px>', 'image side in pixels (84 standard; 32 for CPU budgets)', intArg('--image-size', 8))
    .option('--val-every <n>', 'validate every n training episodes (0: only at the end)', intArg('--val-every', 0))
    .option('--val-episodes <n>', 'validation episodes per check', intArg('--val-episodes'))
    .option('--val-file <file>', 'validation episode file (default: the committed one for the test spec)')
    .option('--transform <name>', 'SLA/DA/MT transformation set (rotation, color_perm, ...)')
    .option('--sla-loss <mode>', 'SLA loss over copies: mean (default) or sum')
    .addOption(backendOption())
    .option('--data <dir>', 'mini-ImageNet folder (images/ or .tar.gz archives + train/val/test.csv); else $FEWSHOT_DATA, else ./data/mini-imagenet')
    .option('--cache <dir>', 'decoded-image cache (default: ./.cache/mini-imagenet-<size>; else $FEWSHOT_CACHE)')
    .option('--plugin <module...>', 'modules that register extra heads/backbones/wrappers')
    .option('--runs <dir>', 'where checkpoints go', 'runs')
    .option('--name <name>', 'run name (default: derived from the config)');
}

function addEvalOptions(cmd: Command): Command {
  return cmd
    .option('--test-file <file>', 'test episode file (default: the committed one for the test spec)')
    .option('--test-episodes <n>', 'evaluate only the first n episodes of the file', intArg('--test-episodes'))
    .option('--results <dir>', 'where result directories go', 'results');
}

export interface TrainedRun {
  config: TrainConfig;
  method: EpisodicMethod;
  backend: SelectedBackend;
  dataset: OpenedDataset;
  summary: TrainSummary;
  runDir: string;
  name: string;
}

/** Load the backend (saying which one), then build the method the config describes. */
async function backendAndMethod(config: TrainConfig, backendChoice: string): Promise<{ backend: SelectedBackend; method: EpisodicMethod }> {
  const backend = await selectBackend(backendChoice);
  process.stderr.write(`backend: ${backend.choice} — ${backend.detail}\n`);
  const method = buildMethod({
    name: config.method, backbone: config.backbone, imageSize: config.imageSize, way: Math.max(config.train.way, config.test.way),
    seed: config.seed, headConfig: config.headConfig, wrapperOptions: config.wrapperOptions,
  });
  return { backend, method };
}

async function trainFromFlags(methodName: string, flags: CommonFlags): Promise<TrainedRun> {
  await loadPlugins(flags.plugin);
  const config = await resolveTrainConfig(methodName, flags);
  resolveMethodName(config.method); // an unknown method fails before the backend loads
  const { backend, method } = await backendAndMethod(config, flags.backend);
  const dataset = await openDataset({ data: flags.data, cache: flags.cache, imageSize: config.imageSize, autoPrepare: true });
  const trainSplit = await dataset.split('train');
  const valSplit = await dataset.split('val');
  const valFile = flags.valFile ?? defaultEpisodeFile('val', config.test);
  const valList = await openEpisodeList(valFile, valSplit, config.test);
  const name = flags.name ?? runName(config);
  const runDir = path.join(flags.runs, name);
  const meta = {
    configHash: configHash(config, trainSplit.splitFingerprint),
    config, method: config.method, name,
    data: { splitFingerprint: trainSplit.splitFingerprint, cacheFingerprint: trainSplit.cacheFingerprint, imageSize: config.imageSize },
    valEpisodes: { file: valFile, sha256: valList.sha256 },
  };
  process.stderr.write(`training ${config.method} (${config.backbone}, ${config.imageSize}px, train ${config.train.way}w${config.train.shot}s${config.train.query}q) for ${config.episodes} episodes → ${runDir}\n`);
  const progress = startProgress('train', config.episodes);
  let lastLoss = '';
  let lastVal = '';
  const summary = await train({
    method, config, runDir, meta,
    trainSource: config.augment === 'metaoptnet' ? (i) => augmentedSource(trainSplit.loaded, `${config.seed}/augment/${i}`) : () => trainSplit.source,
    sampleTrainEpisode: trainEpisodeSampler(trainSplit, config.train, config.seed),
    validation: { source: valSplit.source, list: valList },
    onNotice: (message) => process.stderr.write(`${message}\n`),
    onProgress: (p) => {
      if (p.loss !== undefined) lastLoss = p.loss.toFixed(4);
      if (p.validation) lastVal = `${formatCI(p.validation.accuracy)}${p.validation.best ? '*' : ''}`;
      progress.update(p.episode, { loss: lastLoss, val: lastVal || '-', lr: p.lr.toExponential(2) });
    },
  });
  progress.stop();
  if (summary.resumedFrom) process.stderr.write(`resumed from episode ${summary.resumedFrom}\n`);
  if (summary.best) process.stderr.write(`best validation (${summary.best.mode}) ${formatCI(summary.best.accuracy)} at episode ${summary.best.episode}\n`);
  return { config, method, backend, dataset, summary, runDir, name };
}

async function evaluateAndRecord(run: Omit<TrainedRun, 'summary'> & { summary?: TrainSummary }, flags: CommonFlags, checkpointDir: string, t0: number) {
  const { config, method, dataset } = run;
  const ckpt = await readCheckpoint(checkpointDir);
  restoreVariables(ckpt, [...method.trainableVariables(), ...method.stateVariables()]);
  const testSplit = await dataset.split('test');
  const testFile = flags.testFile ?? defaultEpisodeFile('test', config.test);
  const list = await openEpisodeList(testFile, testSplit, config.test);
  const total = Math.min(flags.testEpisodes ?? list.count, list.count);
  const progress = startProgress('eval', total);
  const result = evaluate(method, testSplit.source, list, { limit: total, onProgress: (d) => progress.update(d) });
  progress.stop();
  const dir = path.join(flags.results, 'mini-imagenet', run.name);
  const record = await writeResult(
    dir,
    {
      method: config.method,
      createdAt: new Date().toISOString(),
      command: ['fewshot', ...process.argv.slice(2)].join(' '),
      seed: config.seed,
      backend: { choice: run.backend.choice, detail: run.backend.detail },
      data: { dataset: 'mini-imagenet', imageSize: config.imageSize, splitFingerprint: testSplit.splitFingerprint, cacheFingerprint: testSplit.cacheFingerprint },
      episodes: { file: testFile, sha256: list.sha256, split: 'test', ...config.test, evaluated: total },
      wallSeconds: { train: run.summary?.wallSeconds, eval: result.wallSeconds, total: (performance.now() - t0) / 1000 },
      training: { ...(run.summary ? { episodesTrained: run.summary.episodesTrained, resumedFrom: run.summary.resumedFrom, best: run.summary.best, wallSeconds: run.summary.wallSeconds } : {}), run: ckpt.file.meta.name, trainedAtEpisode: ckpt.file.meta.episode, trainData: ckpt.file.meta.data, valEpisodes: ckpt.file.meta.valEpisodes },
      checkpoint: checkpointDir,
      software: softwareVersions(),
      config: { ...config, describe: method.describe() },
    },
    result,
  );
  for (const m of record.inferenceModes) process.stdout.write(`${config.method} [${m}] ${config.test.way}-way ${config.test.shot}-shot: ${record.summary[m].text} % (95% CI, n=${total})\n`);
  process.stdout.write(`result: ${dir}/result.json\n`);
  return record;
}

export function registerTrainCommands(program: Command): void {
  addEvalOptions(addTrainOptions(program.command('run <method>')))
    .description('meta-train a method, then evaluate its best checkpoint on the fixed test episodes')
    .action(async (methodName: string, flags: CommonFlags) => {
      const t0 = performance.now();
      const run = await trainFromFlags(methodName, flags);
      await evaluateAndRecord(run, flags, run.summary.bestCheckpoint, t0);
    });

  addTrainOptions(program.command('train <method>'))
    .description('meta-train a method; keeps the best (validation) and last checkpoints under --runs')
    .action(async (methodName: string, flags: CommonFlags) => {
      const run = await trainFromFlags(methodName, flags);
      process.stdout.write(`best checkpoint: ${run.summary.bestCheckpoint}\n`);
    });

  addEvalOptions(program.command('eval <checkpoint>'))
    .description('evaluate a checkpoint (a runs/<name>/best directory) on fixed test episodes')
    .option('--data <dir>', 'mini-ImageNet folder (see `fewshot run --help`)')
    .option('--cache <dir>', 'decoded-image cache')
    .option('--plugin <module...>', 'modules that register extra heads/backbones/wrappers')
    .option('--shot <n>', 'evaluate at this shot instead of the trained one', intArg('--shot'))
    .addOption(backendOption())
    .action(async (checkpointDir: string, flags: CommonFlags) => {
      const t0 = performance.now();
      await loadPlugins(flags.plugin);
      const ckpt = await readCheckpoint(checkpointDir);
      const saved = ckpt.file.meta.config as TrainConfig | undefined;
      if (!saved) throw new UserError(`checkpoint ${checkpointDir} has no recorded config`, 'evaluate a checkpoint written by `fewshot train`');
      const config: TrainConfig = { ...saved, test: { ...saved.test, shot: flags.shot ?? saved.test.shot } };
      const { backend, method } = await backendAndMethod(config, flags.backend);
      const dataset = await openDataset({ data: flags.data, cache: flags.cache, imageSize: config.imageSize, autoPrepare: true });
      const name = `${String(ckpt.file.meta.name ?? path.basename(path.dirname(checkpointDir)))}${flags.shot ? `_eval${config.test.shot}s` : ''}`;
      await evaluateAndRecord({ config, method, backend, dataset, runDir: path.dirname(checkpointDir), name }, flags, checkpointDir, t0);
      tf.disposeVariables();
    });
}
