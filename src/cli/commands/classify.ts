import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { addCommand, backendOption, floatArg, intArg, jsonOption, printJson, pluginOption, dataOption, cacheOption } from '../options.ts';
import { sharedOptionsOf, type SharedFlags } from '../common-flags.ts';
import { loadPlugins } from '../context.ts';
import { datasetOption, datasetOptionsOption, parseDatasetOptions } from '../dataset-flags.ts';
import { DEFAULT_RESULTS } from '../../experiment/defaults.ts';
import { UserError } from '../../util/errors.ts';

// The experiment layer (tfjs, data) is imported inside the actions: parsing flags and --help load none of it.
const experiment = () => import('../../experiment/index.ts');
const reporter = () => import('../reporter.ts');

interface ClassifyFlags extends SharedFlags {
  config?: string;
  variant?: string;
  head?: string;
  cosineScale?: number;
  backbone?: string;
  imageSize?: number;
  transform?: string;
  slaLoss?: string;
  sdBeta?: number;
  sdTemperature?: number;
  epochs?: number;
  batchSize?: number;
  optimizer?: string;
  lr?: number;
  lrStepEpochs?: number;
  lrFactor?: number;
  split?: string;
  testPerClass?: number;
  imbalanceRatio?: number;
  seed?: number;
  dataset?: string;
  datasetOption?: string[];
  runs: string;
  checkpointEvery?: number;
  logEvery?: number;
  replaceCommitted?: boolean;
}

/** A number as typed; whether it is a valid ratio is the experiment layer's check (a UserError naming the rule). */
const anyNumber = (v: string) => Number(v);

async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new UserError(`--config ${file} cannot be read`, 'check the path of the classification config (JSON)');
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new UserError(`--config ${file} is not valid JSON: ${(err as Error).message}`, 'fix the JSON');
  }
}

/** The config the flags describe, over --config's fields. */
async function configOf(flags: ClassifyFlags): Promise<Record<string, unknown>> {
  const base = flags.config ? await readConfigFile(flags.config) : {};
  const set = (o: Record<string, unknown>, key: string, value: unknown) => {
    if (value !== undefined) o[key] = value;
  };
  const c: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries({
    variant: flags.variant,
    backbone: flags.backbone,
    imageSize: flags.imageSize,
    transform: flags.transform,
    epochs: flags.epochs,
    batchSize: flags.batchSize,
    split: flags.split,
    testPerClass: flags.testPerClass,
    imbalanceRatio: flags.imbalanceRatio,
    seed: flags.seed,
    dataset: flags.dataset,
  }))
    set(c, k, v);
  if (flags.datasetOption) c.datasetOptions = parseDatasetOptions(flags.datasetOption);
  if (flags.head !== undefined || flags.cosineScale !== undefined)
    c.head = { ...(base.head as object | undefined), ...(flags.head ? { kind: flags.head } : {}), ...(flags.cosineScale ? { scale: flags.cosineScale } : {}) };
  if (flags.slaLoss !== undefined || flags.sdBeta !== undefined || flags.sdTemperature !== undefined) {
    c.options = {
      ...(base.options as object | undefined),
      ...(flags.slaLoss ? { slaLoss: flags.slaLoss } : {}),
      ...(flags.sdBeta !== undefined ? { beta: flags.sdBeta } : {}),
      ...(flags.sdTemperature !== undefined ? { temperature: flags.sdTemperature } : {}),
    };
  }
  if (flags.optimizer !== undefined || flags.lr !== undefined) {
    const prev = (base.optimizer as Record<string, unknown> | undefined) ?? {};
    const type = flags.optimizer ?? prev.type ?? 'adam';
    c.optimizer = { ...(type === prev.type ? prev : {}), type, ...(flags.lr !== undefined ? { lr: flags.lr } : {}) };
  }
  if (flags.lrStepEpochs !== undefined) c.lrSchedule = { type: 'step', everyEpochs: flags.lrStepEpochs, factor: flags.lrFactor ?? 0.1 };
  return c;
}

function optionsOf(flags: ClassifyFlags) {
  return {
    ...sharedOptionsOf(flags),
    runs: flags.runs,
    checkpointEvery: flags.checkpointEvery,
    logEvery: flags.logEvery,
    replaceCommitted: flags.replaceCommitted === true,
  };
}

