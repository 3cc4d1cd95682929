import type { Command } from 'commander';
import { addCommand, backendOption, cacheOption, collect, dataOption, intArg, jsonOption, pluginOption, printJson } from '../options.ts';
import { sharedOptionsOf, type SharedFlags } from '../common-flags.ts';
import { loadPlugins } from '../context.ts';
import { parseDatasetOptions } from '../dataset-flags.ts';
import { DEFAULT_RESULTS } from '../../experiment/defaults.ts';

// The experiment layer (tfjs, data) is imported inside the actions: parsing flags and --help load none of it.
const ood = () => import('../../experiment/ood.ts');
const fewshot = () => import('../../experiment/pretrained-fewshot.ts');
const reporter = () => import('../reporter.ts');

function addCommon(cmd: Command): Command {
  return cmd
    .addOption(dataOption("the classifier's dataset source (as for `fewshot classify train`)"))
    .addOption(cacheOption())
    .addOption(pluginOption())
    .addOption(backendOption())
    .option('--results <dir>', 'where result directories go (<results>/<dataset>/<name>); not the committed results/ of a checkout', DEFAULT_RESULTS)
    .option('--name <name>', "result name (default: the classifier run's name and what was evaluated)")
    .addOption(jsonOption());
}

/** `fewshot ood` and `fewshot pretrained-eval`: what a trained classifier (fewshot classify train) is evaluated on besides its own test images. */
export function registerPretrainedCommands(program: Command): void {
  registerOodCommand(program);
  registerPretrainedEvalCommand(program);
}

interface OodFlags extends SharedFlags {
  outSplit?: string;
  outDataset?: string;
  outDatasetOption?: string[];
  outData?: string;
  outCache?: string;
  outPerClass?: number;
  resamples: number;
  seed: number;
}

function registerOodCommand(program: Command): void {
  addCommand(
    program,
    'ood <checkpoint>',
    'out-of-distribution detection with a classifier checkpoint: its held-out images (in) against another split or dataset (out); AUROC, AUPR-In/Out, FPR at 95% TPR with bootstrap intervals, per inference mode (docs/classification.md)',
    [addCommon, addOodOptions],
    oodAction,
  );
}

/** `fewshot ood`'s own flags: the out-distribution and the bootstrap. */
function addOodOptions(cmd: Command): Command {
  return cmd
    .option('--out-split <name>', 'the split whose images are out-of-distribution (default test: on mini-ImageNet the 20 test classes)')
    .option('--out-dataset <id>', "the out-distribution's dataset provider (default: the classifier's dataset)")
    .option(
      '--out-dataset-option <key=value>',
      "an option of the out-dataset's provider, e.g. --out-dataset-option root=./other-images (repeat the flag for more)",
      collect,
    )
    .option('--out-data <path>', "the out-dataset's source, when --out-dataset is another dataset")
    .option('--out-cache <dir>', "the out-dataset's decoded-image cache")
    .option('--out-per-class <n>', "at most n images of each out class (the first in the split's order; default all)", intArg('--out-per-class'))
    .option('--resamples <n>', 'bootstrap resamples for the intervals', intArg('--resamples', 10), 1000)
    .option('--seed <n>', 'seed of the bootstrap', intArg('--seed', 0), 0);
}

async function oodAction(checkpoint: string, flags: OodFlags): Promise<void> {
  await loadPlugins(flags.plugin);
  const hooks = (await reporter()).cliHooks();
  try {
    const { evaluateOod, formatOodMetrics } = await ood();
    const r = await evaluateOod(
      {
        checkpoint,
        outSplit: flags.outSplit as 'train' | 'val' | 'test' | undefined,
        outDataset: flags.outDataset,
        outDatasetOptions: flags.outDatasetOption ? parseDatasetOptions(flags.outDatasetOption) : undefined,
        outData: flags.outData,
        outCache: flags.outCache,
        outPerClass: flags.outPerClass,
        resamples: flags.resamples,
        seed: flags.seed,
      },
      sharedOptionsOf(flags),
      hooks,
    );
    if (flags.json) {
      printJson({
        format: 'fewshot-ood-summary/1',
        checkpoint,
        resultDir: r.resultDir,
        result: `${r.resultDir}/result.json`,
        in: { name: r.inName, images: r.inImages },
        out: { name: r.outName, images: r.outImages },
        metrics: r.metrics,
      });
    } else {
      process.stdout.write(`in: ${r.inName}, ${r.inImages} images; out: ${r.outName}, ${r.outImages} images\n`);
      for (const m of r.modes) process.stdout.write(formatOodMetrics(m, r.metrics[m]) + '\n');
      process.stdout.write(`result: ${r.resultDir}/result.json\n`);
    }
  } finally {
    hooks.done();
  }
}

interface PretrainedEvalFlags extends SharedFlags {
  shot: number;
  way: number;
  query: number;
  head?: string[];
  aggregate?: boolean;
  testFile?: string;
  testEpisodes?: number;
}

function registerPretrainedEvalCommand(program: Command): void {
  addCommand(
    program,
    'pretrained-eval <checkpoint>',
    'few-shot from a pre-trained classifier (no meta-training): heads fitted per test episode on its frozen embedding, on the same committed episode files as the episodic methods; pair with `fewshot compare` (docs/classification.md)',
    [addCommon, addPretrainedEvalOptions],
    pretrainedEvalAction,
  );
}

/** `fewshot pretrained-eval`'s own flags: the episodes and the heads. */
function addPretrainedEvalOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--shot <n>', 'support images per class', intArg('--shot'))
    .option('--way <n>', 'classes per episode', intArg('--way', 2), 5)
    .option('--query <n>', 'query images per class', intArg('--query'), 15)
    .option('--head <name>', 'a per-episode head: protonet, cosine or logreg (repeat the flag for more; the first is the headline; default all three)', collect)
    .option('--aggregate', 'also score SLA+AG over the rotated copies (default: when the classifier was trained with SLA)')
    .option('--no-aggregate', 'score the upright images only')
    .option('--test-file <file>', "episode file (default: the dataset's committed test file of this way/shot/query)")
    .option('--test-episodes <n>', 'score only the first n episodes of the file', intArg('--test-episodes'));
}

async function pretrainedEvalAction(checkpoint: string, flags: PretrainedEvalFlags): Promise<void> {
  await loadPlugins(flags.plugin);
  const hooks = (await reporter()).cliHooks();
  try {
    const { evaluatePretrainedFewShot, formatPretrainedFewShot } = await fewshot();
    const r = await evaluatePretrainedFewShot(
      {
        checkpoint,
        way: flags.way,
        shot: flags.shot,
        query: flags.query,
        heads: flags.head as ('protonet' | 'cosine' | 'logreg')[] | undefined,
        aggregate: flags.aggregate,
        testFile: flags.testFile,
        testEpisodes: flags.testEpisodes,
      },
      sharedOptionsOf(flags),
      hooks,
    );
    if (flags.json) {
      printJson({
        format: 'fewshot-pretrained-summary/1',
        checkpoint,
        resultDir: r.resultDir,
        result: `${r.resultDir}/result.json`,
        headlineMode: r.evaluation.modes[0],
        summary: r.record.summary,
        episodes: r.record.episodes,
      });
    } else {
      for (const line of formatPretrainedFewShot(r)) process.stdout.write(line + '\n');
      process.stdout.write(`result: ${r.resultDir}\n`);
    }
  } finally {
    hooks.done();
  }
}
