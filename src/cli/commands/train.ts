import { Option, type Command } from 'commander';
import { backendOption, intArg, floatArg, jsonOption, printJson, pluginOption, dataOption, cacheOption } from '../options.ts';
import { sharedOptionsOf, type SharedFlags } from '../common-flags.ts';
import type { TrainFlags } from '../config.ts';
import { loadPlugins } from '../context.ts';
import type { ExperimentOptionsInput, ExperimentResult } from '../../experiment/index.ts';
import { datasetOption, datasetOptionsOption, parseDatasetOptions } from '../dataset-flags.ts';
import { DEFAULT_RESULTS } from '../../experiment/defaults.ts';

// The experiment layer (tfjs, data) is imported inside the actions: parsing flags and --help load none of it.
const experiment = () => import('../../experiment/index.ts');
const reporter = () => import('../reporter.ts');
const configModule = () => import('../config.ts');

interface CommonFlags extends TrainFlags, SharedFlags {
  runs: string;
  valFile?: string;
  testFile?: string;
  testEpisodes?: number;
  replaceCommitted?: boolean;
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
    .option('--val-file <file>', "validation episode file (default: the dataset's standard one for the test spec)")
    .addOption(
      new Option(
        '--augment <name>',
        "training augmentation: none, or metaoptnet (random crop + colour jitter + flip); default: the config's, else the dataset's (none for mini-imagenet, metaoptnet for cifar-fs, fc100, tiered-imagenet)",
      ).choices(['none', 'metaoptnet']),
    )
    .option('--transform <name>', 'SLA/DA/MT transformation set (rotation, color_perm, ...)')
    .option('--sla-loss <mode>', 'SLA loss over copies: mean (default) or sum')
    .addOption(backendOption())
    .addOption(datasetOption())
    .addOption(datasetOptionsOption())
    .addOption(dataOption())
    .addOption(cacheOption())
    .addOption(pluginOption())
    .option('--runs <dir>', 'where checkpoints go', 'runs')
    .option('--name <name>', 'run name (default: derived from the config)')
    .addOption(jsonOption());
}

function addEvalOptions(cmd: Command): Command {
  return cmd
    .option('--test-file <file>', "test episode file (default: the dataset's standard one for the test spec)")
    .option('--test-episodes <n>', 'evaluate only the first n episodes of the file', intArg('--test-episodes'))
    .option('--results <dir>', 'where result directories go (<results>/<dataset>/<name>); not the committed results/ of a checkout', DEFAULT_RESULTS)
    .option('--replace-committed', 'allow replacing a committed reference result (one whose result.json git tracks)');
}

function experimentOptions(flags: CommonFlags): ExperimentOptionsInput {
  return {
    ...sharedOptionsOf(flags),
    runs: flags.runs,
    valFile: flags.valFile,
    testFile: flags.testFile,
    testEpisodes: flags.testEpisodes,
    replaceCommitted: flags.replaceCommitted === true,
  };
}

/** The machine-readable summary of `run` / `eval` (`--json`). */
export function resultJson(r: ExperimentResult): Record<string, unknown> {
  const { record } = r;
  return {
    format: 'fewshot-run-summary/1',
    method: record.method,
    name: r.name,
    resultDir: r.resultDir,
    result: `${r.resultDir}/result.json`,
    checkpoint: record.checkpoint,
    reused: r.reused,
    test: {
      file: record.episodes.file,
      way: record.episodes.way,
      shot: record.episodes.shot,
      query: record.episodes.query,
      evaluated: record.episodes.evaluated,
    },
    accuracy: Object.fromEntries(record.inferenceModes.map((m) => [m, record.summary[m]])),
    headlineMode: record.inferenceModes[0],
    wallSeconds: record.wallSeconds,
  };
}

function printResult(r: ExperimentResult, json?: boolean): void {
  if (json) return printJson(resultJson(r));
  const { record } = r;
  for (const m of record.inferenceModes) {
    process.stdout.write(
      `${r.config.method} [${m}] ${r.config.test.way}-way ${r.config.test.shot}-shot: ${record.summary[m].text} % (95% CI, n=${record.episodes.evaluated})\n`,
    );
  }
  process.stdout.write(`result: ${r.resultDir}/result.json\n`);
}

export function registerTrainCommands(program: Command): void {
  registerRunCommand(program);
  registerTrainCommand(program);
  registerEvalCommand(program);
}

function registerRunCommand(program: Command): void {
  addEvalOptions(addTrainOptions(program.command('run <method>')))
    .description('meta-train a method, then evaluate its best checkpoint on the fixed test episodes')
    .action(async (methodName: string, flags: CommonFlags) => {
      await loadPlugins(flags.plugin);
      const config = await (await configModule()).resolveTrainConfig(methodName, flags);
      const hooks = (await reporter()).cliHooks();
      try {
        printResult(await (await experiment()).runExperiment(config, experimentOptions(flags), hooks), flags.json);
      } finally {
        hooks.done();
      }
    });
}

function registerTrainCommand(program: Command): void {
  addTrainOptions(program.command('train <method>'))
    .description('meta-train a method; keeps the best (validation) and last checkpoints under --runs')
    .action(async (methodName: string, flags: CommonFlags) => {
      await loadPlugins(flags.plugin);
      const config = await (await configModule()).resolveTrainConfig(methodName, flags);
      const hooks = (await reporter()).cliHooks();
      try {
        const run = await (await experiment()).trainExperiment(config, experimentOptions(flags), hooks);
        if (flags.json)
          printJson({
            format: 'fewshot-train-summary/1',
            name: run.name,
            runDir: run.runDir,
            bestCheckpoint: run.summary.bestCheckpoint,
            summary: run.summary,
          });
        else process.stdout.write(`best checkpoint: ${run.summary.bestCheckpoint}\n`);
      } finally {
        hooks.done();
      }
    });
}

function registerEvalCommand(program: Command): void {
  addEvalOptions(program.command('eval <checkpoint>'))
    .description('evaluate a checkpoint (a runs/<name>/best directory) on fixed test episodes')
    .addOption(datasetOption().default(undefined, 'the one it was trained on'))
    .addOption(datasetOptionsOption())
    .addOption(dataOption())
    .addOption(cacheOption())
    .addOption(pluginOption())
    .option('--shot <n>', 'evaluate at this shot instead of the trained one', intArg('--shot'))
    .addOption(backendOption())
    .option('--name <name>', 'result name (default: <run>_eval_<test file name>[_<n>ep]; an existing different result is never replaced)')
    .addOption(jsonOption())
    .action(async (checkpointDir: string, flags: CommonFlags) => {
      await loadPlugins(flags.plugin);
      const hooks = (await reporter()).cliHooks();
      try {
        const datasetOptions = flags.datasetOption ? parseDatasetOptions(flags.datasetOption) : undefined;
        printResult(
          await (await experiment()).evaluateCheckpoint(
            { checkpoint: checkpointDir, shot: flags.shot, dataset: flags.dataset, datasetOptions },
            experimentOptions(flags),
            hooks,
          ),
          flags.json,
        );
      } finally {
        hooks.done();
      }
    });
}