function addCommonOptions(cmd: Command): Command {
  return cmd
    .addOption(dataOption())
    .addOption(cacheOption())
    .addOption(pluginOption('modules that register extra backbones/dataset providers (repeat the flag for more)'))
    .addOption(backendOption())
    .option('--results <dir>', 'where result directories go (<results>/<dataset>/<name>); not the committed results/ of a checkout', DEFAULT_RESULTS)
    .option('--name <name>', 'run / result name (default: derived from the config)')
    .option('--replace-committed', 'allow replacing a committed reference result (one whose result.json git tracks)')
    .addOption(jsonOption());
}

export function registerClassifyCommands(program: Command): void {
  const classify = program
    .command('classify')
    .description('standard (and long-tailed) classification over all classes of a split, with SLA / SLA+SD / DA / MT (docs/classification.md)');
  registerClassifyTrain(classify);
  registerClassifyEval(classify);
  registerClassifyCompare(classify);
}

function registerClassifyTrain(classify: Command): void {
  addCommand(
    classify,
    'train',
    "train a classifier on a split's classes (a fixed seeded held-out part of each class is its test set), then evaluate it",
    [addCommonOptions, addModelOptions, addTrainingOptions],
    classifyTrainAction,
  );
}

/** `classify train`'s flags of the model: the config file, the variant, head, backbone and transformation set. */
function addModelOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'classification config (JSON, see docs/classification.md); flags override its fields')
    .addOption(
      new Option('--variant <name>', 'plain, sla (SLA+AG / SLA+SI), sla-sd (self-distillation), da or mt (baselines)').choices([
        'plain',
        'sla',
        'sla-sd',
        'da',
        'mt',
      ]),
    )
    .addOption(new Option('--head <kind>', 'classifier head: linear or cosine').choices(['linear', 'cosine']))
    .option('--cosine-scale <x>', 'cosine head: the fixed logit scale (default 10)', floatArg('--cosine-scale'))
    .option('--backbone <id>', 'backbone (conv4, resnet12, ...)')
    .option('--image-size <px>', 'image side in pixels', intArg('--image-size', 8))
    .option('--transform <name>', 'SLA/DA/MT transformation set (rotation, color_perm, ...)')
    .addOption(new Option('--sla-loss <mode>', "SLA loss over copies: mean, or sum (×M, the authors' --with-large-loss)").choices(['mean', 'sum']))
    .option('--sd-beta <x>', "SLA+SD: weight of the single head's cross-entropy (default 1)", floatArg('--sd-beta'))
    .option('--sd-temperature <x>', 'SLA+SD: distillation temperature (default 1)', floatArg('--sd-temperature'));
}

/** `classify train`'s flags of the training: schedule, data split, seed, dataset and checkpoints. */
function addTrainingOptions(cmd: Command): Command {
  return cmd
    .option('--epochs <n>', 'training epochs', intArg('--epochs'))
    .option('--batch-size <n>', 'images per mini-batch (before the M transformed copies)', intArg('--batch-size'))
    .addOption(new Option('--optimizer <type>', 'adam or sgd').choices(['adam', 'sgd']))
    .option('--lr <x>', 'base learning rate', floatArg('--lr'))
    .option('--lr-step-epochs <n>', 'multiply the learning rate by --lr-factor every n epochs', intArg('--lr-step-epochs'))
    .option('--lr-factor <x>', "the step schedule's factor (default 0.1)", floatArg('--lr-factor'))
    .addOption(
      new Option('--split <name>', "the provider split whose classes are classified (default train: mini-ImageNet's 64 base classes)").choices([
        'train',
        'val',
        'test',
      ]),
    )
    .option('--test-per-class <n>', 'images of each class held out as the test set (default 100)', intArg('--test-per-class'))
    .option('--imbalance-ratio <x>', 'long-tailed training set: n_max / n_min with the exponential profile (e.g. 100, 50, 10; default 1 = balanced)', anyNumber)
    .option('--seed <n>', 'seed for initialisation, the hold-out, the long-tail subsampling and the batch order', intArg('--seed', 0))
    .addOption(datasetOption())
    .addOption(datasetOptionsOption())
    .option('--runs <dir>', 'where checkpoints go', 'runs')
    .option('--checkpoint-every <n>', 'save the resumable last/ checkpoint every n steps (default: every epoch, at most 500)', intArg('--checkpoint-every'))
    .option('--log-every <n>', 'report the training loss every n steps (default 50)', intArg('--log-every'));
}

async function classifyTrainAction(flags: ClassifyFlags): Promise<void> {
  await loadPlugins(flags.plugin);
  const hooks = (await reporter()).cliHooks();
  try {
    const run = await (await experiment()).runClassification(await configOf(flags), optionsOf(flags), hooks);
    printEvaluation(run.evaluation, flags.json, { name: run.name, checkpoint: run.checkpoint });
  } finally {
    hooks.done();
  }
}

function registerClassifyEval(classify: Command): void {
  addCommonOptions(classify.command('eval <checkpoint>'))
    .description('evaluate a classifier checkpoint (runs/<name>/best) on its held-out images, overall and per many/medium/few-shot group')
    .action(async (checkpoint: string, flags: ClassifyFlags) => {
      await loadPlugins(flags.plugin);
      const hooks = (await reporter()).cliHooks();
      try {
        const evaluation = await (await experiment()).evaluateClassifier({ checkpoint }, optionsOf(flags), hooks);
        printEvaluation(evaluation, flags.json, { checkpoint });
      } finally {
        hooks.done();
      }
    });
}

function registerClassifyCompare(classify: Command): void {
  classify
    .command('compare <resultA> <resultB>')
    .description('paired difference (A − B) of two classifiers over the identical held-out images, with its 95% CI')
    .option('--mode-a <mode>', 'inference mode of A (default: its headline mode)')
    .option('--mode-b <mode>', 'inference mode of B (default: its headline mode)')
    .addOption(jsonOption())
    .action(async (a: string, b: string, flags: { modeA?: string; modeB?: string; json?: boolean }) => {
      const c = await (await experiment()).compareClassifications(a, b, { a: flags.modeA, b: flags.modeB });
      if (flags.json) return printJson({ format: 'fewshot-classify-comparison/1', ...c });
      const pct = (m: { mean: number; ci95: number }) => `${m.mean.toFixed(2)} ± ${m.ci95.toFixed(2)}`;
      process.stdout.write(`A ${c.a.variant} [${c.a.mode}]: ${pct(c.a.accuracy)} %\n`);
      process.stdout.write(`B ${c.b.variant} [${c.b.mode}]: ${pct(c.b.accuracy)} %\n`);
      const groups = (['many', 'medium', 'few'] as const)
        .filter((g) => c.groups[g] !== undefined)
        .map((g) => `${g} ${c.groups[g]! >= 0 ? '+' : ''}${c.groups[g]!.toFixed(2)}`);
      process.stdout.write(
        `A − B (paired over ${c.pairedDifference.n} held-out images): ${pct(c.pairedDifference)} points (95% CI)${groups.length ? `; by group: ${groups.join(', ')}` : ''}\n`,
      );
    });
}

function printEvaluation(e: import('../../experiment/index.ts').ClassifierEvaluation, json: boolean | undefined, extra: Record<string, string>): void {
  if (json) {
    return printJson({
      format: 'fewshot-classify-summary/1',
      ...extra,
      resultDir: e.resultDir,
      result: `${e.resultDir}/result.json`,
      headlineMode: e.modes[0],
      accuracy: Object.fromEntries(
        e.modes.map((m) => [m, { overall: e.accuracy[m].overall, classMean: e.accuracy[m].classMean, groups: e.accuracy[m].groups }]),
      ),
    });
  }
  for (const m of e.modes) {
    const a = e.accuracy[m];
    const groups = (['many', 'medium', 'few'] as const)
      .filter((g) => a.groups[g])
      .map((g) => `${g} ${a.groups[g]!.accuracy.toFixed(2)} % (${a.groups[g]!.classes} classes)`);
    process.stdout.write(
      `[${m}] ${a.overall.mean.toFixed(2)} ± ${a.overall.ci95.toFixed(2)} % (95% CI, n=${a.overall.n} held-out images)${groups.length ? `; ${groups.join(', ')}` : ''}\n`,
    );
  }
  process.stdout.write(`result: ${e.resultDir}/result.json\n`);
}
